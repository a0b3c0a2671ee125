"""No plaintext (content or object name) may reach any daemon's disk."""

import os
import unittest

from labutil import LabTestCase


def files_containing(roots, needle):
    hits = []
    for root in roots:
        for dirpath, _, files in os.walk(root):
            for fn in files:
                path = os.path.join(dirpath, fn)
                try:
                    with open(path, "rb") as f:
                        data = f.read()
                except OSError:
                    continue
                if needle in data:
                    hits.append(path)
    return hits


class CiphertextOnly(LabTestCase):
    LAB_OPTIONS = {"pops": 3, "gateways_per_pop": 6, "k": 4, "m": 2}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        tag = os.urandom(8).hex()
        cls.marker = b"MISTORE-PLAINTEXT-MARKER-" + tag.encode()
        cls.name = f"secret-object-name-{tag}"
        cls.src = os.path.join(cls.lab.work, "marker.bin")
        data = (cls.marker * (64 * 1024 // len(cls.marker) + 1))[:64 * 1024]
        with open(cls.src, "wb") as f:
            f.write(data)
        try:
            cls.lab.put(cls.src, cls.name)
            cls.frags = cls.lab.wait_placed(cls.name)
        except BaseException:
            import sys
            print("\n=== set-up failed; log tails ===\n" + cls.lab.log_tails(), file=sys.stderr)
            cls.lab.teardown()
            raise

    def daemon_dirs(self):
        return [n["data_dir"] for n in self.lab.nodes()]

    def test_placement_reported_fragments(self):
        self.assertTrue(self.frags, "placement listed no fragment")
        pops = {f["pop"] for f in self.frags}
        self.assertGreaterEqual(len(pops), 2, f"fragments in one region only: {self.frags}")

    def test_data_dirs_hold_no_plaintext(self):
        dirs = self.daemon_dirs()
        nfiles = sum(len(fs) for d in dirs for _, _, fs in os.walk(d))
        self.assertGreater(nfiles, 0, "daemons wrote no files at all")
        hits = files_containing(dirs, self.marker)
        self.assertEqual(hits, [], "plaintext marker found on daemon disks")

    def test_data_dirs_hold_no_object_name(self):
        hits = files_containing(self.daemon_dirs(), self.name.encode())
        self.assertEqual(hits, [], "plaintext object name found on daemon disks")

    def test_logs_hold_no_plaintext(self):
        logs = os.path.join(self.lab.dir, "logs")
        self.assertEqual(files_containing([logs], self.marker), [],
                         "plaintext marker found in daemon logs")
        self.assertEqual(files_containing([logs], self.name.encode()), [],
                         "plaintext object name found in daemon logs")

    def test_object_still_reads_back(self):
        out = self.scratch("marker.out")
        self.lab.get(self.name, out)
        self.assertFilesEqual(self.src, out, "marker object")


if __name__ == "__main__":
    unittest.main()
