"""The gateway agent's footprint budget (issue 10), checked against the real
static agent of the build that registers this test (tests/packaging/CMakeLists.txt):

  - stripped static binary <= 2.5 MB on armhf (recorded for other targets);
  - idle RSS <= 8 MB once registered with its POP;
  - peak RSS <= 24 MB while storing 64 fragments sent all at once.

Natively (x86_64, the closest stand-in for a gateway) the agent's own RSS is
read from /proc. Under qemu-user (cross builds) the process is qemu running
the agent; qemu's own baseline, measured on a static program that only
sleeps (qemu_baseline.c), is subtracted. Budgets are decimal megabytes.
Results go to $MISTORE_FOOTPRINT_OUT (JSON) and to stdout.
"""

import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import agentpop

MB = 1000 * 1000
SIZE_BUDGET = int(2.5 * MB)
IDLE_BUDGET = 8 * MB
BUSY_BUDGET = 24 * MB
CONCURRENT = 64
# A 4 MiB chunk (the largest the chunker cuts) with the lab's k = 4.
FRAGMENT_BYTES = int(os.environ.get("MISTORE_FOOTPRINT_FRAGMENT_BYTES", 1 << 20))

AGENT = os.environ.get("MISTORE_AGENT", "")
FIRMWARE = os.environ.get("MISTORE_FIRMWARE", "")
EMULATOR = os.environ.get("MISTORE_EMULATOR", "").split()
BASELINE = os.environ.get("MISTORE_QEMU_BASELINE", "")
TARGET = os.environ.get("MISTORE_TARGET", "")
OUT = os.environ.get("MISTORE_FOOTPRINT_OUT", "")


def record(**kv):
    data = {}
    if OUT and os.path.exists(OUT):
        with open(OUT) as f:
            data = json.load(f)
    data.update(kv)
    data["target"] = TARGET
    data["emulator"] = " ".join(EMULATOR)
    if OUT:
        with open(OUT, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
    for k, v in kv.items():
        print("footprint %s %s=%s" % (TARGET, k, v))


def qemu_baseline_kib():
    """(VmRSS, VmHWM) of qemu running a program that does nothing."""
    if not EMULATOR:
        return 0, 0
    p = subprocess.Popen(EMULATOR + [BASELINE])
    try:
        time.sleep(1.0)
        return agentpop.rss_kib(p.pid), agentpop.rss_kib(p.pid, "VmHWM")
    finally:
        agentpop.stop(p)


class FootprintTest(unittest.TestCase):
    def setUp(self):
        if not AGENT or not os.path.exists(AGENT):
            self.skipTest("MISTORE_AGENT not set: run through ctest of an agent build")
        self.dir = tempfile.mkdtemp(prefix="mistore-footprint-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def test_stripped_static_binary_size(self):
        self.assertTrue(os.path.exists(FIRMWARE), FIRMWARE)
        size = os.path.getsize(FIRMWARE)
        record(stripped_bytes=size)
        desc = subprocess.run(["file", "-b", FIRMWARE], capture_output=True, text=True).stdout
        if os.environ.get("MISTORE_STATIC_AGENT") == "ON":
            self.assertIn("statically linked", desc)
        if TARGET == "armhf":
            self.assertLessEqual(size, SIZE_BUDGET,
                                 "stripped static agent is %d bytes, budget %d" % (size, SIZE_BUDGET))

    def test_rss_idle_and_storing_64_fragments(self):
        base_rss, base_hwm = qemu_baseline_kib()
        pop = agentpop.FakePop()
        self.addCleanup(pop.close)
        agent = agentpop.start_agent(FIRMWARE if os.path.exists(FIRMWARE) else AGENT,
                                     pop.addr, self.dir, emulator=EMULATOR)
        self.addCleanup(agentpop.stop, agent)
        hello = pop.accept_agent(timeout=120)
        self.assertEqual(hello.get(1), [agentpop.ROLE_GATEWAY])
        time.sleep(1.0)  # settle: registered, nothing to do
        idle_kib = agentpop.rss_kib(agent.pid) - base_rss

        blobs = agentpop.make_fragments(CONCURRENT, FRAGMENT_BYTES)
        t0 = time.monotonic()
        errors = pop.store_fragments([b for _, b in blobs])
        store_s = time.monotonic() - t0
        self.assertEqual(errors, 0, "the agent refused fragments")
        busy_kib = agentpop.rss_kib(agent.pid, "VmHWM") - base_hwm
        after_kib = agentpop.rss_kib(agent.pid) - base_rss
        # The fragments really are on disk and come back intact.
        chunk_id, blob = blobs[CONCURRENT - 1]
        self.assertEqual(pop.fetch_fragment(chunk_id, (CONCURRENT - 1) % 6), blob)
        self.assertIsNone(agent.poll(), "agent exited")

        record(idle_rss_bytes=idle_kib * 1024, busy_peak_rss_bytes=busy_kib * 1024,
               after_rss_bytes=after_kib * 1024, qemu_baseline_rss_bytes=base_rss * 1024,
               qemu_baseline_peak_bytes=base_hwm * 1024, fragments=CONCURRENT,
               fragment_payload_bytes=FRAGMENT_BYTES, store_seconds=round(store_s, 2))
        self.assertLessEqual(idle_kib * 1024, IDLE_BUDGET,
                             "idle RSS %d KiB over budget" % idle_kib)
        self.assertLessEqual(busy_kib * 1024, BUSY_BUDGET,
                             "peak RSS storing %d fragments %d KiB over budget" % (CONCURRENT, busy_kib))


if __name__ == "__main__":
    unittest.main()
