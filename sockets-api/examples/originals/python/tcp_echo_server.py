"""TCP echo server on the kernel's sockets: a thread per client."""
import socket
import sys
import threading


def serve(conn):
    with conn:
        while data := conn.recv(4096):
            conn.sendall(data)


port = int(sys.argv[1]) if len(sys.argv) > 1 else 7
listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("0.0.0.0", port))
listener.listen(16)
print(f"echoing TCP on port {port}", flush=True)
while True:
    conn, peer = listener.accept()
    print(f"connection from {peer[0]}:{peer[1]}", flush=True)
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
