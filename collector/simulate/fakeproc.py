"""One simulated platform process (standard library only; run with `python -S`).

Sets its comm to the title (the kernel keeps 15 bytes), optionally listens on a TCP
port, says "ready" on stdout, then sleeps until terminated or its parent dies."""

import argparse
import ctypes
import errno
import signal
import socket
import sys
import threading
import time

PR_SET_NAME = 15
PR_SET_PDEATHSIG = 1


def _reply(conn: socket.socket) -> None:
    """The platform's status handlers: /<service>/health and /<service>/readiness."""
    conn.settimeout(2.0)
    request = b""
    while b"\r\n\r\n" not in request and len(request) < 8192:
        chunk = conn.recv(4096)
        if not chunk:
            return
        request += chunk
    path = request.split(b" ", 2)[1] if request.count(b" ") >= 2 else b"/"
    if path.endswith(b"/health"):
        status, body = b"200 OK", b"OK"
    elif path.endswith(b"/readiness"):
        status, body = b"200 OK", b'{"status": "OK"}'
    else:
        status, body = b"404 Not Found", b"not found"
    conn.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Length: " + str(len(body)).encode()
                 + b"\r\nConnection: close\r\n\r\n" + body)


def serve_health(listener: socket.socket) -> None:
    while True:
        conn, _addr = listener.accept()
        try:
            _reply(conn)
        except OSError:
            pass
        finally:
            conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False, add_help=False)  # -h may stand in a command line
    parser.add_argument("--comm", required=True)
    parser.add_argument("--port", type=int)
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--open-files", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=3600.0)
    args, _ignored = parser.parse_known_args()  # extra words stand in a real command line
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_NAME, args.comm.encode()[:15], 0, 0, 0)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    held = []
    state = "no-port"
    if args.port:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((args.address, args.port))
            sock.listen(16)
            held.append(sock)
            state = "listening"
            threading.Thread(target=serve_health, args=(sock,), daemon=True).start()
        except OSError as exc:
            state = "bind-failed:" + errno.errorcode.get(exc.errno, str(exc.errno))
            sock.close()
    for _ in range(args.open_files):
        held.append(open("/dev/null", "rb"))
    sys.stdout.write(f"ready {state}\n")
    sys.stdout.flush()
    sys.stdout.close()
    deadline = time.monotonic() + args.max_seconds
    while time.monotonic() < deadline:
        time.sleep(min(5.0, max(0.01, deadline - time.monotonic())))


if __name__ == "__main__":
    main()
