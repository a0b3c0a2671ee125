"""Retention garbage collection, the DC's backup store and the cold tier on a
real lab (issue 7).

GC: three versions of one file and a second file whose content equals the
first version (its chunks dedup with it, per user). With the volume's policy
keep_last=1 (no daily/weekly), `mistore-dc retention apply` must collect
exactly versions 1 and 2 of the first file; the POPs then drop what nothing
kept references and delete those chunks' fragments from their gateways: the
fragment files of chunks only version 2 used disappear from the gateways'
store dirs (all k+m of them, in both replicas' regions), no fragment of a
chunk a kept version uses does, kept versions read back byte-identical, and
the reclaimed bytes are reported (`retention gc --json`, DC /metrics). The
DC's backup copies of the collected versions go too.

Cold tier: POPs run with cold_after_s=3; an object read once and then left
alone is dropped from the POPs' disks and marked cold in the catalog; a read
returns it byte-identical and marks it warm again.
"""

import os
import re
import time
import unittest
import urllib.request

from labutil import LabTestCase, Lab, sha256_file, write_random_file

COLD_AFTER_S = 3


class GcLab(Lab):
    """The standard lab, with extra POP and DC settings."""

    def up(self):
        orig = self.lab_cmd

        def lab_cmd(*args, **kw):
            if args and args[0] == "up":
                args = tuple(args) + ("--pop-arg=--gc-poll-ms=500",
                                      f"--pop-arg=--cold-after-s={COLD_AFTER_S}",
                                      "--dc-arg=--retention-interval-s=0")
            return orig(*args, **kw)
        self.lab_cmd = lab_cmd
        try:
            super().up()
        finally:
            self.lab_cmd = orig


class DcGcTest(LabTestCase):
    LAB_OPTIONS = {"pops": 2, "gateways_per_pop": 3, "k": 2, "m": 1}
    prefix_len = 64

    @classmethod
    def setUpClass(cls):
        # As LabTestCase, with GcLab.
        import labutil
        saved = labutil.Lab
        labutil.Lab = GcLab
        try:
            super().setUpClass()
        finally:
            labutil.Lab = saved

    # ---- helpers
    def scratch(self, name):
        return os.path.join(self.lab.work, name)

    def fragment_files(self):
        """{(chunk hex, index, gateway node): size} over every gateway's store."""
        out = {}
        for n in self.lab.nodes("gateway"):
            for root, _, files in os.walk(os.path.join(n["data_dir"], "fragments")):
                for f in files:
                    m = re.fullmatch(r"([0-9a-f]{64})\.(\d+)", f)
                    if m:  # chunk ids as `mistore placement` prints them (a prefix)
                        out[(m.group(1)[:self.prefix_len], int(m.group(2)), n["id"])] = \
                            os.path.getsize(os.path.join(root, f))
        return out

    def chunks_of(self, name, version):
        frags = self.lab.wait_placed(name, version, timeout=90)
        ids = {f["chunk"].lower() for f in frags}
        self.prefix_len = min(len(i) for i in ids)
        self.assertGreaterEqual(self.prefix_len, 12)
        return {i[:self.prefix_len] for i in ids}

    def objects(self):
        return {o["oid"]: o for o in self.lab.dc_cli("catalog", "objects", self.lab.subscriber)["objects"]}

    def wait(self, pred, what, timeout=60.0):
        deadline = time.monotonic() + timeout
        while True:
            v = pred()
            if v:
                return v
            if time.monotonic() > deadline:
                self.fail(f"timed out waiting for {what}")
            time.sleep(0.3)

    def metric(self, node_id, name):
        url = self.lab.node(node_id)["metrics_url"]
        text = urllib.request.urlopen(url, timeout=10).read().decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def assert_reads_back(self, name, src, version=None):
        out = self.scratch(f"out-{name}-{version}")
        self.lab.get(name, out, version=version, size_hint=os.path.getsize(src))
        self.assertEqual(sha256_file(out), sha256_file(src), f"{name} v{version} differs")

    # ---- the tests
    def test_1_retention_collects_everywhere(self):
        sub = self.lab.subscriber
        self.lab.dc_cli("backup", "set", sub, "all")
        a = write_random_file(self.scratch("a"), 3 << 20)
        b = write_random_file(self.scratch("b"), 3 << 20)
        c = write_random_file(self.scratch("c"), 2 << 20)
        _, oid, v1 = self.lab.put(a, "doc")
        _, _, v2 = self.lab.put(b, "doc")
        _, _, v3 = self.lab.put(c, "doc")
        _, twin_oid, _ = self.lab.put(a, "twin")  # same chunks as doc v1
        self.assertEqual((v1, v2, v3), (1, 2, 3))
        chunks = {v: self.chunks_of("doc", v) for v in (1, 2, 3)}
        twin = self.chunks_of("twin", None)
        self.assertEqual(twin, chunks[1], "dedup: twin should share doc v1's chunks")
        kept = chunks[3] | twin
        gone = chunks[2] - kept
        self.assertTrue(gone, "version 2 has no chunk of its own")
        # Every version copied to the backup store first.
        self.wait(lambda: all(v["backed_up"] for o in self.objects().values()
                              for v in o["versions"]), "backups of every version", 120)
        backup_dir = os.path.join(self.lab.node("dc")["data_dir"], "backup")
        self.assertTrue(os.path.exists(os.path.join(backup_dir, "versions", oid, "2")))

        before = self.fragment_files()
        per_chunk = {}
        for (chunk, _, _) in before:
            per_chunk[chunk] = per_chunk.get(chunk, 0) + 1
        n = self.lab.k + self.lab.m
        for ch in gone | kept:
            self.assertEqual(per_chunk.get(ch), 2 * n, f"chunk {ch[:12]} not in both regions")

        self.lab.dc_cli("retention", "set", sub, "keep_last=1", "daily_days=0", "weekly_weeks=0")
        applied = self.lab.dc_cli("retention", "apply", sub)
        collected = {o["oid"]: o["versions"] for o in applied["objects"]}
        self.assertEqual(collected, {oid: [1, 2]}, applied)
        self.assertEqual(applied["chunks_freed"], len(gone))

        stats = self.wait(lambda: (lambda s: s if s["tasks_pending"] == 0 else None)(
            self.lab.dc_cli("retention", "gc")), "every GC task acknowledged", 90)
        after = self.fragment_files()
        removed = set(before) - set(after)
        self.assertEqual({k[0] for k in removed}, gone,
                         "fragments removed are not exactly those of the freed chunks")
        self.assertEqual(len(removed), len(gone) * 2 * n)
        for k in before:
            if k[0] in kept:
                self.assertIn(k, after, f"fragment of a kept chunk vanished: {k}")
        removed_bytes = sum(before[k] for k in removed)

        # Kept versions read back; the collected ones are gone.
        self.assert_reads_back("doc", c)
        self.assert_reads_back("twin", a)
        p = self.lab.get("doc", self.scratch("v2"), version=2, check=False)
        self.assertNotEqual(p.returncode, 0, "collected version 2 still reads")
        objs = self.objects()
        self.assertEqual([v["collected"] for v in objs[oid]["versions"]], [True, True, False])
        self.assertFalse(os.path.exists(os.path.join(backup_dir, "versions", oid, "2")))
        self.assertTrue(os.path.exists(os.path.join(backup_dir, "versions", oid, "3")))

        rec = stats["reclaimed"]
        self.assertEqual(rec["fragments"], len(removed))
        self.assertGreater(rec["chunk_bytes"], 0)
        self.assertGreater(rec["bytes"], removed_bytes)
        self.assertEqual(stats["versions_collected"], 2)
        m = self.metric("dc", "mistore_dc_gc_reclaimed_bytes_total")
        self.assertEqual(int(m), rec["bytes"])
        print(f"\n[gc: {len(gone)} chunks freed, {len(removed)} fragment files "
              f"({removed_bytes} bytes on gateways) removed; reported: chunk copies "
              f"{rec['chunk_bytes']} bytes, fragments {rec['fragment_bytes']} bytes, "
              f"total {rec['bytes']} bytes]", flush=True)

    def test_2_cold_object_reads_back_warm(self):
        src = write_random_file(self.scratch("cold"), 2 << 20)
        _, oid, _ = self.lab.put(src, "cold1")
        self.lab.wait_placed("cold1", timeout=90)
        self.assert_reads_back("cold1", src)
        cold = self.wait(lambda: self.objects()[oid]["cold"], "the object to go cold",
                         COLD_AFTER_S + 30)
        self.assertTrue(cold)
        self.assertGreater(self.metric("pop1", "mistore_pop_cold_objects")
                           + self.metric("pop2", "mistore_pop_cold_objects"), 0)
        self.assert_reads_back("cold1", src)
        self.wait(lambda: not self.objects()[oid]["cold"], "the object to be warm again", 15)


if __name__ == "__main__":
    unittest.main()
