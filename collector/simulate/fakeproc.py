"""One simulated platform process (standard library only; run with `python -S`).

Sets its comm to the title (the kernel keeps 15 bytes), optionally listens on a TCP
port, says "ready" on stdout, then sleeps until terminated or its parent dies."""

import argparse
import ctypes
import errno
import signal
import socket
import sys
import time

PR_SET_NAME = 15
PR_SET_PDEATHSIG = 1


def main() -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False)
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
