#!/usr/bin/env python3
"""linkprobe: measures one emulated link (round-trip time and rate each way).

Owner: tools/netlab (issue 11); used by tests/netlab/test_links.py, which
runs the server in one namespace and the client in another. Blocking
sockets, one thread per connection on the server; the client is sequential.

  linkprobe.py serve HOST:PORT
  linkprobe.py rtt HOST:PORT N          -> prints the N round trips in seconds
  linkprobe.py up HOST:PORT BYTES       -> seconds until the server has them all, and
                                           the seconds the server took for the second half
  linkprobe.py down HOST:PORT BYTES     -> seconds until all are received, and the
                                           seconds the second half took
(The second half is the steady-state rate, past TCP's slow start, which at a
150 ms round trip takes ~1 s to open the window to the path's 3 MB.)

Protocol: the client's first byte picks the mode: 'e' echo (1 byte each way,
repeated), 's' sink (8-byte big-endian count, then the bytes; the server
answers 'k' and the second half's seconds as a big-endian double), 'g' source (8-byte count; the server sends
that many bytes).
"""

import socket
import struct
import sys
import threading
import time

BLOCK = 256 * 1024


def addr(s):
    h, _, p = s.rpartition(":")
    return h, int(p)


def recv_exact(c, n):
    buf = bytearray()
    while len(buf) < n:
        d = c.recv(min(BLOCK, n - len(buf)))
        if not d:
            raise ConnectionError("peer closed")
        buf += d
    return bytes(buf)


def serve_one(c):
    try:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        mode = recv_exact(c, 1)
        if mode == b"e":
            while True:
                d = c.recv(1)
                if not d:
                    return
                c.sendall(d)
        elif mode == b"s":
            (n,) = struct.unpack(">Q", recv_exact(c, 8))
            left = n
            t_half = None
            while left:
                d = c.recv(min(BLOCK, left))
                if not d:
                    raise ConnectionError("short upload")
                left -= len(d)
                if t_half is None and left <= n // 2:
                    t_half = time.monotonic()
            c.sendall(b"k" + struct.pack(">d", time.monotonic() - t_half))
        elif mode == b"g":
            (n,) = struct.unpack(">Q", recv_exact(c, 8))
            block = b"\0" * BLOCK
            left = n
            while left:
                k = min(BLOCK, left)
                c.sendall(block[:k])
                left -= k
    except (ConnectionError, OSError):
        pass
    finally:
        c.close()


def serve(hostport):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(addr(hostport))
    s.listen(16)
    print("ready", flush=True)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve_one, args=(c,), daemon=True).start()


def connect(hostport):
    c = socket.create_connection(addr(hostport), timeout=120)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return c


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    mode, hp = argv[0], argv[1]
    if mode == "serve":
        serve(hp)
        return 0
    c = connect(hp)
    if mode == "rtt":
        c.sendall(b"e")
        out = []
        for _ in range(int(argv[2])):
            t = time.monotonic()
            c.sendall(b"x")
            recv_exact(c, 1)
            out.append(time.monotonic() - t)
        print(" ".join(f"{x:.6f}" for x in out))
    elif mode == "up":
        n = int(argv[2])
        t = time.monotonic()
        c.sendall(b"s" + struct.pack(">Q", n))
        block = b"\0" * BLOCK
        left = n
        while left:
            k = min(BLOCK, left)
            c.sendall(block[:k])
            left -= k
        reply = recv_exact(c, 9)
        (second_half,) = struct.unpack(">d", reply[1:])
        print(f"{time.monotonic() - t:.6f} {second_half:.6f}")
    elif mode == "down":
        n = int(argv[2])
        t = time.monotonic()
        c.sendall(b"g" + struct.pack(">Q", n))
        left, t_half = n, None
        while left:
            d = c.recv(min(BLOCK, left))
            if not d:
                raise ConnectionError("short download")
            left -= len(d)
            if t_half is None and left <= n // 2:
                t_half = time.monotonic()
        end = time.monotonic()
        print(f"{end - t:.6f} {end - t_half:.6f}")
    else:
        print(f"unknown mode {mode}", file=sys.stderr)
        return 2
    c.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
