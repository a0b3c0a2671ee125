"""Versioned writes under the primary's write lock and the read modes,
through real daemons: two clients entering through different POPs write
the same object concurrently; every acknowledged version is distinct, the
versions are gap-free, and each reads back exactly as written, in every
consistency mode."""

import os
import subprocess
import unittest

from labutil import PUT_RE, LabTestCase, decode_oid, write_random_file

KIB = 1 << 10


def read(path):
    with open(path, "rb") as f:
        return f.read()


class Consistency(LabTestCase):
    LAB_OPTIONS = {"pops": 3, "gateways_per_pop": 6, "k": 4, "m": 2}

    def second_client(self):
        conf = self.scratch("client-b.conf")
        if not os.path.exists(conf):
            self.lab.write_client_conf("gw2001", conf, state_dir=self.scratch("client-b-state"))
        return conf

    def get_bytes(self, name, *args, conf=None):
        out = self.scratch("get.out")
        if os.path.exists(out):
            os.unlink(out)
        self.lab.client("get", name, "-o", out, *args, conf=conf)
        with open(out, "rb") as f:
            return f.read()

    def test_versions_and_read_modes_across_pops(self):
        conf_b = self.second_client()
        v1 = write_random_file(self.scratch("v1"), 300 * KIB)
        v2 = write_random_file(self.scratch("v2"), 200 * KIB + 7)
        _, oid, ver = self.lab.put(v1, "doc")
        self.assertEqual(ver, 1)
        primary, backup, _, _ = decode_oid(oid)
        self.assertEqual(primary, 1, "a new object's primary is its entry POP")
        # The second write enters through pop2: it takes the write lock at pop1.
        _, oid2, ver2 = self.lab.put(v2, "doc", conf=conf_b)
        self.assertEqual((oid2, ver2), (oid, 2))
        want = {1: read(v1), 2: read(v2)}
        for conf in (None, conf_b):
            for mode in ("atomic", "locked", "monotonic"):
                self.assertEqual(self.get_bytes("doc", "--consistency", mode, conf=conf), want[2],
                                 f"{mode} read through {conf or 'pop1'}")
            self.assertEqual(self.get_bytes("doc", "--version", "1", conf=conf), want[1])
            self.assertEqual(self.get_bytes("doc", "--version", "2", conf=conf), want[2])
        p = self.lab.client("get", "doc", "--version", "3", "-o", self.scratch("x"), check=False)
        self.assertEqual(p.returncode, 3, p.stderr)

    def test_concurrent_writers_get_distinct_gapless_versions(self):
        conf_b = self.second_client()
        writes = []
        for i in range(6):
            path = write_random_file(self.scratch(f"w{i}"), (20 + i) * KIB)
            writes.append((path, None if i % 2 == 0 else conf_b))
        procs = []
        for path, conf in writes:
            cmd = [self.lab.client_bin(), "--config", conf or self.lab.client_conf,
                   "put", path, "--name", "shared"]
            procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          env=self.lab.client_env()))
        versions = {}
        for (path, _), p in zip(writes, procs):
            out, err = p.communicate(timeout=120)
            self.assertEqual(p.returncode, 0, err.decode(errors="replace"))
            m = PUT_RE.search(out.decode())
            self.assertIsNotNone(m, out)
            versions[int(m.group(3))] = path
        self.assertEqual(sorted(versions), list(range(1, len(writes) + 1)),
                         "acknowledged versions must be distinct and gap-free")
        for v, path in versions.items():
            self.assertEqual(self.get_bytes("shared", "--version", str(v), conf=conf_b),
                             read(path), f"version {v}")
        latest = max(versions)
        self.assertEqual(self.get_bytes("shared", "--consistency", "atomic"),
                         read(versions[latest]))
        self.assertAllAlive()


if __name__ == "__main__":
    unittest.main()
