"""systemd readiness and watchdog (Type=notify units, issue 10).

Each daemon (mistore-dc, mistore-pop, mistore-agent) runs with NOTIFY_SOCKET
pointing at a Unix datagram socket bound by the test and WATCHDOG_USEC set:
  - the first datagram is READY=1, and the daemon's listening port accepts a
    connection made right after it arrives (READY never precedes the bind);
  - WATCHDOG=1 pings then arrive every WATCHDOG_USEC/2, counted over a few
    seconds against the expected number;
  - SIGTERM brings STOPPING=1 and a clean exit.
Also: the abstract namespace ('@name'), and no pings when WATCHDOG_PID names
another process. Without NOTIFY_SOCKET nothing is sent: every other system
test runs the daemons that way.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import labutil

WATCHDOG_USEC = 400000  # pings every 200 ms
COUNT_S = 3.0


class SdNotifyTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="mistore-sdnotify-")
        self.bin_dir = os.environ.get("MISTORE_BIN_DIR")
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def binary(self, role):
        return labutil.labtool.binary_path(self.bin_dir, role)

    def bind_notify(self, name):
        """A datagram socket at DIR/name, or in the abstract namespace for '@x'."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if name.startswith("@"):
            s.bind("\0" + name[1:])
            addr = name
        else:
            addr = os.path.join(self.dir, name)
            s.bind(addr)
        self.addCleanup(s.close)
        return s, addr

    def start(self, role, argv, notify_addr, extra_env=None):
        env = dict(os.environ)
        env["NOTIFY_SOCKET"] = notify_addr
        env["WATCHDOG_USEC"] = str(WATCHDOG_USEC)
        env.pop("WATCHDOG_PID", None)
        env.update(extra_env or {})
        log = open(os.path.join(self.dir, role + ".log"), "wb")
        self.addCleanup(log.close)
        p = subprocess.Popen([self.binary(role)] + argv, env=env, stdout=log,
                             stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p

    def log_of(self, role):
        with open(os.path.join(self.dir, role + ".log"), errors="replace") as fh:
            return fh.read()[-3000:]

    @staticmethod
    def recv(sock, timeout):
        sock.settimeout(timeout)
        try:
            return sock.recv(4096).decode()
        except socket.timeout:
            return None

    def check_daemon(self, role, argv, port, notify_name="notify"):
        sock, addr = self.bind_notify(notify_name)
        p = self.start(role, argv, addr)
        first = self.recv(sock, 60)
        self.assertIsNotNone(first, "no READY=1 within 60 s:\n" + self.log_of(role))
        # Right after READY: the listener must already be bound.
        c = socket.create_connection(("127.0.0.1", port), timeout=5)
        c.close()
        self.assertIn("READY=1", first.split("\n"), first)

        t0 = time.monotonic()
        pings, other = 0, []
        while time.monotonic() - t0 < COUNT_S:
            m = self.recv(sock, max(0.01, COUNT_S - (time.monotonic() - t0)))
            if m is None:
                break
            if m == "WATCHDOG=1":
                pings += 1
            else:
                other.append(m)
        expected = COUNT_S / (WATCHDOG_USEC / 2e6)
        print("%s: %d watchdog pings in %.1f s (expected %.0f)" % (role, pings, COUNT_S, expected))
        # Timers on this shared, loaded machine fire late, never early.
        self.assertGreaterEqual(pings, int(expected * 0.5), other)
        self.assertLessEqual(pings, int(expected * 1.2) + 1, other)
        self.assertTrue(all(m.startswith("STATUS=") for m in other), other)

        p.send_signal(signal.SIGTERM)
        msgs = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            m = self.recv(sock, 1)
            if m is not None:
                msgs.append(m)
                if "STOPPING=1" in m.split("\n"):
                    break
        self.assertIn("STOPPING=1", msgs, self.log_of(role))
        self.assertEqual(p.wait(timeout=30), 0, self.log_of(role))
        return sock

    def test_dc(self):
        port, mport, aport = labutil.labtool.pick_free_ports(3)
        self.check_daemon("dc", [
            "--listen=127.0.0.1:%d" % port, "--data-dir=" + os.path.join(self.dir, "dc"),
            "--metrics-listen=127.0.0.1:%d" % mport, "--admin-listen=127.0.0.1:%d" % aport,
        ], port)

    def test_pop(self):
        port, mport, dc_port = labutil.labtool.pick_free_ports(3)
        # No DC is running: the POP is ready once its store and listener are,
        # and keeps asking for the DC in the background.
        self.check_daemon("pop", [
            "--pop-id=1", "--region=r1", "--listen=127.0.0.1:%d" % port,
            "--dc=127.0.0.1:%d" % dc_port, "--data-dir=" + os.path.join(self.dir, "pop"),
            "--metrics-listen=127.0.0.1:%d" % mport,
        ] + self.identity("pop", 1), port)

    def identity(self, role, node_id):
        """Key and certificate flags (node links are secure by default)."""
        return labutil.node_identity_flags(self.bin_dir, os.path.join(self.dir, "dc"), role,
                                           node_id, "r1", os.path.join(self.dir, role),
                                           "alice" if role == "gateway" else "-")

    def agent_argv(self, port, mport, pop_port):
        return ["--gateway-id=1001", "--subscriber=alice", "--pop=127.0.0.1:%d" % pop_port,
                "--client-listen=127.0.0.1:%d" % port,
                "--data-dir=" + os.path.join(self.dir, "agent"),
                "--metrics-listen=127.0.0.1:%d" % mport] + self.identity("gateway", 1001)

    def test_agent_abstract_socket(self):
        port, mport, pop_port = labutil.labtool.pick_free_ports(3)
        self.check_daemon("gateway", self.agent_argv(port, mport, pop_port), port,
                          notify_name="@mistore-sdnotify-test-%d" % os.getpid())

    def test_watchdog_of_another_pid_is_not_ours(self):
        port, mport, pop_port = labutil.labtool.pick_free_ports(3)
        sock, addr = self.bind_notify("notify")
        p = self.start("gateway", self.agent_argv(port, mport, pop_port), addr,
                       {"WATCHDOG_PID": "1"})
        first = self.recv(sock, 60)
        self.assertIsNotNone(first, self.log_of("gateway"))
        self.assertIn("READY=1", first.split("\n"))
        # Five intervals without a ping.
        self.assertIsNone(self.recv(sock, 5 * WATCHDOG_USEC / 2e6))
        p.send_signal(signal.SIGTERM)
        self.assertEqual(self.recv(sock, 20), "STOPPING=1")
        self.assertEqual(p.wait(timeout=30), 0)


if __name__ == "__main__":
    unittest.main()
