# TCP echo server for the smoke play: echo each connection's bytes back; stop after
# EXPECTED connections or 90 s, whichever comes first.
import socket
import sys
import time

port, expected = int(sys.argv[1]), int(sys.argv[2])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", port))
srv.listen(8)
srv.settimeout(5)
deadline = time.time() + 90
served = 0
while served < expected and time.time() < deadline:
    try:
        conn, _peer = srv.accept()
    except socket.timeout:
        continue
    with conn:
        conn.settimeout(10)
        conn.sendall(conn.recv(4096))
    served += 1
