#!/usr/bin/env python3
"""Issue 5's measurements on a real mistore-lab (not a ctest entry):

  lockbench  mistore-lockbench against pop1 of a lab of 2 POPs x 6 gateways,
             64 concurrent clients, write locks: one object per client, then
             all on one object (three runs), 5 s each after a 1 s warm-up.
  failover   the time from SIGKILL of an object's primary POP to the first
             acknowledged put through its backup: a lab of 3 POPs x 6
             gateways, a 100 KB object put through pop1 (its primary), a
             client entering through the backup's first gateway retrying at
             once (each try starts a `mistore` process). The primary is then
             restarted and takes its role back before the next run.

  tests/lockbench/measure.py lockbench|failover [--runs N]
Binaries from MISTORE_BIN_DIR (else build/release/bin). Prints the load
average before and after each measurement.
"""

import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "system"))
os.environ.setdefault("MISTORE_BIN_DIR", os.path.join(REPO, "build", "release", "bin"))

from labutil import PUT_RE, Lab, decode_oid, write_random_file  # noqa: E402


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def lockbench(runs):
    # mistore-lockbench dials pop1 in plain framing: an --insecure lab.
    lab = Lab(pops=2, gateways_per_pop=6, secure=False)
    try:
        lab.up()
        pop1 = lab.node("pop1")["addr"]
        bench = os.path.join(os.environ["MISTORE_BIN_DIR"], "mistore-lockbench")
        cases = [[]] + [["--contended"]] * runs
        for extra in cases:
            cmd = [bench, "--pop", pop1, "--pop-id", "1", "--backup-id", "2",
                   "--clients", "64", "--seconds", "5"] + extra
            before = load()
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
            print(f"$ {' '.join(cmd[1:])}\n  load before {before}, after {load()}")
            print("  " + p.stdout.decode(errors="replace").strip().replace("\n", "\n  "))
            time.sleep(1)
    finally:
        lab.teardown()


def put_once(lab, conf, path):
    cmd = [lab.client_bin(), "--config", conf, "put", path, "--name", "ft"]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=lab.client_env(), timeout=120)
    m = PUT_RE.search(p.stdout.decode(errors="replace"))
    return int(m.group(3)) if p.returncode == 0 and m else None


def failover(runs):
    lab = Lab(pops=3, gateways_per_pop=6, k=4, m=2)
    try:
        lab.up()
        lab.init_client()
        src = write_random_file(os.path.join(lab.work, "v0"), 100 * 1000)
        _, oid, _ = lab.put(src, "ft")
        primary, backup, _, _ = decode_oid(oid)
        conf = os.path.join(lab.work, "via-backup.conf")
        lab.write_client_conf(f"gw{backup}001", conf, os.path.join(lab.work, "state-b"))
        print(f"object {oid}: primary pop{primary}, backup pop{backup}; "
              f"writer enters through gw{backup}001")
        for run in range(runs):
            path = write_random_file(os.path.join(lab.work, f"w{run}"), 100 * 1000)
            if put_once(lab, conf, path) is None:
                raise SystemExit("precondition: a put through the backup's gateway failed")
            before = load()
            lab.kill(f"pop{primary}", "KILL")
            t0 = time.monotonic()
            tries = 0
            while True:
                tries += 1
                version = put_once(lab, conf, path)
                if version is not None:
                    break
                if time.monotonic() - t0 > 120:
                    raise SystemExit("no put succeeded within 120 s of the crash")
            ms = (time.monotonic() - t0) * 1000
            print(f"run {run + 1}: first acknowledged put (version {version}) {ms:.0f} ms "
                  f"after SIGKILL of pop{primary}, {tries} tries; load before {before}, "
                  f"after {load()}")
            lab.start(f"pop{primary}")
            # The old primary takes its role back: a put through it succeeds.
            deadline = time.monotonic() + 60
            while put_once(lab, lab.client_conf, path) is None:
                if time.monotonic() > deadline:
                    raise SystemExit(f"pop{primary} did not take its role back")
                time.sleep(0.5)
    finally:
        lab.teardown()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["lockbench", "failover"])
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    lockbench(a.runs) if a.what == "lockbench" else failover(a.runs)


if __name__ == "__main__":
    main()
