"""An object survives the loss of its primary POP (read through the backup)."""

import os
import unittest

from labutil import LabTestCase, decode_oid, write_random_file

MIB = 1 << 20


class _PopFailoverBase(LabTestCase):
    LAB_OPTIONS = {"pops": 3, "gateways_per_pop": 6, "k": 4, "m": 2}
    ENTRY_POP = 1  # the POP whose first gateway the writer enters through

    def conf_for_pop(self, pop):
        """A client config entering through POP pop's first gateway."""
        if pop == 1:
            return self.lab.client_conf
        path = os.path.join(self.lab.dir, f"client-pop{pop}.conf")
        state_dir = os.path.join(self.lab.dir, f"client-pop{pop}")
        if not os.path.exists(path):
            self.lab.write_client_conf(f"gw{pop * 1000 + 1}", path, state_dir)
        return path

    def run_failover(self):
        name = f"failover-from-pop{self.ENTRY_POP}"
        src = write_random_file(self.scratch(name), 5 * MIB + 123)
        writer = self.conf_for_pop(self.ENTRY_POP)
        _, oid, _ = self.lab.put(src, name, conf=writer)
        primary, backup, gateway, _ = decode_oid(oid)
        pops = range(1, self.lab.pops + 1)
        self.assertIn(primary, pops, f"oid {oid}: primary POP {primary} not in the lab")
        self.assertIn(backup, pops, f"oid {oid}: backup POP {backup} not in the lab")
        self.assertNotEqual(primary, backup, f"oid {oid}: primary == backup")
        self.assertEqual(gateway, self.ENTRY_POP * 1000 + 1,
                         f"oid {oid}: creating gateway should be the writer's agent")
        self.lab.wait_placed(name, conf=writer)

        # Read through a POP that is neither primary nor backup if there is one.
        neither = [p for p in pops if p not in (primary, backup)]
        reader_pop = neither[0] if neither else backup
        reader = self.conf_for_pop(reader_pop)
        pre = self.scratch(name + ".pre")
        self.lab.get(name, pre, conf=reader)
        self.assertFilesEqual(src, pre, f"precondition: read through pop{reader_pop} "
                                        "before any failure")

        self.lab.kill(f"pop{primary}", "KILL")
        self.assertFalse(self.lab.alive(f"pop{primary}"))
        what = (f"oid {oid} (primary pop{primary}, backup pop{backup}) read through "
                f"pop{reader_pop} after SIGKILL of pop{primary}")
        out = self.scratch(name + ".out")
        self.lab.get(name, out, conf=reader)
        self.assertFilesEqual(src, out, what + ", by name")
        out2 = self.scratch(name + ".oid.out")
        self.lab.get(oid, out2, conf=reader)
        self.assertFilesEqual(src, out2, what + ", by oid")
        dead = [d for d in self.lab.dead_nodes() if d != f"pop{primary}"]
        self.assertEqual(dead, [], f"other daemons died: {dead}")


class PrimaryPopKilledWrittenThroughPop1(_PopFailoverBase):
    ENTRY_POP = 1

    def test_reads_back_from_backup(self):
        self.run_failover()


class PrimaryPopKilledWrittenThroughPop2(_PopFailoverBase):
    ENTRY_POP = 2

    def test_reads_back_from_backup(self):
        self.run_failover()


if __name__ == "__main__":
    unittest.main()
