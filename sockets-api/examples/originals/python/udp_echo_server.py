"""UDP echo server on the kernel's sockets."""
import socket
import sys

port = int(sys.argv[1]) if len(sys.argv) > 1 else 7
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", port))
print(f"echoing UDP on port {port}", flush=True)
while True:
    data, peer = s.recvfrom(65536)
    print(f"{len(data)} bytes from {peer[0]}:{peer[1]}", flush=True)
    s.sendto(data, peer)
