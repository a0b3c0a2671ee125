#!/usr/bin/env python3
"""Gateway scrub cost: CPU share, disk read rate and RSS of a real
mistore-agent while its scrubber runs at a given background I/O rate.

Not part of the default test run. One command:

  python3 tests/gateway-agent/scrub_bench.py --bin-dir build/release/bin

It starts the agent against the fake POP of tests/system/test_agent_store.py,
stores --fragments fragments of --fragment-bytes through StoreFragment,
evicts their pages from the page cache (posix_fadvise DONTNEED on each file,
nothing else on the machine is touched) so that scrub reads hit the disk,
restarts the agent with --scrub-period-s=1 (the pass is then late from the
start, so the scrubber reads as fast as background_io_bytes_per_s allows)
and samples /proc/<pid>/{stat,io,status} for --seconds. It also measures
this disk's cold sequential read rate over the same files, to express the
scrub's rate as a share of it.
"""

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "system"))

import test_agent_store as t  # noqa: E402  (FakePop, fragment encoding)

TICKS = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        st = f.read()
    fields = st[st.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def proc_io(pid):
    out = {}
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            k, v = line.split(":")
            out[k.strip()] = int(v)
    return out


def proc_status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def evict(root):
    n = 0
    for d, _, fs in os.walk(root):
        for name in fs:
            fd = os.open(os.path.join(d, name), os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
            n += 1
    return n


def cold_read_rate(root, bytes_max):
    evict(root)
    done, t0 = 0, time.monotonic()
    for d, _, fs in os.walk(root):
        for name in sorted(fs):
            with open(os.path.join(d, name), "rb") as f:
                done += len(f.read())
            if done >= bytes_max:
                return done / (time.monotonic() - t0)
    return done / max(time.monotonic() - t0, 1e-9)


def start(bin_dir, pop, data_dir, log, rate, period_s):
    argv = [os.path.join(bin_dir, "mistore-agent"), "--gateway-id=7", "--subscriber=bench",
            f"--pop={pop.addr}", "--client-listen=127.0.0.1:0", "--metrics-listen=off",
            f"--data-dir={data_dir}", f"--background-io-bytes-per-s={rate}",
            f"--scrub-period-s={period_s}", "--store-bytes-max=107374182400",
            "--secure=false"]  # the stand-in POP speaks plain framing (issue 4 opt-out)
    logf = open(log, "ab")
    p = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if not pop.registered.wait(30):
        raise SystemExit("agent did not register")
    pop.wait_event(t.INVENTORY, timeout=30)
    return p


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin-dir", default=os.path.join(HERE, "..", "..", "build", "release", "bin"))
    ap.add_argument("--fragments", type=int, default=1200)
    ap.add_argument("--fragment-bytes", type=int, default=262144)
    ap.add_argument("--rate", type=int, default=1048576, help="background_io_bytes_per_s")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--repair-reads", action="store_true",
                    help="also keep 8 background FetchFragment calls (repair reads) in flight")
    ap.add_argument("--dir", default=None, help="work dir (default: a temp dir, removed)")
    a = ap.parse_args()
    work = a.dir or tempfile.mkdtemp(prefix="mistore-scrubbench-")
    data_dir = os.path.join(work, "agent")
    log = os.path.join(work, "agent.log")
    pop = t.FakePop()
    try:
        # Fill with a long scrub period (no scrubbing while filling).
        p = start(a.bin_dir, pop, data_dir, log, a.rate, 10**9)
        payload = a.fragment_bytes - 100
        payload -= payload % 8
        inflight = []
        names = []
        for i in range(a.fragments):
            cid = os.urandom(32)
            names.append((cid, i % 6))
            blob = t.make_fragment(cid, i % 6, os.urandom(payload))
            inflight.append(pop.call_async(t.STORE_FRAGMENT, t.f_bytes(1, blob)))
            if len(inflight) >= 32:
                env = inflight.pop(0).get(timeout=60)
                assert env is not None and t.error_of(env) is None, t.error_of(env)
        for q in inflight:
            env = q.get(timeout=60)
            assert env is not None and t.error_of(env) is None
        p.send_signal(signal.SIGTERM)
        p.wait(30)
        frag_root = os.path.join(data_dir, "fragments")
        total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(frag_root) for f in fs)
        disk_rate = cold_read_rate(frag_root, min(total, 256 << 20))
        evict(frag_root)

        pop.registered.clear()
        t_start = time.monotonic()
        p = start(a.bin_dir, pop, data_dir, log, a.rate, 1)
        start_s = time.monotonic() - t_start
        rss_start = proc_status_kb(p.pid, "VmRSS")
        evict(frag_root)  # the start-up's header reads may have pulled pages in
        time.sleep(2)  # into the scrub
        stop = threading.Event()
        repaired = [0]

        def repair_reads():
            # 8 background reads in flight, each of a random fragment.
            rng = random.Random(1)
            qs = []
            while not stop.is_set():
                while len(qs) < 8:
                    cid, idx = names[rng.randrange(len(names))]
                    body = t.f_bytes(1, cid) + (t.f_varint(2, idx) if idx else b"") + t.f_varint(3, 1)
                    qs.append(pop.call_async(t.FETCH_FRAGMENT, body))
                try:
                    env = qs.pop(0).get(timeout=60)
                except Exception:
                    return
                if env is not None and t.error_of(env) is None:
                    repaired[0] += 1

        if a.repair_reads:
            threading.Thread(target=repair_reads, daemon=True).start()
        c0, io0, w0 = proc_cpu_s(p.pid), proc_io(p.pid), time.monotonic()
        rss_max = 0
        while time.monotonic() - w0 < a.seconds:
            time.sleep(1)
            rss_max = max(rss_max, proc_status_kb(p.pid, "VmRSS"))
        c1, io1, w1 = proc_cpu_s(p.pid), proc_io(p.pid), time.monotonic()
        stop.set()
        hwm = proc_status_kb(p.pid, "VmHWM")
        p.send_signal(signal.SIGTERM)
        p.wait(30)
        wall = w1 - w0
        rchar = (io1["rchar"] - io0["rchar"]) / wall
        disk = (io1["read_bytes"] - io0["read_bytes"]) / wall
        print(f"store: {a.fragments} fragments x {a.fragment_bytes} B = {total / 2**20:.1f} MiB")
        print(f"background_io_bytes_per_s: {a.rate} ({a.rate / 2**20:.2f} MiB/s)")
        print(f"window: {wall:.1f} s")
        print(f"agent CPU: {100 * (c1 - c0) / wall:.2f} % of one core")
        print(f"bytes read by the agent (rchar): {rchar / 2**20:.2f} MiB/s")
        print(f"bytes read from the disk (read_bytes): {disk / 2**20:.2f} MiB/s")
        print(f"cold sequential read rate of this disk over the same files: "
              f"{disk_rate / 2**20:.1f} MiB/s -> scrub share {100 * disk / disk_rate:.2f} %")
        if a.repair_reads:
            print(f"repair reads served (background FetchFragment): {repaired[0]} "
                  f"({repaired[0] * a.fragment_bytes / wall / 2**20:.2f} MiB/s)")
        print(f"restart with cold cache to registered: {start_s:.2f} s")
        print(f"agent RSS: {rss_start} kB at start, max {rss_max} kB while scrubbing, "
              f"VmHWM {hwm} kB")
    finally:
        pop.close()
        if not a.dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
