"""DC-tier objects on a real lab (issue 11's HG-DC write: "writing on the
datacenter").

`mistore put FILE --tier dc` creates an object whose oid names the DC
(replica 0) as primary and backup: the entry POP relays its chunks and its
commit to the DC's stand-in, which is its one replica and lock server; no
POP keeps a replica and no gateway a fragment. Checked here as a user would
see it:
  - put / get round trip, a second version, both versions readable; the
    catalog shows the object with POP ids 0 and 0; no fragment anywhere;
  - with every POP but the entry POP down, the object is still read and
    written (a POP-tier object needs its primary or backup);
  - after the DC restarts, written at once through a POP that has not
    registered again yet, and read through another region's POP (the POPs
    keep no cache here: every chunk comes from the DC);
  - the tier is fixed when the object is created: `--tier dc` on a POP-tier
    name is refused and changes nothing; a bad --tier value is a usage error;
  - the DC's backup copier copies DC-tier versions from the stand-in.
"""

import json
import os
import time
import unittest

from labutil import LabTestCase, sha256_file, write_random_file

MIB = 1 << 20


class DcTierTest(LabTestCase):
    # No POP cache: a read of a DC-tier object has to come from the DC.
    LAB_OPTIONS = {"pops": 3, "gateways_per_pop": 2, "k": 1, "m": 1, "pop_cache_bytes": 0}

    def scratch(self, name):
        return os.path.join(self.lab.work, name)

    def random_file(self, name, size):
        path = self.scratch(name)
        write_random_file(path, size)
        return path

    def put_dc(self, path, name, conf=None):
        p = self.lab.client("--json", "put", path, "--name", name, "--tier", "dc", conf=conf,
                            timeout=180)
        event = json.loads(p.stdout.decode().splitlines()[0])
        self.assertEqual(event["event"], "put")
        return event

    def catalog_object(self, oid):
        objs = self.lab.dc_cli("catalog", "objects", self.lab.subscriber)["objects"]
        found = [o for o in objs if o["oid"] == oid]
        self.assertEqual(len(found), 1, f"{oid} not in the catalog: {objs}")
        return found[0]

    def assert_reads(self, name, want_sha, version=None, conf=None):
        out = self.scratch(f"out-{name}-{version}-{time.monotonic_ns()}")
        self.lab.get(name, out, version=version, conf=conf, size_hint=8 * MIB)
        self.assertEqual(sha256_file(out), want_sha, f"{name} v{version} read back differs")
        os.remove(out)

    def test_a_round_trip_two_versions_no_fragments(self):
        v1 = self.random_file("a1", 3 * MIB + 17)
        v2 = self.random_file("a2", 2 * MIB + 5)
        put1 = self.put_dc(v1, "archive-a")
        self.assertEqual(put1["tier"], "dc")
        self.assertTrue(put1["oid"].startswith("0" * 16), put1["oid"])
        self.assertEqual(put1["version"], 1)
        put2 = self.put_dc(v2, "archive-a")
        self.assertEqual((put2["oid"], put2["version"]), (put1["oid"], 2))
        self.assert_reads("archive-a", sha256_file(v2))
        self.assert_reads("archive-a", sha256_file(v1), version=1)
        # The DC reported its versions to its own catalog, as a primary POP does.
        obj = self.catalog_object(put1["oid"])
        self.assertEqual((obj["primary_pop"], obj["backup_pop"]), (0, 0))
        self.assertEqual(obj["latest_version"], 2)
        listed = [json.loads(line) for line in
                  self.lab.client("--json", "ls").stdout.decode().splitlines()]
        row = [o for o in listed if o.get("name") == "archive-a"]
        self.assertEqual(len(row), 1, listed)
        self.assertEqual((row[0]["tier"], row[0]["version"]), ("dc", 2))
        self.assertIn("archive-a  v2  ", self.lab.client("ls").stdout.decode())
        self.assertIn("(DC tier)", self.lab.client("ls").stdout.decode())
        # No POP places a DC-tier object's chunks on gateways.
        frags, _, _, text = self.lab.placement("archive-a")
        self.assertEqual(frags, [], text)
        self.assertIn("DC tier", text)
        time.sleep(1.5)  # a POP that would place does so within a second here
        frags, _, _, text = self.lab.placement("archive-a")
        self.assertEqual(frags, [], text)

    def test_b_only_the_entry_pop_needed(self):
        data = self.random_file("b1", 1 * MIB + 3)
        self.put_dc(data, "archive-b")
        self.lab.kill("pop2")
        self.lab.kill("pop3")
        try:
            self.assert_reads("archive-b", sha256_file(data))
            data2 = self.random_file("b2", 512 * 1024)
            put = self.put_dc(data2, "archive-b")
            self.assertEqual(put["version"], 2)
            self.assert_reads("archive-b", sha256_file(data2))
        finally:
            self.lab.start("pop2")
            self.lab.start("pop3")

    def test_c_dc_restart_then_read_from_another_region(self):
        data = self.random_file("c1", 2 * MIB + 1)
        self.put_dc(data, "archive-c")
        self.lab.kill("dc")
        self.lab.start("dc")
        # At once through POP 1, which has not said Hello to the new DC yet
        # (its periodic registration failed while the DC was down): the POP
        # says Hello first on the new connection. Regression: its LookupName
        # opened the connection and was refused ("say Hello before anything
        # else"; seen in CI).
        small = self.random_file("c0", 1000)
        self.lab.put(small, "after-dc-restart")
        self.put_dc(small, "archive-after-dc-restart")
        other = self.lab.write_client_conf("gw2001", self.scratch("c.conf"),
                                           self.scratch("c-state"))
        deadline = time.monotonic() + 30
        while True:  # the POPs reconnect to the restarted DC
            out = self.scratch("c-out")
            p = self.lab.get("archive-c", out, conf=other, check=False, size_hint=2 * MIB)
            if p.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace"))
        self.assertEqual(sha256_file(out), sha256_file(data))
        # Written again after the restart: the lock and the commit at the DC.
        put = self.put_dc(data, "archive-c", conf=other)
        self.assertEqual(put["version"], 2)

    def test_d_tier_is_fixed_at_creation(self):
        data = self.random_file("d1", 300 * 1024)
        name, oid, version = self.lab.put(data, "normal-d")
        self.assertFalse(oid.startswith("0" * 16), oid)
        other = self.random_file("d2", 200 * 1024)
        p = self.lab.client("put", other, "--name", "normal-d", "--tier", "dc", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("fixed when it is created", p.stderr.decode(errors="replace"))
        self.assert_reads("normal-d", sha256_file(data))
        self.assertEqual(self.catalog_object(oid)["latest_version"], 1)
        # A DC-tier name written without --tier stays in the DC tier.
        put = self.put_dc(data, "archive-d")
        p = self.lab.client("--json", "put", other, "--name", "archive-d")
        event = json.loads(p.stdout.decode().splitlines()[0])
        self.assertEqual((event["oid"], event["tier"], event["version"]),
                         (put["oid"], "dc", 2))
        bad = self.lab.client("put", other, "--tier", "cold", check=False)
        self.assertEqual(bad.returncode, 2, bad.stderr)
        self.assertIn("--tier is pop or dc", bad.stderr.decode(errors="replace"))

    def test_e_backup_copier_reads_the_dc_tier(self):
        self.lab.dc_cli("backup", "set", self.lab.subscriber, "latest")
        data = self.random_file("e1", 1 * MIB + 9)
        put = self.put_dc(data, "archive-e")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            versions = self.catalog_object(put["oid"])["versions"]
            if any(v["version"] == 1 and v["backed_up"] for v in versions):
                break
            time.sleep(0.5)
        self.assertTrue(any(v["version"] == 1 and v["backed_up"] for v in versions), versions)


if __name__ == "__main__":
    unittest.main()
