"""Round trips through a real lab: sizes from 0 B to 64 MiB, versions, ls."""

import os
import unittest

from labutil import LabTestCase, write_random_file

MIB = 1 << 20


class RoundTrip(LabTestCase):
    LAB_OPTIONS = {"pops": 3, "gateways_per_pop": 6, "k": 4, "m": 2}

    def roundtrip(self, size):
        src = write_random_file(self.scratch(f"src-{size}"), size)
        name = f"rt-{size}"
        got_name, oid, version = self.lab.put(src, name)
        self.assertEqual(got_name, name)
        self.assertEqual(version, 1)
        out = self.scratch(f"out-{size}")
        self.lab.get(name, out, size_hint=size)
        self.assertFilesEqual(src, out, f"{size} B by name")
        out_oid = self.scratch(f"out-oid-{size}")
        self.lab.get(oid, out_oid, size_hint=size)
        self.assertFilesEqual(src, out_oid, f"{size} B by oid")

    def test_empty_file(self):
        self.roundtrip(0)

    def test_one_byte(self):
        self.roundtrip(1)

    def test_one_mib_plus_one(self):
        self.roundtrip(MIB + 1)

    def test_64_mib(self):
        self.roundtrip(64 * MIB)

    def test_get_to_stdout(self):
        src = write_random_file(self.scratch("stdout-src"), 3000)
        self.lab.put(src, "to-stdout")
        p = self.lab.client("get", "to-stdout")
        with open(src, "rb") as f:
            self.assertEqual(p.stdout, f.read(), "get without -o must write the object to stdout")

    def test_name_defaults_to_file_name(self):
        src = write_random_file(self.scratch("default-name.bin"), 10)
        name, _, version = self.lab.put(src)
        self.assertEqual(version, 1)
        self.lab.get(name, self.scratch("default-name.out"))
        self.assertFilesEqual(src, self.scratch("default-name.out"), "put without --name")

    def test_versions(self):
        a = write_random_file(self.scratch("v1"), 5000)
        b = write_random_file(self.scratch("v2"), 7000)
        _, oid1, v1 = self.lab.put(a, "versioned")
        _, oid2, v2 = self.lab.put(b, "versioned")
        self.assertEqual(v1, 1)
        self.assertEqual(v2, 2, "putting the same name twice must create version 2")
        self.assertEqual(oid1, oid2, "versions of one name share the object id")
        self.lab.get("versioned", self.scratch("latest"))
        self.assertFilesEqual(b, self.scratch("latest"), "latest version")
        self.lab.get("versioned", self.scratch("first"), version=1)
        self.assertFilesEqual(a, self.scratch("first"), "--version 1")
        self.lab.get("versioned", self.scratch("second"), version=2)
        self.assertFilesEqual(b, self.scratch("second"), "--version 2")

    def test_ls(self):
        sizes = {"ls-a": [10], "ls-b": [20, 30], "ls-c": [0, 40, 50]}
        oids = {}
        for name, versions in sizes.items():
            for i, size in enumerate(versions):
                src = write_random_file(self.scratch(f"{name}-{i}"), size)
                _, oids[name], _ = self.lab.put(src, name)
        p = self.lab.client("ls")
        listed = {}
        for line in p.stdout.decode().splitlines():
            parts = line.rsplit(None, 3)
            if len(parts) == 4:
                listed[parts[0].strip()] = parts[1:]
        for name, versions in sizes.items():
            self.assertIn(name, listed, f"ls output lacks {name}:\n{p.stdout.decode()}")
            ver, size, oid = listed[name]
            self.assertEqual(ver, f"v{len(versions)}", f"{name}: latest version")
            self.assertEqual(size, str(versions[-1]), f"{name}: size of latest version")
            self.assertEqual(oid.lower(), oids[name], f"{name}: oid")


if __name__ == "__main__":
    unittest.main()
