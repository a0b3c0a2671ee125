#!/usr/bin/env python3
"""Region repair benchmark (issue 6; not part of the test run).

Starts a lab (2 POPs, 8 gateways each, k=4 m=2, POP caches off, grace 2 s),
stores DATA_MB of objects, SIGKILLs the gateway of region r1 holding the
most fragment bytes, and measures the time from the end of the grace period
until `mistore-lab status` shows region r1 back at full redundancy. Prints
the victim's bytes, the repair traffic the POP counted, the achieved rate,
and the bound set by the repair bandwidth budget.

  MISTORE_BIN_DIR=build/release/bin python3 tests/system/bench_repair.py \
      [--data-mb 64] [--repair-bytes-per-s 20000000]
"""

import argparse
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import labutil  # noqa: E402
from labutil import write_random_file, lab_metrics, metric_value, parse_metrics  # noqa: E402

GRACE_S = 2
STATUS_RE = re.compile(r"region r1 \(pop1\): below redundancy: (\d+)\s+repair queue: (\d+) chunks, "
                       r"(\d+) in flight.*lost (\d+)")


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-mb", type=int, default=64)
    ap.add_argument("--object-mb", type=int, default=4)
    ap.add_argument("--repair-bytes-per-s", type=int, default=20_000_000)
    a = ap.parse_args()
    BenchLab.extra = ["--repair-bytes-per-s", str(a.repair_bytes_per_s)]
    lab = BenchLab(pops=2, gateways_per_pop=8, k=4, m=2, pop_cache_bytes=0)
    lab.up()
    try:
        lab.init_client()
        n = max(1, a.data_mb // a.object_mb)
        for i in range(n):
            src = write_random_file(os.path.join(lab.work, f"o{i}"), a.object_mb << 20)
            lab.put(src, f"o{i}")
        for i in range(n):
            lab.wait_placed(f"o{i}", timeout=300)
        gws = [g for g in lab.nodes("gateway") if g["region"] == "r1" and g["id"] != "gw1001"]
        held = {g["id"]: dir_bytes(os.path.join(g["data_dir"], "fragments")) for g in gws}
        victim = max(held, key=lambda k: held[k])
        before = metric_value(parse_metrics(lab_metrics(lab, "pop1")), "mistore_repair_bytes_total") or 0
        lab.kill(victim, "KILL")
        t0 = time.monotonic()
        while True:
            out = lab.lab_cmd("status").stdout.decode()
            m = STATUS_RE.search(out)
            if m and int(m.group(4)) == 1 and m.group(1) == m.group(2) == m.group(3) == "0":
                break
            if time.monotonic() - t0 > 900:
                raise SystemExit("repair did not finish in 900 s:\n" + out)
            time.sleep(0.2)
        t1 = time.monotonic()
        traffic = (metric_value(parse_metrics(lab_metrics(lab, "pop1")), "mistore_repair_bytes_total") or 0) - before
        repair_s = max(t1 - t0 - GRACE_S, 1e-3)
        print(f"victim {victim}: {held[victim] / 1e6:.1f} MB of fragments "
              f"({a.data_mb} MB stored, k=4 m=2, 8 gateways in r1)")
        print(f"full redundancy {t1 - t0:.2f} s after SIGKILL (grace {GRACE_S} s): "
              f"repair {repair_s:.2f} s")
        print(f"repair traffic {traffic / 1e6:.1f} MB (reads of k fragments + writes) = "
              f"{traffic / repair_s / 1e6:.1f} MB/s; budget {a.repair_bytes_per_s / 1e6:.1f} MB/s "
              f"-> bound {traffic / a.repair_bytes_per_s:.2f} s")
    finally:
        lab.teardown()


if __name__ == "__main__":
    main()
