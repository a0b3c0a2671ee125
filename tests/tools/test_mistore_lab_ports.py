"""tools/mistore-lab's port allocator: the ports it hands out for daemons to
bind later lie below the kernel's ephemeral range (so no connection or
port-0 listener made meanwhile can take them), are bindable, and are not
handed out twice while held in the registry."""

import importlib.machinery
import importlib.util
import json
import os
import socket
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def load_lab():
    path = os.path.join(REPO, "tools", "mistore-lab")
    loader = importlib.machinery.SourceFileLoader("mistore_lab_ports_test", path)
    mod = importlib.util.module_from_spec(
        importlib.util.spec_from_loader("mistore_lab_ports_test", loader))
    loader.exec_module(mod)
    return mod


class PortAllocatorTest(unittest.TestCase):
    def setUp(self):
        self.lab = load_lab()
        self.tmp = tempfile.TemporaryDirectory()
        self.registry = os.path.join(self.tmp.name, "ports.json")

    def tearDown(self):
        self.tmp.cleanup()

    def small_pool(self, size):
        """Restricts the allocator to `size` ports that are bindable now;
        returns them as a set."""
        low = self.lab.ephemeral_low()
        lo, hi = low - 4000, low - 4000 + size - 1
        self.lab.port_pool = lambda: (lo, hi)
        return {p for p in range(lo, hi + 1) if self.lab.port_bindable(p, "127.0.0.1")}

    def pick(self, n, owner_dir=None):
        return self.lab.pick_free_ports(n, owner_dir=owner_dir, registry=self.registry)

    def test_ports_lie_below_the_ephemeral_range_and_are_distinct(self):
        low = self.lab.ephemeral_low()
        ports = self.pick(50)
        self.assertEqual(len(ports), 50)
        self.assertEqual(len(set(ports)), 50)
        for p in ports:
            self.assertLess(p, low)
            self.assertGreaterEqual(p, 1024)

    def test_held_ports_are_not_handed_out_again(self):
        free = self.small_pool(64)
        self.assertGreater(len(free), 40, "too few bindable ports to test with")
        first = self.pick(len(free) - 10)
        second = self.pick(10)
        self.assertFalse(set(first) & set(second))
        self.assertEqual(set(first) | set(second), free)
        self.lab.PORT_TRIES_MAX = 2000
        with self.assertRaises(self.lab.LabError):
            self.pick(1)

    def test_a_port_someone_listens_on_is_skipped(self):
        free = self.small_pool(16)
        busy = sorted(free)[0]
        s = socket.socket()
        s.bind(("127.0.0.1", busy))
        s.listen(1)
        try:
            ports = self.pick(len(free) - 1)
            self.assertNotIn(busy, ports)
            self.assertEqual(set(ports), free - {busy})
        finally:
            s.close()

    def age_registry(self, seconds):
        with open(self.registry) as f:
            reg = json.load(f)
        for e in reg.values():
            e["t"] -= seconds
        with open(self.registry, "w") as f:
            json.dump(reg, f)

    def test_a_hold_ends_after_its_time_unless_the_lab_lives_on(self):
        free = self.small_pool(24)
        live = os.path.join(self.tmp.name, "live-lab")
        gone = os.path.join(self.tmp.name, "gone-lab")
        for d in (live, gone):
            os.makedirs(d)
            with open(os.path.join(d, "lab.json"), "w") as f:
                f.write("{}\n")
        n = len(free) // 3
        live_ports = self.pick(n, owner_dir=live)
        gone_ports = self.pick(n, owner_dir=gone)
        anon_ports = self.pick(n)
        os.remove(os.path.join(gone, "lab.json"))
        self.age_registry(self.lab.PORT_HOLD_S + 1)
        # Everything but the live lab's ports is free again.
        again = self.pick(len(free) - n)
        self.assertEqual(set(again), free - set(live_ports))
        self.assertTrue(set(gone_ports) | set(anon_ports) <= set(again))
        # ...and even the live lab's ports once the longest hold is over.
        self.age_registry(self.lab.PORT_HOLD_MAX_S)
        self.assertEqual(set(self.pick(len(free))), free)

    def test_a_damaged_registry_is_started_afresh(self):
        with open(self.registry, "w") as f:
            f.write("not json")
        self.assertEqual(len(self.pick(3)), 3)
        with open(self.registry) as f:
            self.assertEqual(len(json.load(f)), 3)

    def test_the_pool_needs_room_below_the_ephemeral_range(self):
        self.assertEqual(self.lab.ephemeral_low("/nonexistent"), 32768)
        self.lab.ephemeral_low = lambda: 1100
        with self.assertRaises(self.lab.LabError):
            self.lab.port_pool()


if __name__ == "__main__":
    unittest.main()
