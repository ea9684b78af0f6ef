"""TCP echo server on the kernel's sockets: one thread, poll(2) over every client."""
import select
import socket
import sys

MAX_CLIENTS = 64
port = int(sys.argv[1]) if len(sys.argv) > 1 else 7
listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("0.0.0.0", port))
listener.listen(16)
poller = select.poll()
poller.register(listener, select.POLLIN)
clients = {}
while True:
    for fd, revents in poller.poll():
        if fd == listener.fileno():
            if len(clients) < MAX_CLIENTS:
                conn, peer = listener.accept()
                print(f"connection from {peer[0]}:{peer[1]}", flush=True)
                clients[conn.fileno()] = conn
                poller.register(conn, select.POLLIN)
            continue
        conn = clients[fd]
        try:
            data = conn.recv(4096)
            if data:
                conn.sendall(data)
        except OSError:
            data = b""
        if not data:
            poller.unregister(fd)
            del clients[fd]
            conn.close()
