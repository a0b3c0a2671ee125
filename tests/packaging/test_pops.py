"""The gateway agent with several POPs (issue 10; design §3: a failed POP's
role passes to another and it takes it back when it recovers).

The real agent of this build (under qemu-user for cross targets) runs with
--pops=A,B against stand-in POPs (agentpop.FakePop):
  - A down at start: the agent registers with B and serves it;
  - A comes up: within the failback period the agent probes it, leaves B
    and registers with A;
  - A goes away: the agent fails over to B again (fragments stored through B
    before are still served);
  - both POPs refuse: the agent keeps retrying rounds A then B with a wait
    that grows and stays bounded (reconnect_ms doubling to reconnect_max_ms);
  - a malformed POP list is a usage error (exit 2) with a clear message.
"""

import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import agentpop

AGENT = os.environ.get("MISTORE_AGENT", "")
EMULATOR = shlex.split(os.environ.get("MISTORE_EMULATOR", ""))
# Timeouts: qemu-user on a loaded 2-core machine is slow to start.
START_S = 120 if EMULATOR else 30
RECONNECT_MS, RECONNECT_MAX_MS, FAILBACK_MS = 200, 1000, 1000


class Refuser:
    """A POP that accepts and closes at once (refuses the Hello); records when."""

    def __init__(self, port=0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.times = []
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        self.sock.settimeout(0.1)
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.times.append(time.monotonic())
            c.close()

    def close(self):
        self.stop = True
        self.thread.join()
        self.sock.close()


def port_of(addr):
    return int(addr.rsplit(":", 1)[1])


@unittest.skipUnless(AGENT, "MISTORE_AGENT not set (run through ctest)")
class SeveralPopsTest(unittest.TestCase):
    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="mistore-pops-")
        self.addCleanup(shutil.rmtree, self.work, True)

    def start(self, pops, extra=()):
        args = ["--pops=" + pops, "--reconnect-ms=%d" % RECONNECT_MS,
                "--reconnect-max-ms=%d" % RECONNECT_MAX_MS,
                "--pop-failback-ms=%d" % FAILBACK_MS, "--log-level=info"] + list(extra)
        proc = agentpop.start_agent(AGENT, "127.0.0.1:1", os.path.join(self.work, "agent"),
                                    emulator=EMULATOR, extra=args)
        self.addCleanup(agentpop.stop, proc)
        return proc

    def log(self):
        with open(os.path.join(self.work, "agent", "agent.log"), errors="replace") as f:
            return f.read()[-4000:]

    def test_failover_and_return_to_the_preferred_pop(self):
        a_addr = agentpop.closed_addr()
        b = agentpop.FakePop()
        self.addCleanup(b.close)
        self.start("%s,%s" % (a_addr, b.addr))
        # A is down: B gets the agent.
        hello = b.accept_agent(timeout=START_S)
        self.assertEqual(hello.get(2), [1003], self.log())
        frags = agentpop.make_fragments(2, 4096)
        self.assertEqual(b.store_fragments([frags[0][1]]), 0)

        # A comes up: the agent probes it within the failback period, leaves
        # B and registers with A.
        t0 = time.monotonic()
        a = agentpop.FakePop(port=port_of(a_addr))
        self.addCleanup(a.close)
        hello = a.accept_agent(timeout=START_S)
        waited = time.monotonic() - t0
        self.assertEqual(hello.get(2), [1003])
        print("returned to the preferred POP %.1f s after it came up (failback %d ms)"
              % (waited, FAILBACK_MS))
        b.conn.settimeout(10)
        with self.assertRaises(EOFError, msg="the agent left B"):
            while True:
                b.read_reply()
        self.assertEqual(a.store_fragments([frags[1][1]]), 0)
        self.assertEqual(a.fetch_fragment(frags[0][0], 0), frags[0][1])

        # A goes away: back to B, which still gets every fragment served.
        a.close()
        hello = b.accept_agent(timeout=START_S)
        self.assertEqual(hello.get(2), [1003])
        self.assertEqual(b.fetch_fragment(frags[1][0], 1), frags[1][1])
        self.assertIn("registered with POP", self.log())

    def test_retries_with_bounded_backoff_when_no_pop_answers(self):
        a, b = Refuser(), Refuser()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        self.start("%s,%s" % (a.addr, b.addr))
        deadline = time.monotonic() + START_S
        while len(a.times) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertTrue(a.times, "the agent never dialled its first POP:\n" + self.log())
        time.sleep(6.0)
        ta, tb = list(a.times), list(b.times)
        gaps = [y - x for x, y in zip(ta, ta[1:])]
        print("rounds in 6 s: %d; waits between them: %s"
              % (len(ta), " ".join("%.2f" % g for g in gaps)))
        # Each round tries A, then B (A refused: the next POP at once).
        self.assertGreaterEqual(len(tb), len(ta) - 1)
        # Retries go on: 200, 400, 800, then 1000 ms capped -> about 8 rounds.
        self.assertGreaterEqual(len(ta), 4, gaps)
        # ... and back off: not a busy loop, and the wait is bounded.
        self.assertLessEqual(len(ta), 12, gaps)
        self.assertGreater(max(gaps), 0.7, gaps)           # grew past the first waits
        self.assertLess(max(gaps), RECONNECT_MAX_MS / 1000.0 + 2.0, gaps)  # the cap (+ slack)
        self.assertLess(gaps[0], 0.7, gaps)                # started at reconnect_ms

    def test_bad_pop_list_is_a_usage_error(self):
        for bad in ("127.0.0.1:7100,,127.0.0.1:7101", "127.0.0.1", "127.0.0.1:1,127.0.0.1:1"):
            cmd = EMULATOR + [AGENT, "--gateway-id=1", "--subscriber=a", "--pops=" + bad,
                              "--data-dir=" + os.path.join(self.work, "bad")]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=START_S)
            self.assertEqual(r.returncode, 2, (bad, r.stderr))
            self.assertIn("pops", r.stderr)


if __name__ == "__main__":
    unittest.main()
