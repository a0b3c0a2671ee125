"""Secure transport (issue 4) with real daemons: a lab (secure by default:
every POP and gateway holds a DC-issued key and certificate) serves a round
trip; the POP refuses a plaintext peer, a gateway certificate from another
CA, an expired one, a revoked one (and closes the revoked gateway's open
connection) and a gateway acting for another subscriber; the DC refuses a
gateway certificate where it expects a POP; a bit flipped in flight and a
record replayed in flight by a relay close the connection; a gateway of
subscriber bob cannot read alice's object. Each refusal
leaves one clear log line, moves its mistore_connections_refused_total
{reason} (or mistore_requests_refused_total) counter on the refusing
daemon's /metrics, and the daemon keeps serving."""

import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from labutil import LabTestCase, frame, lab_metrics, labtool, send_raw, write_random_file


def read(path):
    with open(path, "rb") as f:
        return f.read().decode(errors="replace")


class Relay:
    """Forwards one TCP port to another; flips one bit of the client->server
    stream at byte `flip_at` of the first connection only, or (replay=True)
    sends the client->server bytes from `flip_at` to the end of the read
    holding it a second time, right behind the originals."""

    def __init__(self, target, flip_at, replay=False):
        self.target, self.flip_at, self.replay = target, flip_at, replay
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.flipped = False
        self.stop = False
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        first = True
        while not self.stop:
            try:
                a, _ = self.sock.accept()
            except OSError:
                return
            host, port = self.target.rsplit(":", 1)
            try:
                b = socket.create_connection((host, int(port)))
            except OSError:
                a.close()
                continue
            self.conns += [a, b]
            threading.Thread(target=self._pump, args=(a, b, first), daemon=True).start()
            threading.Thread(target=self._pump, args=(b, a, False), daemon=True).start()
            first = False

    def _pump(self, src, dst, tamper):
        seen = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if tamper and not self.flipped and seen <= self.flip_at < seen + len(data):
                    i = self.flip_at - seen
                    if self.replay:
                        data = data + data[i:]
                    else:
                        data = data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:]
                    self.flipped = True
                seen += len(data)
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.stop = True
        self.sock.close()
        for c in self.conns:
            c.close()


class SecureTransport(LabTestCase):
    LAB_OPTIONS = {"pops": 2, "gateways_per_pop": 3, "k": 2, "m": 1, "secure": True}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.extra = []  # (Popen, log file) of agents started by the tests
        cls.agent_addrs = {}  # gateway id -> client_listen of agents started by the tests
        cls.next_gid = 9001

    @classmethod
    def tearDownClass(cls):
        for p, _ in cls.extra:
            if p.poll() is None:
                p.kill()
                p.wait()
        super().tearDownClass()

    # ---- helpers
    def dc_bin(self):
        return labtool.binary_path(self.lab.state.get("bin_dir"), "dc")

    def dc_dir(self):
        return self.lab.node("dc")["data_dir"]

    def issue(self, dc_dir, gid, valid_ms=None, role="gateway", subscriber="alice"):
        prefix = os.path.join(self.lab.work, "gw%d-%s" % (gid, os.path.basename(dc_dir)))
        labtool.issue_cert(self.lab.state.get("bin_dir"), dc_dir, role, gid, "r1", prefix,
                           subscriber, valid_ms)
        return prefix

    def start_agent(self, prefix, gid, pop_addr=None, ca_pub=None):
        """A further gateway agent using key/cert PREFIX; returns its log path."""
        template = self.lab.nodes("gateway")[0]["argv"]
        data_dir = os.path.join(self.lab.work, "agent%d" % gid)
        os.makedirs(data_dir, exist_ok=True)
        port = labtool.pick_free_ports(1)[0]
        argv = []
        for a in template:
            key = a.split("=", 1)[0]
            if key in ("--gateway-id", "--client-listen", "--data-dir", "--metrics-listen",
                       "--node-key-file", "--node-cert-file", "--pop",
                       "--ca-public-key-file"):
                continue
            argv.append(a)
        pop = pop_addr or self.lab.nodes("pop")[0]["addr"]
        argv += ["--gateway-id=%d" % gid, "--client-listen=127.0.0.1:%d" % port,
                 "--data-dir=" + data_dir, "--metrics-listen=off",
                 "--node-key-file=" + prefix + ".key", "--node-cert-file=" + prefix + ".cert",
                 "--ca-public-key-file=" + (ca_pub or os.path.join(self.dc_dir(), "ca.pub")),
                 "--pop=" + pop, "--reconnect-ms=200"]
        self.agent_addrs[gid] = "127.0.0.1:%d" % port
        log = os.path.join(self.lab.work, "agent%d.log" % gid)
        f = open(log, "ab")
        p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT)
        f.close()
        self.extra.append((p, log))
        return p, log

    def wait_file(self, path, needle, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in read(path):
                return True
            time.sleep(0.1)
        return False

    def pop_log_since(self, off):
        return self.lab.log_since("pop1", off)

    def assertPopLogs(self, off, needle, timeout=10.0):
        self.assertTrue(self.lab.wait_log("pop1", off, needle, timeout),
                        "pop1 never logged %r; log since:\n%s" % (needle, self.pop_log_since(off)))

    def refused(self, node_id, reason, family="mistore_connections_refused_total"):
        """The node's refusal counter for `reason` (from its /metrics)."""
        text = lab_metrics(self.lab, node_id)
        m = re.search(r'^%s\{reason="%s"\} (\S+)$' % (family, reason), text, re.M)
        self.assertIsNotNone(m, "%s has no %s{reason=%s}" % (node_id, family, reason))
        return float(m.group(1))

    def assertCounted(self, node_id, reason, before, family="mistore_connections_refused_total",
                      timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            now = self.refused(node_id, reason, family)
            if now > before or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertGreater(now, before, "%s: %s{reason=%s} did not move" % (node_id, family,
                                                                          reason))

    def assertStillServes(self):
        self.assertAllAlive()
        src = write_random_file(self.scratch("again.bin"), 20000)
        self.lab.put(src, "again")
        out = self.scratch("again.out")
        self.lab.get("again", out)
        self.assertFilesEqual(src, out)

    # ---- tests
    def test_round_trip_over_secure_links(self):
        # cipher=auto (the default): AES-GCM where the CPU has AES-NI and
        # PCLMUL (these native builds have OpenSSL), else ChaChaPoly.
        with open("/proc/cpuinfo") as f:
            flags = set(re.findall(r"\w+", " ".join(l for l in f if l.startswith("flags"))))
        suite = "AESGCM" if {"aes", "pclmulqdq"} <= flags else "ChaChaPoly"
        for n in self.lab.nodes():
            with open(n["log"], "rb") as f:
                text = f.read().decode(errors="replace")
            if n["role"] != "dc":
                self.assertIn('msg="secure transport on"', text, n["id"])
                self.assertRegex(text, r'msg="secure transport on".* cipher=%s' % suite, n["id"])
        src = write_random_file(self.scratch("f.bin"), 300000)
        self.lab.put(src, "f")
        out = self.scratch("f.out")
        self.lab.get("f", out)
        self.assertFilesEqual(src, out)
        # The authorization table let every request of the lab's own nodes
        # through (refusals come only from the tests' rogue agents, 91xx).
        for n in self.lab.nodes():
            for line in read(n["log"]).splitlines():
                if 'msg="request refused"' in line:
                    self.assertRegex(line, r"node=91\d\d ", n["id"])

    def test_plaintext_peer_refused(self):
        off = self.lab.log_offset("pop1")
        before = self.refused("pop1", "plaintext")
        pop = self.lab.nodes("pop")[0]["addr"]
        hello = bytes([0x52, 0x02, 0x08, 0x02])  # any bytes framed like a plain Envelope
        self.assertEqual(send_raw(pop, frame(hello)), "closed")
        self.assertPopLogs(off, "plaintext connection refused")
        self.assertPopLogs(off, "reason=plaintext")
        self.assertCounted("pop1", "plaintext", before)
        # The DC's node listener too.
        off = self.lab.log_offset("dc")
        before = self.refused("dc", "plaintext")
        self.assertEqual(send_raw(self.lab.node("dc")["addr"], frame(hello)), "closed")
        self.assertTrue(self.lab.wait_log("dc", off, "plaintext connection refused", 10),
                        "dc never refused the plaintext peer:\n" + self.lab.log_since("dc", off))
        self.assertCounted("dc", "plaintext", before)
        self.assertStillServes()

    def test_certificate_from_another_ca_refused(self):
        other_dc = tempfile.mkdtemp(prefix="otherdc", dir=self.lab.work)
        prefix = self.issue(other_dc, 9101)
        off = self.lab.log_offset("pop1")
        before = self.refused("pop1", "bad_cert")
        # The rogue holds the real CA's public key, so it accepts the POP and
        # gets as far as the POP's check of its own certificate.
        p, log = self.start_agent(prefix, 9101)
        self.assertPopLogs(off, "certificate signature invalid")
        self.assertCounted("pop1", "bad_cert", before)
        self.assertNotIn("registered with POP", read(log))
        p.kill()
        p.wait()
        self.assertStillServes()

    def test_expired_certificate_refused(self):
        prefix = self.issue(self.dc_dir(), 9102, valid_ms=1)
        time.sleep(0.01)
        off = self.lab.log_offset("pop1")
        before = self.refused("pop1", "expired")
        p, log = self.start_agent(prefix, 9102)
        self.assertPopLogs(off, "certificate expired (node 9102)")
        self.assertCounted("pop1", "expired", before)
        p.kill()
        p.wait()
        self.assertStillServes()

    def test_revoked_gateway_refused_and_disconnected(self):
        prefix = self.issue(self.dc_dir(), 9103)
        p, log = self.start_agent(prefix, 9103)
        self.assertTrue(self.wait_file(log, "registered with POP", 15),
                        "agent 9103 never registered:\n" + read(log))
        off = self.lab.log_offset("pop1")
        before = self.refused("pop1", "revoked")
        r = subprocess.run([self.dc_bin(), "--data-dir=" + self.dc_dir(), "revoke", "9103"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertPopLogs(off, "closing connection of a revoked node", 15)
        self.assertPopLogs(off, "certificate revoked (node 9103)", 15)
        self.assertCounted("pop1", "revoked", before)
        p.kill()
        p.wait()
        self.assertStillServes()

    def test_gateway_of_another_subscriber_refused(self):
        # A genuine gateway certificate of subscriber bob, in an agent
        # reconfigured for alice, tries to read alice's object: its Hello
        # (and every alice request) is refused, so the read fails and no
        # byte of alice's object reaches it.
        src = write_random_file(self.scratch("alices.bin"), 30000)
        self.lab.put(src, "alices")
        prefix = self.issue(self.dc_dir(), 9105, subscriber="bob")
        off = self.lab.log_offset("pop1")
        before = self.refused("pop1", "unauthorized", "mistore_requests_refused_total")
        p, log = self.start_agent(prefix, 9105)
        self.assertPopLogs(off, "subscriber 'alice' is not this gateway's (bob)")
        self.assertPopLogs(off, 'msg="request refused"')
        self.assertCounted("pop1", "unauthorized", before, "mistore_requests_refused_total")
        self.assertNotIn("registered with POP", read(log))
        with open(self.lab.client_conf) as f:
            conf = re.sub(r"(?m)^agent = .*$", "agent = " + self.agent_addrs[9105], f.read())
        rogue_conf = self.scratch("rogue-client.conf")
        with open(rogue_conf, "w") as f:
            f.write(conf)
        out = self.scratch("alices.stolen")
        r = self.lab.client("get", "alices", "-o", out, conf=rogue_conf, check=False)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertFalse(os.path.exists(out) and os.path.getsize(out) > 0)
        p.kill()
        p.wait()
        self.assertStillServes()

    def test_flipped_bit_in_flight_closes_the_connection(self):
        prefix = self.issue(self.dc_dir(), 9104)
        pop = self.lab.nodes("pop")[0]["addr"]
        # Gateway->POP: preamble 4 + message 1 (34) + message 3 (2 + 48 + a
        # 139-byte cert + 16) = 243 bytes, then the first record (the Hello):
        # byte 260 is inside its ciphertext.
        relay = Relay(pop, 260)
        off = self.lab.log_offset("pop1")
        before = self.refused("pop1", "decrypt_failed")
        try:
            p, log = self.start_agent(prefix, 9104, pop_addr=relay.addr)
            self.assertPopLogs(off, "record failed authentication")
            self.assertTrue(relay.flipped)
            self.assertCounted("pop1", "decrypt_failed", before)
            # Later connections through the relay are not tampered with.
            self.assertTrue(self.wait_file(log, "registered with POP", 15),
                            "agent 9104 never registered after the reconnect:\n" +
                            read(log))
            p.kill()
            p.wait()
        finally:
            relay.close()
        self.assertStillServes()


    def test_replayed_record_in_flight_closes_the_connection(self):
        prefix = self.issue(self.dc_dir(), 9106)
        pop = self.lab.nodes("pop")[0]["addr"]
        # The first record after the 243 handshake bytes (see above) is sent
        # twice: the POP accepts the original and refuses the copy.
        relay = Relay(pop, 243, replay=True)
        off = self.lab.log_offset("pop1")
        before = self.refused("pop1", "replay")
        try:
            p, log = self.start_agent(prefix, 9106, pop_addr=relay.addr)
            self.assertPopLogs(off, "a replay of an earlier record")
            self.assertPopLogs(off, "reason=replay")
            self.assertTrue(relay.flipped)
            self.assertCounted("pop1", "replay", before)
            self.assertTrue(self.wait_file(log, "registered with POP", 15),
                            "agent 9106 never registered after the reconnect:\n" + read(log))
            p.kill()
            p.wait()
        finally:
            relay.close()
        self.assertStillServes()

    def test_insecure_daemon_says_so(self):
        # secure=false (the opt-out) is logged as a warning at start-up; the
        # lab's daemons (secure by default) never log it.
        for n in self.lab.nodes():
            self.assertNotIn("INSECURE", read(n["log"]), n["id"])
        port, mport = labtool.pick_free_ports(2)
        data_dir = os.path.join(self.lab.work, "insecure-dc")
        log = os.path.join(self.lab.work, "insecure-dc.log")
        with open(log, "ab") as f:
            p = subprocess.Popen([self.dc_bin(), "--secure=false", "--listen=127.0.0.1:%d" % port,
                                  "--data-dir=" + data_dir, "--metrics-listen=off",
                                  "--admin-listen=off"], stdout=f, stderr=subprocess.STDOUT)
        try:
            self.assertTrue(self.wait_file(log, 'msg="ready"', 20), read(log))
            lines = [l for l in read(log).splitlines() if "INSECURE" in l]
            self.assertEqual(len(lines), 1, read(log))
            self.assertIn("level=warn", lines[0])
            self.assertIn('msg="INSECURE: secure transport is off"', lines[0])
        finally:
            p.kill()
            p.wait()

    def test_gateway_certificate_where_a_pop_is_expected_refused(self):
        # A "POP" holding a genuine gateway certificate dials the DC, which
        # accepts only POPs on its node listener: refused as wrong_role.
        prefix = self.issue(self.dc_dir(), 9107)
        template = self.lab.nodes("pop")[-1]["argv"]
        data_dir = os.path.join(self.lab.work, "rogue-pop")
        os.makedirs(data_dir, exist_ok=True)
        port = labtool.pick_free_ports(1)[0]
        argv = [a for a in template
                if a.split("=", 1)[0] not in ("--pop-id", "--listen", "--data-dir",
                                              "--metrics-listen", "--node-key-file",
                                              "--node-cert-file")]
        argv += ["--pop-id=97", "--listen=127.0.0.1:%d" % port, "--data-dir=" + data_dir,
                 "--metrics-listen=off", "--node-key-file=" + prefix + ".key",
                 "--node-cert-file=" + prefix + ".cert"]
        off = self.lab.log_offset("dc")
        before = self.refused("dc", "wrong_role")
        log = os.path.join(self.lab.work, "rogue-pop.log")
        with open(log, "ab") as f:
            p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT)
        try:
            self.assertTrue(self.lab.wait_log("dc", off, "reason=wrong_role", 20),
                            "dc never refused the rogue POP:\n" + self.lab.log_since("dc", off) +
                            "\nrogue log:\n" + read(log))
            self.assertIn("role gateway not accepted", self.lab.log_since("dc", off))
            self.assertCounted("dc", "wrong_role", before)
        finally:
            p.kill()
            p.wait()
        self.assertStillServes()


if __name__ == "__main__":
    unittest.main()
