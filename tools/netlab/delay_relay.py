#!/usr/bin/env python3
"""delay_relay: a TCP relay that adds a fixed one-way delay in each direction.

Part of tools/netlab (the emulated ISP network of issue 11). The kernels of
these machines have no sch_netem, so link latency is added here instead: the
harness starts one relay process per network namespace, placed on the path
of every connection that crosses a link (see tools/netlab/README.md).

Owner: tools/netlab. Runs as one asyncio event loop in one thread; one
process serves every route of its namespace.

  delay_relay.py --route LISTEN=TARGET@DELAY_MS [--route ...]
                 [--buffer-bytes N] [--ready-file PATH]

For every accepted connection on LISTEN (host:port) it dials TARGET
(host:port) and copies bytes both ways. Each block read is stamped with
(arrival + DELAY_MS) and written no earlier than that, so a byte leaves the
relay DELAY_MS after it arrived whatever the load (the delay does not add to
itself on back-to-back blocks). Per direction at most --buffer-bytes are held
(default 32 MiB, enough for 20 MB/s x 75 ms many times over); beyond that the
relay stops reading, and TCP flow control pushes back on the sender.
Half-closes are forwarded after the data before them. When every listener is
bound it prints "ready" (and writes --ready-file if given), so a harness can
wait for it. SIGTERM/SIGINT close everything and exit 0.
"""

import argparse
import asyncio
import collections
import os
import signal
import socket
import sys
import time

READ_BYTES = 256 * 1024
TIMER_SLACK = 0.0005


def parse_hostport(s):
    host, sep, port = s.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"{s!r}: expected host:port")
    return host, int(port)


def parse_route(s):
    """LISTEN=TARGET@DELAY_MS -> ((host, port), (host, port), delay_seconds)."""
    try:
        listen, rest = s.split("=", 1)
        target, delay = rest.rsplit("@", 1)
        d = float(delay)
        if d < 0 or d > 10_000:
            raise ValueError("delay out of range 0..10000 ms")
        return parse_hostport(listen), parse_hostport(target), d / 1000.0
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"bad route {s!r}: {e}")


class Pipe:
    """One direction of one connection: reader -> delay queue -> writer."""

    def __init__(self, reader, writer, delay, buffer_bytes):
        self.reader, self.writer = reader, writer
        self.delay, self.buffer_bytes = delay, buffer_bytes
        self.queue = collections.deque()  # (due monotonic time, bytes or None=EOF)
        self.queued = 0
        self.changed = asyncio.Event()

    async def pump_in(self):
        loop = asyncio.get_running_loop()
        try:
            while True:
                while self.queued >= self.buffer_bytes:
                    self.changed.clear()
                    await self.changed.wait()
                data = await self.reader.read(READ_BYTES)
                due = loop.time() + self.delay
                self.queue.append((due, data if data else None))
                self.queued += len(data)
                self.changed.set()
                if not data:
                    return
        except (ConnectionError, OSError):
            self.queue.append((loop.time(), None))
            self.changed.set()

    async def pump_out(self):
        loop = asyncio.get_running_loop()
        while True:
            while not self.queue:
                self.changed.clear()
                await self.changed.wait()
            due, data = self.queue[0]
            # The loop's timers wake a little late (~0.2-0.8 ms when the
            # relay runs at nice -10, as the harness starts it): ask for
            # TIMER_SLACK earlier so that blocks leave on time on average
            # (tests/netlab/test_relay.py measures it).
            wait = due - loop.time() - TIMER_SLACK
            if wait > 0:
                await asyncio.sleep(wait)
            self.queue.popleft()
            if data is None:
                if self.writer.can_write_eof():
                    self.writer.write_eof()
                return
            self.queued -= len(data)
            self.changed.set()
            self.writer.write(data)
            await self.writer.drain()


async def handle(client_r, client_w, target, delay, buffer_bytes):
    try:
        up_r, up_w = await asyncio.open_connection(*target)
    except OSError:
        client_w.close()
        return
    for w in (client_w, up_w):
        sock = w.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    a = Pipe(client_r, up_w, delay, buffer_bytes)
    b = Pipe(up_r, client_w, delay, buffer_bytes)
    tasks = [asyncio.create_task(t) for t in (a.pump_in(), a.pump_out(), b.pump_in(), b.pump_out())]
    try:
        # Both output pumps finish when their direction saw EOF; an error in
        # any pump ends the connection.
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for t in done:
            if t.exception() is not None:
                break
        else:
            await asyncio.gather(tasks[1], tasks[3], return_exceptions=True)
    except (ConnectionError, OSError):
        pass
    finally:
        for t in tasks:
            t.cancel()
        for w in (client_w, up_w):
            try:
                w.close()
            except Exception:
                pass


async def serve(routes, buffer_bytes, ready_file):
    servers = []
    for listen, target, delay in routes:
        async def cb(r, w, target=target, delay=delay):
            await handle(r, w, target, delay, buffer_bytes)
        servers.append(await asyncio.start_server(cb, listen[0], listen[1], reuse_address=True,
                                                  backlog=256))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    print("ready", flush=True)
    if ready_file:
        with open(ready_file + ".tmp", "w") as f:
            f.write(f"{os.getpid()}\n")
        os.replace(ready_file + ".tmp", ready_file)
    await stop.wait()
    for s in servers:
        s.close()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--route", action="append", type=parse_route, required=True,
                   help="LISTEN=TARGET@DELAY_MS (host:port=host:port@ms)")
    p.add_argument("--buffer-bytes", type=int, default=32 << 20,
                   help="bytes held per direction per connection before reading pauses")
    p.add_argument("--ready-file", help="written (with the pid) once every listener is bound")
    args = p.parse_args(argv)
    if args.buffer_bytes < READ_BYTES:
        p.error(f"--buffer-bytes must be at least {READ_BYTES}")
    try:
        asyncio.run(serve(args.route, args.buffer_bytes, args.ready_file))
    except OSError as e:
        print(f"delay_relay: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
