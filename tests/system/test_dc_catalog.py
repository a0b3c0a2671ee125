"""The DC's catalog survives kill -9 in the middle of updates (issue 7).

A writer keeps putting (new names and new versions of old ones) while the DC
is killed with SIGKILL and restarted, twice. Afterwards the catalog must hold
exactly the versions the POPs committed: every change is one transaction and
POPs re-report what the DC did not acknowledge. A sampler reads the cluster
map's epoch all along: it never goes back, across DC restarts and a POP's
kill and restart. The catalog is read with the operator subcommands
(`mistore-dc catalog ... --json`), which open it directly.
"""

import os
import sqlite3
import threading
import time
import unittest

from labutil import LabTestCase, write_random_file


class DcCatalogCrashTest(LabTestCase):
    LAB_OPTIONS = {"pops": 2, "gateways_per_pop": 3, "k": 2, "m": 1}

    # ---- helpers
    def pop_versions(self):
        """{(oid hex, version)} committed at any POP (their own stores)."""
        out = set()
        for i in range(1, self.lab.pops + 1):
            path = os.path.join(self.lab.node(f"pop{i}")["data_dir"], "pop.sqlite")
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
            try:
                rows = db.execute("SELECT o.oid, v.version FROM versions v JOIN objects o "
                                  "ON o.id = v.object WHERE v.prepared = 0").fetchall()
            finally:
                db.close()
            out |= {(bytes(oid).hex(), int(v)) for oid, v in rows}
        return out

    def catalog_versions(self):
        objs = self.lab.dc_cli("catalog", "objects", self.lab.subscriber)["objects"]
        return {(o["oid"], v["version"]) for o in objs for v in o["versions"]}, objs

    def start_epoch_sampler(self):
        self.epochs, self.sampling = [], True

        def run():
            while self.sampling:
                try:
                    self.epochs.append(self.lab.dc_cli("map")["epoch"])
                except Exception:  # the file mid-creation; try again
                    pass
                time.sleep(0.2)
        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    def wait_map(self, pred, what, timeout=30.0):
        deadline = time.monotonic() + timeout
        while True:
            m = self.lab.dc_cli("map")
            if pred(m):
                return m
            if time.monotonic() > deadline:
                self.fail(f"timed out waiting for {what}; map: {m}")
            time.sleep(0.2)

    @staticmethod
    def pop_state(m, pop_id):
        for p in m["pops"]:
            if p["pop_id"] == pop_id:
                return p["state"]
        return None

    # ---- the test
    def test_kill9_mid_updates_then_pop_restart(self):
        sampler = self.start_epoch_sampler()
        stop = threading.Event()
        results = {"ok": 0, "failed": 0}

        def writer():
            i = 0
            while not stop.is_set():
                src = write_random_file(self.scratch(f"w{i}"), 2048 + i)
                try:
                    self.lab.put(src, f"doc{i % 7}")
                    results["ok"] += 1
                except Exception:
                    results["failed"] += 1  # the DC was down: the client reports it
                i += 1
        w = threading.Thread(target=writer, daemon=True)
        w.start()
        try:
            for round_ in range(2):
                time.sleep(3)
                before = self.lab.dc_cli("map")["epoch"]
                self.lab.kill("dc", "KILL")
                time.sleep(0.5)
                self.lab.start("dc")
                # Opening the catalog after a crash moved the epoch on.
                self.wait_map(lambda m: m["epoch"] > before, f"epoch past {before}")
                self.wait_map(lambda m: all(p["state"] == "up" for p in m["pops"]),
                              "every POP up again after DC restart")
            time.sleep(3)
        finally:
            stop.set()
            w.join(timeout=180)
        self.assertGreater(results["ok"], 5, f"too few puts succeeded: {results}")

        # The catalog converges on exactly what the POPs committed.
        deadline = time.monotonic() + 60
        while True:
            pops, (cat, objs) = self.pop_versions(), self.catalog_versions()
            if pops == cat or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        print(f"\n[puts ok={results['ok']} failed={results['failed']}; "
              f"{len(pops)} versions at POPs, {len(cat)} in the catalog]", flush=True)
        self.assertEqual(sorted(pops - cat), [], "versions committed at POPs but missing "
                                                 "from the catalog")
        self.assertEqual(sorted(cat - pops), [], "versions in the catalog that no POP holds")
        latest = {}
        for oid, v in pops:
            latest[oid] = max(latest.get(oid, 0), v)
        self.assertEqual({o["oid"]: o["latest_version"] for o in objs}, latest)
        for o in objs:
            self.assertIn(o["primary_pop"], (1, 2), o)
            self.assertIn(o["backup_pop"], (1, 2), o)

        # A POP killed and restarted: down then up, each a newer epoch.
        e0 = self.lab.dc_cli("map")["epoch"]
        self.lab.kill("pop2", "KILL")
        down = self.wait_map(lambda m: self.pop_state(m, 2) == "down", "pop2 down")
        self.assertGreater(down["epoch"], e0)
        self.assertEqual(self.pop_state(down, 1), "up")
        self.lab.start("pop2")
        up = self.wait_map(lambda m: self.pop_state(m, 2) == "up", "pop2 up")
        self.assertGreater(up["epoch"], down["epoch"])
        pop2 = self.lab.dc_cli("catalog", "pop", "2")
        self.assertEqual((pop2["region"], pop2["state"]), ("r2", "up"))

        self.sampling = False
        sampler.join(timeout=30)
        self.assertGreater(len(self.epochs), 10)
        for a, b in zip(self.epochs, self.epochs[1:]):
            self.assertLessEqual(a, b, f"the epoch went back: {self.epochs}")
        self.assertAllAlive()


if __name__ == "__main__":
    unittest.main()
