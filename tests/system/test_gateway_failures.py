"""Objects survive SIGKILLed gateways (POP caches off: reads need fragments)."""

import unittest

from labutil import LabTestCase, decode_oid, write_random_file

MIB = 1 << 20
CLIENT_GATEWAY = 1001  # the lab's client.conf enters through gw1001


class _GatewayFailureBase(LabTestCase):
    LAB_OPTIONS = {"pops": 3, "gateways_per_pop": 6, "k": 4, "m": 2, "pop_cache_bytes": 0}

    def put_and_place(self, name, size=6 * MIB + 1):
        src = write_random_file(self.scratch(name), size)
        _, oid, _ = self.lab.put(src, name)
        frags = self.lab.wait_placed(name)
        self.assertTrue(frags, "placement listed no fragment")
        return src, oid, frags

    def holders_by_region(self, frags):
        """{pop id: sorted gateway ids holding a fragment}, without the client's agent."""
        out = {}
        for f in frags:
            if f["gateway"] == CLIENT_GATEWAY:
                continue
            out.setdefault(f["pop"], set()).add(f["gateway"])
        return {p: sorted(g) for p, g in out.items()}

    def ordered_regions(self, oid):
        """POP ids, primary first, then backup, then the rest."""
        primary, backup, _, _ = decode_oid(oid)
        rest = [i for i in range(1, self.lab.pops + 1) if i not in (primary, backup)]
        return [primary, backup] + rest

    def kill_gateway(self, gw):
        node = f"gw{gw}"
        self.assertTrue(self.lab.alive(node), f"{node} not alive before the kill")
        self.lab.kill(node, "KILL")
        self.assertFalse(self.lab.alive(node), f"{node} still alive after SIGKILL")

    def read_back(self, name, oid, src, what):
        out = self.scratch(name + ".out")
        self.lab.get(name, out)
        self.assertFilesEqual(src, out, f"{what}: get by name")
        out2 = self.scratch(name + ".oid.out")
        self.lab.get(oid, out2)
        self.assertFilesEqual(src, out2, f"{what}: get by oid")


class OneGatewayKilled(_GatewayFailureBase):
    def test_one_fragment_holder_killed(self):
        src, oid, frags = self.put_and_place("one-gw-down")
        holders = self.holders_by_region(frags)
        victim = None
        for pop in self.ordered_regions(oid):
            if holders.get(pop):
                victim = holders[pop][0]
                break
        self.assertIsNotNone(victim, f"no fragment holder other than gw{CLIENT_GATEWAY}: {frags}")
        self.kill_gateway(victim)
        self.read_back("one-gw-down", oid, src, f"after SIGKILL of gw{victim}")
        alive = [n["id"] for n in self.lab.nodes() if n["id"] != f"gw{victim}"]
        dead = [d for d in self.lab.dead_nodes() if d in alive]
        self.assertEqual(dead, [], f"other daemons died: {dead}")


class TwoGatewaysOfOneRegionKilled(_GatewayFailureBase):
    def test_m_fragment_holders_of_one_region_killed(self):
        m = self.lab.m
        src, oid, frags = self.put_and_place("m-gw-down")
        holders = self.holders_by_region(frags)
        region = next((p for p in self.ordered_regions(oid) if len(holders.get(p, [])) >= m),
                      None)
        self.assertIsNotNone(region, f"no region with {m} fragment holders besides "
                                     f"gw{CLIENT_GATEWAY}: {frags}")
        victims = holders[region][:m]
        for gw in victims:
            self.kill_gateway(gw)
        self.read_back("m-gw-down", oid, src,
                       f"after SIGKILL of {', '.join('gw%d' % g for g in victims)} (pop{region})")
        others = [d for d in self.lab.dead_nodes() if d not in {f"gw{g}" for g in victims}]
        self.assertEqual(others, [], f"other daemons died: {others}")


if __name__ == "__main__":
    unittest.main()
