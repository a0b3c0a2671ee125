"""POP failover under writes (issue 5): kill -9 the primary POP of an
object while two clients keep writing it through other POPs. The backup
takes over as primary (the DC standing in as backup), every acknowledged
version reads back exactly, and once the old primary restarts it catches up,
takes its role back and serves the latest version."""

import os
import subprocess
import threading
import time
import unittest

from labutil import PUT_RE, LabTestCase, decode_oid, write_random_file

KIB = 1 << 10


def read(path):
    with open(path, "rb") as f:
        return f.read()


class FailoverUnderWrites(LabTestCase):
    LAB_OPTIONS = {"pops": 3, "gateways_per_pop": 6, "k": 4, "m": 2}

    def conf_for(self, pop):
        conf = self.scratch(f"client-pop{pop}.conf")
        if not os.path.exists(conf):
            self.lab.write_client_conf(f"gw{pop}001", conf, state_dir=self.scratch(f"state{pop}"))
        return conf

    def put_once(self, path, conf):
        cmd = [self.lab.client_bin(), "--config", conf, "put", path, "--name", "doc"]
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=self.lab.client_env(), timeout=60)
        m = PUT_RE.search(p.stdout.decode())
        return (int(m.group(3)) if p.returncode == 0 and m else None), p

    def writer(self, conf, tag, stop, acked, errors):
        i = 0
        while not stop.is_set():
            path = write_random_file(self.scratch(f"{tag}-{i}"), (8 + i % 5) * KIB)
            version, p = self.put_once(path, conf)
            if version is not None:
                acked.append((version, path))
            else:
                errors.append(p.stderr.decode(errors="replace").strip())
                time.sleep(0.2)
            i += 1

    def get_bytes(self, conf, *args):
        out = self.scratch("get.out")
        if os.path.exists(out):
            os.unlink(out)
        self.lab.client("get", "doc", "-o", out, *args, conf=conf)
        return read(out)

    def test_kill_primary_during_writes(self):
        first = write_random_file(self.scratch("v1"), 40 * KIB)
        _, oid, v = self.lab.put(first, "doc")  # through pop1: pop1 is the primary
        primary, backup, _, _ = decode_oid(oid)
        self.assertEqual((primary, v), (1, 1))
        other = ({1, 2, 3} - {primary, backup}).pop()
        writers = [self.conf_for(backup), self.conf_for(other)]
        stop, acked, errors = threading.Event(), [(1, first)], []
        threads = [threading.Thread(target=self.writer, args=(c, f"w{n}", stop, acked, errors))
                   for n, c in enumerate(writers)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        before_kill = len(acked)
        self.lab.kill(f"pop{primary}", "KILL")
        time.sleep(4.0)
        stop.set()
        for t in threads:
            t.join(timeout=120)
        after_kill = [v for v, _ in acked[before_kill:]]
        self.assertGreater(len(after_kill), 0,
                           f"no write was acknowledged while pop{primary} was down; errors: "
                           f"{errors[-5:]}")
        versions = sorted(v for v, _ in acked)
        self.assertEqual(len(versions), len(set(versions)), f"duplicate versions: {versions}")
        # The backup serves, with pop1 still down: every acknowledged version.
        for version, path in acked:
            self.assertEqual(self.get_bytes(writers[1], "--version", str(version)), read(path),
                             f"version {version} while pop{primary} is down")
        latest_v, latest_path = max(acked)
        self.assertEqual(self.get_bytes(writers[1], "--consistency", "atomic"), read(latest_path))

        # The old primary comes back, catches up and serves the latest version.
        self.lab.start(f"pop{primary}")
        conf_primary = self.conf_for(primary)
        deadline = time.monotonic() + 30
        while True:
            try:
                got = self.get_bytes(conf_primary, "--consistency", "atomic")
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        self.assertEqual(got, read(latest_path), "the restarted primary serves the latest version")
        for version, path in acked:
            self.assertEqual(self.get_bytes(conf_primary, "--version", str(version)), read(path),
                             f"version {version} through the restarted primary")
        nxt = write_random_file(self.scratch("after"), 12 * KIB)
        _, oid2, v2 = self.lab.put(nxt, "doc", conf=conf_primary)
        self.assertEqual((oid2, v2), (oid, latest_v + 1), "writes go on from the latest version")
        self.assertAllAlive()


if __name__ == "__main__":
    unittest.main()
