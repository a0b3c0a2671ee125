"""Enrolment by one-time token and certificate renewal (issue 4) with real
daemons: on a (secure) lab whose DC serves enrol_listen and issues 8-second
certificates, `mistore-dc enroll` tokens turn a fresh POP and a fresh gateway
agent (no id, region or subscriber in their config) into enrolled nodes
(key 0600, DC-assigned ids); an object is stored and read back through them;
a reused, an expired and a wrong-role token are refused with one clear line
and counted on the DC's /metrics; enrolled nodes renew their certificates
before expiry and a restarted agent, whose first certificate has expired by
then, registers again with the renewed one; a revoked node's renewal is
refused. Client pairing over the device link (Noise XX with the code bound to
the handshake, then IK): once `mistore pair CODE` paired a device, the agent
serves only paired devices; wrong, replayed and expired codes, an old bearer
credential and a plaintext client are refused."""

import os
import re
import socket
import stat
import subprocess
import sys
import time
import unittest
import urllib.request

from labutil import Lab, LabTestCase, labtool, write_random_file

CERT_LIFETIME_S = 8


class EnrolLab(Lab):
    """A lab whose DC issues short-lived certificates."""

    def lab_cmd(self, *args, **kw):
        if args and args[0] == "up":
            args = args + (f"--dc-arg=--cert-lifetime-s={CERT_LIFETIME_S}",)
        return super().lab_cmd(*args, **kw)


def read(path):
    with open(path, "rb") as f:
        return f.read().decode(errors="replace")


class Enrolment(LabTestCase):
    LAB_OPTIONS = {"pops": 2, "gateways_per_pop": 3, "k": 2, "m": 1, "secure": True}

    @classmethod
    def setUpClass(cls):
        cls.lab = EnrolLab(**cls.LAB_OPTIONS)
        cls._printed_tails = False
        cls.procs = []
        try:
            cls.lab.up()
            cls.lab.init_client()
            cls.enrol_pop_and_agent()
        except BaseException:
            print("\n=== lab start-up failed; log tails ===\n" + cls.lab.log_tails(),
                  file=sys.stderr)
            cls.stop_procs()
            cls.lab.teardown()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.stop_procs()
        super().tearDownClass()

    @classmethod
    def stop_procs(cls):
        for p in cls.procs:
            if p.poll() is None:
                p.kill()
                p.wait()

    # ---- helpers
    @classmethod
    def dc(cls):
        return cls.lab.node("dc")

    @classmethod
    def enroll(cls, role, region, subscriber=None, expiry_s=None):
        cmd = [labtool.binary_path(cls.lab.state["bin_dir"], "dc"),
               "--data-dir=" + cls.dc()["data_dir"], "enroll", "--role", role,
               "--region", region]
        if subscriber:
            cmd += ["--subscriber", subscriber]
        if expiry_s is not None:
            cmd += ["--expiry-s", str(expiry_s)]
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        if p.returncode != 0:
            raise AssertionError("enroll failed: " + p.stderr.decode(errors="replace"))
        token = p.stdout.decode().strip()
        if not re.fullmatch(r"mse1\.[0-9a-f]{16}\.[0-9a-f]{32}\.[0-9a-f]{32}", token):
            raise AssertionError("enroll printed %r" % token)
        return token

    @classmethod
    def spawn(cls, name, argv):
        log = os.path.join(cls.lab.work, name + ".log")
        f = open(log, "ab")
        p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT)
        f.close()
        cls.procs.append(p)
        return p, log

    @classmethod
    def wait_for(cls, path, needle, timeout=20.0, proc=None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.path.exists(path) and needle in read(path):
                return True
            if proc is not None and proc.poll() is not None:
                break
            time.sleep(0.1)
        return os.path.exists(path) and needle in read(path)

    @classmethod
    def agent_argv(cls, token, data_dir, port, pop_addr):
        return [labtool.binary_path(cls.lab.state["bin_dir"], "gateway"),
                "--enrolment-token=" + token, "--enrolment-dc=" + cls.dc()["enrol_addr"],
                "--pop=" + pop_addr, "--client-listen=127.0.0.1:%d" % port,
                "--data-dir=" + data_dir, "--metrics-listen=127.0.0.1:0", "--reconnect-ms=200",
                "--cert-renew-at-fraction=0.5"]

    @classmethod
    def enrol_pop_and_agent(cls):
        """A POP of the new region r9 and a gateway of it, from tokens only."""
        bindir = cls.lab.state["bin_dir"]
        pop_port, cls.agent_port = labtool.pick_free_ports(2)
        cls.pop_addr = "127.0.0.1:%d" % pop_port
        cls.pop_dir = os.path.join(cls.lab.work, "pop-enrolled")
        pop_token = cls.enroll("pop", "r9")
        cls.pop, cls.pop_log = cls.spawn("pop-enrolled", [
            labtool.binary_path(bindir, "pop"), "--enrolment-token=" + pop_token,
            "--enrolment-dc=" + cls.dc()["enrol_addr"], "--listen=" + cls.pop_addr,
            "--dc=" + cls.dc()["addr"], "--data-dir=" + cls.pop_dir, "--k=2", "--m=1",
            "--metrics-listen=off", "--cert-renew-at-fraction=0.5"])
        if not cls.wait_for(cls.pop_log, 'msg="ready"', proc=cls.pop):
            raise AssertionError("enrolled POP never ready:\n" + read(cls.pop_log))
        cls.gw_token = cls.enroll("gateway", "r9", subscriber=cls.lab.subscriber)
        cls.agent_dir = os.path.join(cls.lab.work, "agent-enrolled")
        cls.agent, cls.agent_log = cls.spawn("agent-enrolled", cls.agent_argv(
            cls.gw_token, cls.agent_dir, cls.agent_port, cls.pop_addr))
        if not cls.wait_for(cls.agent_log, "registered with POP", proc=cls.agent):
            raise AssertionError("enrolled agent never registered:\n" + read(cls.agent_log))

    def client_conf(self):
        client_dir = os.path.join(self.lab.dir, "client")
        path = self.scratch("enrolled-client.conf")
        state = self.scratch("enrolled-client-state")
        os.makedirs(state, exist_ok=True)
        with open(path, "w") as f:
            f.write("agent = 127.0.0.1:%d\n" % self.agent_port)
            f.write("subscriber = %s\n" % self.lab.subscriber)
            f.write("key_file = %s\n" % os.path.join(client_dir, "master.key"))
            f.write("state_dir = %s\n" % state)
        return path

    def run_agent_expecting_refusal(self, name, token, needle):
        """Starts an agent with `token`; it must exit non-zero with `needle`."""
        d = self.scratch(name)
        port = labtool.pick_free_ports(1)[0]
        p, log = self.spawn(name, self.agent_argv(token, d, port, self.pop_addr))
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            self.fail("agent %s did not exit:\n%s" % (name, read(log)))
        text = read(log)
        self.assertNotEqual(p.returncode, 0, text)
        self.assertIn(needle, text)
        lines = [l for l in text.splitlines() if l.startswith("mistore-agent:")]
        self.assertEqual(len(lines), 1, text)  # one clear line
        self.assertFalse(os.path.exists(os.path.join(d, "node.cert")))

    def dc_metric(self, result):
        url = self.dc()["metrics_url"]
        text = urllib.request.urlopen(url, timeout=10).read().decode()
        m = re.search(r'^mistore_dc_enrolments_total\{result="%s"\} (\S+)$' % result, text,
                      re.M)
        self.assertIsNotNone(m, "no enrolment counter %s in:\n%s" % (result, text))
        return float(m.group(1))

    # ---- tests
    def test_1_enrolled_nodes_store_and_read(self):
        pop_text, agent_text = read(self.pop_log), read(self.agent_log)
        m = re.search(r'msg="enrolled" node=(\d+) role=pop region=r9', pop_text)
        self.assertIsNotNone(m, pop_text)
        g = re.search(r'msg="enrolled" node=(\d+) role=gateway', agent_text)
        self.assertIsNotNone(g, agent_text)
        self.assertGreaterEqual(int(m.group(1)), 100000)  # assigned by the DC
        self.assertNotEqual(m.group(1), g.group(1))
        self.assertIn('msg="secure transport on" node=%s role=gateway' % g.group(1), agent_text)
        for d in (self.pop_dir, self.agent_dir):
            mode = stat.S_IMODE(os.stat(os.path.join(d, "node.key")).st_mode)
            self.assertEqual(mode, 0o600, d)
            self.assertTrue(os.path.exists(os.path.join(d, "node.cert")))
            with open(os.path.join(d, "ca.pub"), "rb") as f, \
                    open(os.path.join(self.dc()["data_dir"], "ca.pub"), "rb") as g2:
                self.assertEqual(f.read(), g2.read())
        # The DC keeps no token in clear.
        enrol_dir = os.path.join(self.dc()["data_dir"], "enrolment")
        for name in os.listdir(enrol_dir):
            self.assertNotIn(self.gw_token.split(".")[2], read(os.path.join(enrol_dir, name)))
        conf = self.client_conf()
        src = write_random_file(self.scratch("enrolled.bin"), 200000)
        self.lab.put(src, "via-enrolled", conf=conf)
        out = self.scratch("enrolled.out")
        self.lab.get("via-enrolled", out, conf=conf)
        self.assertFilesEqual(src, out)
        self.assertGreaterEqual(self.dc_metric("enrolled"), 2)

    def agent_pair_code(self, *extra):
        agent_bin = labtool.binary_path(self.lab.state["bin_dir"], "gateway")
        p = subprocess.run([agent_bin, "--data-dir=" + self.agent_dir, "pair"] + list(extra),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        code = p.stdout.decode().strip()
        self.assertRegex(code, r"^[0-9A-Z]{5}-[0-9A-Z]{5}$")
        return code

    def conf_with_pairing(self, name, pairing_file):
        path = self.scratch(name)
        with open(self.client_conf()) as f, open(path, "w") as g:
            g.write(f.read() + "pairing_file = %s\n" % pairing_file)
        return path

    def agent_metric(self, name):
        m = re.search(r'msg="ready" .*metrics=(\S+)', read(self.agent_log))
        self.assertIsNotNone(m, "agent ready line without metrics address")
        text = urllib.request.urlopen("http://%s/metrics" % m.group(1), timeout=10).read().decode()
        m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
        return float(m.group(1)) if m else 0.0

    def test_1p_pairing(self):
        """mistore pair over the device link (Noise XX, the code proven bound
        to the handshake; IK afterwards): before any pairing the agent serves
        a device on its own host; once a device is paired, only paired keys;
        wrong, replayed and expired codes, an old bearer credential and a
        plaintext client are refused."""
        unpaired = self.conf_with_pairing("unpaired-client.conf", self.scratch("no-pairing"))
        pairing_file = self.scratch("xdg/mistore/pairing")
        paired = self.conf_with_pairing("paired-client.conf", pairing_file)
        # An old bearer credential is refused by the client itself (exit 5).
        stale_file = self.scratch("stale-pairing")
        fd = os.open(stale_file, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"ab" * 32 + b"\n")
        os.close(fd)
        stale = self.conf_with_pairing("stale-client.conf", stale_file)
        stale_refused = self.lab.client("ls", conf=stale, check=False)
        self.assertEqual(stale_refused.returncode, 5, stale_refused.stderr)
        self.assertIn(b"older version", stale_refused.stderr)
        self.assertIn(b"mistore pair CODE", stale_refused.stderr)
        # No device paired yet: a client on the agent's host is served (XX).
        self.lab.client("ls", conf=unpaired)
        self.assertTrue(os.path.exists(os.path.join(self.agent_dir, "pairing", "agent.key")))
        self.assertEqual(stat.S_IMODE(os.stat(
            os.path.join(self.agent_dir, "pairing", "agent.key")).st_mode), 0o600)
        # A plaintext client is refused: logged and counted.
        refused_before = self.agent_metric(
            'mistore_connections_refused_total{reason="plaintext"}')
        with socket.create_connection(("127.0.0.1", self.agent_port), timeout=10) as s:
            s.sendall(b"\x04\x00\x00\x00\x08\x01\x10\x00")  # a plain frame
            s.settimeout(10)
            self.assertEqual(s.recv(100), b"")  # closed without an answer
        self.assertTrue(self.wait_for(self.agent_log, "reason=plaintext", 5))
        self.assertGreater(self.agent_metric(
            'mistore_connections_refused_total{reason="plaintext"}'), refused_before)
        # A wrong code: refused, nothing written, the code stays pending.
        code = self.agent_pair_code()
        wrong = ("2" if code[0] != "2" else "3") + code[1:]
        w = self.lab.client("pair", wrong, conf=paired, check=False)
        self.assertEqual(w.returncode, 5, w.stderr)
        self.assertIn(b"wrong pairing code", w.stderr)
        self.assertFalse(os.path.exists(pairing_file))
        # The right one pairs; the file holds this device's key and the
        # agent's pinned key, mode 0600.
        r = self.lab.client("pair", code, conf=paired, check=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(stat.S_IMODE(os.stat(pairing_file).st_mode), 0o600)
        text = read(pairing_file)
        self.assertTrue(text.startswith("mistore-pairing v2\n"), text)
        self.assertRegex(text, r"device_key [0-9a-f]{64}\n")
        self.assertRegex(text, r"agent_key [0-9a-f]{64}\n")
        self.assertTrue(self.wait_for(self.agent_log, 'msg="device paired"', 5))
        with open(os.path.join(self.agent_dir, "pairing", "devices")) as f:
            self.assertRegex(f.read(), r"^k1 [0-9a-f]{64} \S+\n$")
        # The code was single use (replayed: refused).
        again = self.lab.client("pair", code, conf=self.conf_with_pairing(
            "again-client.conf", self.scratch("again-pairing")), check=False)
        self.assertEqual(again.returncode, 5, again.stderr)
        self.assertIn(b"no pairing code pending", again.stderr)
        # An expired code.
        short = self.agent_pair_code("--pair-code-ttl-s=1")
        time.sleep(1.5)
        expired = self.lab.client("pair", short, conf=self.conf_with_pairing(
            "expired-client.conf", self.scratch("expired-pairing")), check=False)
        self.assertEqual(expired.returncode, 5, expired.stderr)
        self.assertIn(b"pairing code expired", expired.stderr)
        # Now that a device is paired, an unpaired one is refused (exit 5,
        # one line naming the fix), and counted.
        denied_before = self.agent_metric("mistore_agent_devices_refused_total")
        refused = self.lab.client("ls", conf=unpaired, check=False)
        self.assertEqual(refused.returncode, 5, refused.stderr)
        err = refused.stderr.decode(errors="replace").strip().splitlines()
        self.assertEqual(len(err), 1, err)
        self.assertIn("not paired with the gateway: run `mistore pair CODE`", err[0])
        self.assertGreater(self.agent_metric("mistore_agent_devices_refused_total"),
                           denied_before)
        # The paired device is served over IK: put and get.
        src = write_random_file(self.scratch("paired.bin"), 50000)
        self.lab.put(src, "via-paired", conf=paired)
        out = self.scratch("paired.out")
        self.lab.get("via-paired", out, conf=paired)
        self.assertFilesEqual(src, out)
        self.assertEqual(self.agent_metric("mistore_agent_devices_paired"), 1.0)

    def test_2_reused_token_refused(self):
        before = self.dc_metric("refused_used")
        self.run_agent_expecting_refusal("reuse", self.gw_token,
                                         "the DC refused: enrolment token already used")
        self.assertIn('msg="enrolment refused"', read(self.dc()["log"]))
        self.assertEqual(self.dc_metric("refused_used"), before + 1)

    def test_3_expired_token_refused(self):
        token = self.enroll("gateway", "r9", subscriber=self.lab.subscriber, expiry_s=1)
        time.sleep(1.5)
        before = self.dc_metric("refused_expired")
        self.run_agent_expecting_refusal("expired", token,
                                         "the DC refused: enrolment token expired")
        self.assertEqual(self.dc_metric("refused_expired"), before + 1)

    def test_4_wrong_role_token_refused(self):
        token = self.enroll("pop", "r9")
        before = self.dc_metric("refused_role")
        self.run_agent_expecting_refusal("wrongrole", token,
                                         "enrolment token is for role pop, not gateway")
        self.assertEqual(self.dc_metric("refused_role"), before + 1)

    def test_5_certificates_renewed_before_expiry(self):
        # Renewal at half of the 8 s lifetime: within ~12 s both enrolled
        # nodes have renewed at least twice.
        self.assertTrue(self.wait_for(self.agent_log, 'msg="certificate renewed"', 20),
                        read(self.agent_log))
        self.assertTrue(self.wait_for(self.pop_log, 'msg="certificate renewed"', 20),
                        read(self.pop_log))
        time.sleep(CERT_LIFETIME_S)  # the first certificates have expired now
        self.assertGreaterEqual(self.dc_metric("renewed"), 2)
        # A restarted agent presents the renewed certificate from its file;
        # had it kept the first one, the POP would refuse it as expired.
        self.agent.kill()
        self.agent.wait()
        off = os.path.getsize(self.agent_log)
        type(self).agent, _ = self.spawn("agent-enrolled", self.agent_argv(
            self.gw_token, self.agent_dir, self.agent_port, self.pop_addr))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "registered with POP" not in read(
                self.agent_log)[off:]:
            time.sleep(0.1)
        self.assertIn("registered with POP", read(self.agent_log)[off:])
        self.assertNotIn("certificate expired", read(self.pop_log))
        self.assertAllAlive()

    def test_6_revoked_node_cannot_renew(self):
        m = re.search(r'msg="enrolled" node=(\d+) role=gateway', read(self.agent_log))
        node = m.group(1)
        before = self.dc_metric("refused_revoked")
        off = os.path.getsize(self.agent_log)
        r = subprocess.run([labtool.binary_path(self.lab.state["bin_dir"], "dc"),
                            "--data-dir=" + self.dc()["data_dir"], "revoke", node],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(r.returncode, 0, r.stderr)
        # The agent's next renewal (every 4 s) is refused and it says so.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "certificate renewal failed" not in read(
                self.agent_log)[off:]:
            time.sleep(0.1)
        self.assertIn("node is revoked; renewal refused", read(self.agent_log)[off:])
        self.assertIn("node=%s step=renew" % node, read(self.dc()["log"]))
        self.assertGreaterEqual(self.dc_metric("refused_revoked"), before + 1)


if __name__ == "__main__":
    unittest.main()
