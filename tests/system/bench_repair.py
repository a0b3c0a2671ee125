#!/usr/bin/env python3
"""Region repair benchmark (issue 6; not part of the test run).

Starts a lab (2 POPs, --gateways-per-pop gateways each, k, m, POP caches off,
grace 2 s), stores DATA_MB of objects, waits until both regions have placed
everything and the POPs have dropped their copies (so repair must read k
fragments from the gateways), samples the agents' RSS while they scrub, then
SIGKILLs the gateway of region r1 holding the most fragment bytes and
measures the time from the end of the grace period until `mistore-lab status`
shows region r1 back at full redundancy. During the repair it samples the
agents' RSS and the CPU time used by pop1 and by the agents of r1.

Prints the victim's bytes, the repair traffic the POP counted, the achieved
rate, and the bounds: the repair bandwidth budget, the agents' background
I/O limit (reads spread over the live gateways), and CPU (2 cores here).

  MISTORE_BIN_DIR=build/release/bin nice -n 10 python3 tests/system/bench_repair.py \\
      [--data-mb 64] [--object-mb 4] [--gateways-per-pop 8] [--k 4] [--m 2] \\
      [--repair-bytes-per-s 20000000] [--agent-io-bytes-per-s 1048576] \\
      [--gateway-store-bytes 1073741824] [--scrub-period-s 604800] [--pop-arg=--NAME=VALUE ...]
"""

import argparse
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import labutil  # noqa: E402
from labutil import write_random_file, lab_metrics, metric_value, parse_metrics  # noqa: E402

GRACE_S = 2
STATUS_RE = re.compile(r"region r1 \(pop1\): below redundancy: (\d+)\s+repair queue: (\d+) chunks, "
                       r"(\d+) in flight.*lost (\d+)")
TICK = os.sysconf("SC_CLK_TCK")


class BenchLab(labutil.Lab):
    extra = []

    def lab_cmd(self, *args, **kw):
        if args and args[0] == "up":
            args = tuple(args) + ("--grace-seconds", str(GRACE_S)) + tuple(self.extra)
        return super().lab_cmd(*args, **kw)


def dir_bytes(path):
    total = 0
    for root, _, names in os.walk(path):
        for n in names:
            try:
                total += os.path.getsize(os.path.join(root, n))
            except OSError:
                pass
    return total


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_s(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime
    except OSError:
        return 0.0


def schedstat(pid):
    """(on-CPU s, run-queue wait s) of a process's main thread (the loop)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/schedstat") as f:
            run_ns, wait_ns, _ = f.read().split()
        return int(run_ns) / 1e9, int(wait_ns) / 1e9
    except (OSError, ValueError):
        return 0.0, 0.0


def start_strace(pid, out):
    """strace -c (syscall counts and wall time in each, all threads) on pid."""
    return subprocess.Popen(["strace", "-c", "-w", "-f", "-o", out, "-p", str(pid)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_strace(proc, out):
    """Ends an strace -c and returns {syscall: (calls, seconds)}."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    table = {}
    try:
        with open(out) as f:
            for line in f:
                p = line.split()
                # % time, seconds, usecs/call, calls, [errors], syscall
                if len(p) >= 5 and p[0][0].isdigit() and not p[-1].startswith("total"):
                    table[p[-1]] = (int(p[3]), float(p[1]))
    except OSError:
        pass
    return table


def pop_metric(lab, name):
    return metric_value(parse_metrics(lab_metrics(lab, "pop1")), name) or 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-mb", type=int, default=64)
    ap.add_argument("--object-mb", type=int, default=4)
    ap.add_argument("--gateways-per-pop", type=int, default=8)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--m", type=int, default=2)
    ap.add_argument("--repair-bytes-per-s", type=int, default=20_000_000)
    ap.add_argument("--agent-io-bytes-per-s", type=int, default=1 << 20,
                    help="agents' background_io_bytes_per_s (scrub and repair reads)")
    ap.add_argument("--gateway-store-bytes", type=int, default=1 << 30)
    ap.add_argument("--scrub-period-s", type=int, default=604800)
    ap.add_argument("--strace-dir", default="",
                    help="attach strace -c -w -f to pop1 and the live agents of r1 during the "
                         "repair, write the tables here and print fsync counts per fragment")
    ap.add_argument("--pop-arg", action="append", default=[], metavar="--NAME=VALUE",
                    help="extra POP option, e.g. --pop-arg=--repairs-in-flight-max=16")
    a = ap.parse_args()
    BenchLab.extra = ["--repair-bytes-per-s", str(a.repair_bytes_per_s),
                      "--gateway-store-bytes", str(a.gateway_store_bytes),
                      f"--agent-arg=--background-io-bytes-per-s={a.agent_io_bytes_per_s}",
                      f"--agent-arg=--scrub-period-s={a.scrub_period_s}"]
    BenchLab.extra += [f"--pop-arg={x}" for x in a.pop_arg]
    gpp = a.gateways_per_pop
    lab = BenchLab(pops=2, gateways_per_pop=gpp, k=a.k, m=a.m, pop_cache_bytes=0)
    lab.up()
    try:
        lab.init_client()
        n = max(1, a.data_mb // a.object_mb)
        t_put = time.monotonic()
        src = os.path.join(lab.work, "obj")
        for i in range(n):
            write_random_file(src, a.object_mb << 20)
            lab.put(src, f"o{i}")
        put_s = time.monotonic() - t_put
        for i in range(n):
            lab.wait_placed(f"o{i}", timeout=1800)
        placed_s = time.monotonic() - t_put
        # Both regions placed: the POPs drop their copies (cache 0) once the
        # other region confirmed; wait for pop1's disk to empty.
        pop1_dir = os.path.join(lab.node("pop1")["data_dir"], "chunks")
        deadline = time.monotonic() + 300
        while dir_bytes(pop1_dir) > 0 and time.monotonic() < deadline:
            time.sleep(1)
        left = dir_bytes(pop1_dir)
        gws = [g for g in lab.nodes("gateway") if g["region"] == "r1" and g["id"] != "gw1001"]
        held = {g["id"]: dir_bytes(os.path.join(g["data_dir"], "fragments")) for g in gws}
        victim = max(held, key=lambda k: held[k])
        r1 = [g for g in lab.nodes("gateway") if g["region"] == "r1"]
        # Scrubbing (every agent reads its fragments at the scrub pace): RSS.
        scrub_rss = 0
        for _ in range(10):
            scrub_rss = max(scrub_rss, max(rss_kib(g["pid"]) for g in r1))
            time.sleep(0.5)
        before = pop_metric(lab, "mistore_repair_bytes_total")
        pop1_pid = lab.node("pop1")["pid"]
        live = [g for g in r1 if g["id"] != victim]
        cpu0 = cpu_s(pop1_pid), sum(cpu_s(g["pid"]) for g in live)
        traces = []
        if a.strace_dir:
            os.makedirs(a.strace_dir, exist_ok=True)
            for name, pid in [("pop1", pop1_pid)] + [(g["id"], g["pid"]) for g in live]:
                out = os.path.join(a.strace_dir, f"{name}.strace")
                traces.append((name, start_strace(pid, out), out))
            time.sleep(1)  # attached before the loss
        sched0 = {g["id"]: schedstat(g["pid"]) for g in live}
        sched0["pop1"] = schedstat(pop1_pid)
        lab.kill(victim, "KILL")
        t0 = time.monotonic()
        repair_rss = 0
        while True:
            repair_rss = max(repair_rss, max(rss_kib(g["pid"]) for g in live))
            out = lab.lab_cmd("status").stdout.decode()
            m = STATUS_RE.search(out)
            if m and int(m.group(4)) == 1 and m.group(1) == m.group(2) == m.group(3) == "0":
                break
            if time.monotonic() - t0 > 3600:
                raise SystemExit("repair did not finish in 3600 s:\n" + out)
            time.sleep(0.2)
        t1 = time.monotonic()
        sys_tables = {name: stop_strace(p, out) for name, p, out in traces}
        sched1 = {g["id"]: schedstat(g["pid"]) for g in live}
        sched1["pop1"] = schedstat(pop1_pid)
        cpu1 = cpu_s(pop1_pid), sum(cpu_s(g["pid"]) for g in live)
        traffic = pop_metric(lab, "mistore_repair_bytes_total") - before
        frags = pop_metric(lab, "mistore_repair_fragments_total")
        repair_s = max(t1 - t0 - GRACE_S, 1e-3)
        reads = traffic - held[victim]  # traffic = k fragments read + the fragment written
        print(f"stored {n} x {a.object_mb} MiB = {n * a.object_mb} MiB in {put_s:.0f} s, "
              f"placed in both regions after {placed_s:.0f} s; pop1 chunk copies left: {left} B")
        print(f"victim {victim}: {held[victim] / 1e6:.1f} MB of fragments "
              f"(k={a.k} m={a.m}, {gpp} gateways in r1); {frags:.0f} fragments rebuilt")
        print(f"full redundancy {t1 - t0:.2f} s after SIGKILL (grace {GRACE_S} s): "
              f"repair {repair_s:.2f} s = {held[victim] / repair_s / 1e6:.1f} MB/s of lost fragments")
        print(f"repair traffic {traffic / 1e6:.1f} MB (reads of k fragments + writes) = "
              f"{traffic / repair_s / 1e6:.1f} MB/s")
        print(f"bounds: budget {a.repair_bytes_per_s / 1e6:.1f} MB/s -> "
              f"{traffic / a.repair_bytes_per_s:.2f} s; agents' background reads "
              f"{len(live)} x {a.agent_io_bytes_per_s / 1e6:.1f} MB/s -> "
              f"{reads / (len(live) * a.agent_io_bytes_per_s):.2f} s")
        print(f"CPU during repair: pop1 {cpu1[0] - cpu0[0]:.1f} s, agents of r1 "
              f"{cpu1[1] - cpu0[1]:.1f} s, together {(cpu1[0] - cpu0[0] + cpu1[1] - cpu0[1]) / repair_s:.2f}"
              f" cores of 2 (load from other work not counted)")
        # Where each loop thread's wall time went: on a CPU, runnable but
        # waiting for one (the box's other load; the lab runs at its nice
        # level), or asleep (idle in epoll, or blocked in fsync/disk I/O).
        wall = t1 - t0
        for name in sched1:
            run, wait = (sched1[name][0] - sched0[name][0]), (sched1[name][1] - sched0[name][1])
            print(f"loop thread {name}: on CPU {run:.1f} s, waiting for a CPU {wait:.1f} s, "
                  f"asleep {max(wall - run - wait, 0):.1f} s of {wall:.1f} s")
        for name, table in sys_tables.items():
            syncs = sum(table.get(c, (0, 0))[0] for c in ("fsync", "fdatasync"))
            sync_s = sum(table.get(c, (0, 0))[1] for c in ("fsync", "fdatasync"))
            top = sorted(table.items(), key=lambda kv: -kv[1][1])[:4]
            print(f"strace {name}: {syncs} fsync+fdatasync ({syncs / max(frags, 1):.2f} per rebuilt "
                  f"fragment), {sync_s:.1f} s in them; most time in: " +
                  ", ".join(f"{c} {n} calls {t:.1f} s" for c, (n, t) in top))
        print(f"agent RSS: scrubbing (scrub_period_s={a.scrub_period_s}) max {scrub_rss / 1024:.1f} MiB; "
              f"repairing max {repair_rss / 1024:.1f} MiB")
    finally:
        lab.teardown()


if __name__ == "__main__":
    main()
