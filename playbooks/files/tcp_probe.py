# Connect to HOST PORT, send TOKEN, expect it echoed back; retry for up to 30 s.
import socket
import sys
import time

host, port, token = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()
deadline = time.time() + 30
while True:
    try:
        with socket.create_connection((host, port), timeout=5) as conn:
            conn.sendall(token)
            echoed = conn.recv(4096)
        break
    except OSError as exc:
        if time.time() > deadline:
            sys.exit("cannot reach %s:%d: %s" % (host, port, exc))
        time.sleep(1)
if echoed != token:
    sys.exit("%s:%d echoed %r, expected %r" % (host, port, echoed, token))
print("%s ok via %s:%d" % (token.decode(), host, port))
