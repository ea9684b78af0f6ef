"""A nonblocking connect on the kernel's sockets: EINPROGRESS, poll for POLLOUT, SO_ERROR."""
import errno
import os
import select
import socket
import sys

server, port = sys.argv[1], int(sys.argv[2])
timeout_ms = int(sys.argv[3]) if len(sys.argv) > 3 else 3000
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setblocking(False)
err = s.connect_ex((server, port))
if err == 0:
    print("connected at once")
elif err != errno.EINPROGRESS:
    sys.exit(print(f"connect: {os.strerror(err)}") or 1)
else:
    p = select.poll()
    p.register(s, select.POLLOUT)
    if not p.poll(timeout_ms):
        sys.exit(print(f"no answer within {timeout_ms} ms") or 1)
    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        sys.exit(print(f"connect: {os.strerror(err)}") or 1)
    print(f"connected to {server}:{port}")
s.close()
