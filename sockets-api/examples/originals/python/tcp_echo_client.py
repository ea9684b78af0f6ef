"""TCP echo client on the kernel's sockets: each line of input out, its echo back."""
import socket
import sys

server = (sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 7)
with socket.create_connection(server) as s, s.makefile("rw") as f:
    for line in sys.stdin:
        f.write(line)
        f.flush()
        echo = f.readline()
        if not echo:
            print("the server closed the connection", file=sys.stderr)
            break
        print(echo, end="")
