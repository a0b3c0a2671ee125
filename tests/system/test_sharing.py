"""Read-only sharing (issue 4; docs/security.md "Sharing") with real daemons
on a secure lab: alice's gateways are the lab's; bob and carol each get a
gateway agent of their own (certificates of their subscriber, on pop1) and
their own client keys. alice puts a file and shares it with bob; bob's
client reads the exact bytes through his own gateway; carol, asking for the
same object, is refused by the POP (one log line, counted); after alice
unshares, bob is refused too once the POPs' share cache TTL passed; bob
can never write alice's object; a grantee that has not published a share
key cannot be shared with."""

import os
import re
import subprocess
import time
import unittest

from labutil import LabTestCase, lab_metrics, labtool, write_random_file

TTL_MS = 1000  # the POPs' share_cache_ttl_ms in this lab


class Sharing(LabTestCase):
    LAB_OPTIONS = {"pops": 2, "gateways_per_pop": 3, "k": 2, "m": 1, "secure": True,
                   "pop_args": ["--share-cache-ttl-ms=%d" % TTL_MS]}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.extra = []

    @classmethod
    def tearDownClass(cls):
        for p in cls.extra:
            if p.poll() is None:
                p.kill()
                p.wait()
        super().tearDownClass()

    # ---- helpers
    def dc_dir(self):
        return self.lab.node("dc")["data_dir"]

    def start_gateway(self, gid, subscriber):
        """A gateway agent of `subscriber` (its own certificate) on pop1;
        returns its client address."""
        prefix = os.path.join(self.lab.work, "gw%d" % gid)
        labtool.issue_cert(self.lab.state.get("bin_dir"), self.dc_dir(), "gateway", gid, "r1",
                           prefix, subscriber)
        template = self.lab.nodes("gateway")[0]["argv"]
        data_dir = os.path.join(self.lab.work, "agent%d" % gid)
        os.makedirs(data_dir, exist_ok=True)
        port = labtool.pick_free_ports(1)[0]
        argv = [a for a in template if a.split("=", 1)[0] not in (
            "--gateway-id", "--subscriber", "--client-listen", "--data-dir", "--metrics-listen",
            "--node-key-file", "--node-cert-file", "--pop", "--ca-public-key-file")]
        argv += ["--gateway-id=%d" % gid, "--subscriber=" + subscriber,
                 "--client-listen=127.0.0.1:%d" % port, "--data-dir=" + data_dir,
                 "--metrics-listen=off", "--node-key-file=" + prefix + ".key",
                 "--node-cert-file=" + prefix + ".cert",
                 "--ca-public-key-file=" + os.path.join(self.dc_dir(), "ca.pub"),
                 "--pop=" + self.lab.nodes("pop")[0]["addr"], "--reconnect-ms=200"]
        log = os.path.join(self.lab.work, "agent%d.log" % gid)
        with open(log, "ab") as f:
            self.extra.append(subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with open(log, "rb") as f:
                if b"registered with POP" in f.read():
                    return "127.0.0.1:%d" % port
            time.sleep(0.1)
        with open(log, "rb") as f:
            self.fail("agent %d never registered:\n%s" % (gid, f.read().decode(errors="replace")))

    def client_conf(self, who, agent_addr, subscriber=None):
        d = os.path.join(self.lab.work, "client-" + who)
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "config")
        with open(path, "w") as f:
            f.write("agent = %s\nsubscriber = %s\nkey_file = %s\nstate_dir = %s\n" % (
                agent_addr, subscriber or who, os.path.join(d, "master.key"), d))
        return path

    def refused(self):
        text = lab_metrics(self.lab, "pop1")
        m = re.search(r'^mistore_requests_refused_total\{reason="unauthorized"\} (\S+)$', text,
                      re.M)
        self.assertIsNotNone(m, "pop1 exports no mistore_requests_refused_total")
        return float(m.group(1))

    def assertRefusedAtPop(self, conf, oid, who, before):
        """`get --shared alice/OID` as `who`: exit 5 with the POP's reason,
        one log line at pop1, the counter moved."""
        off = self.lab.log_offset("pop1")
        out = self.scratch("stolen-" + who)
        r = self.lab.client("get", "--shared", "alice/" + oid, "-o", out, conf=conf,
                            check=False)
        err = r.stderr.decode(errors="replace")
        self.assertEqual(r.returncode, 5, err)
        self.assertIn("is not shared with " + who, err)
        self.assertFalse(os.path.exists(out))
        needle = 'msg="request refused" gateway='
        self.assertTrue(self.lab.wait_log("pop1", off, needle), self.lab.log_since("pop1", off))
        lines = [l for l in self.lab.log_since("pop1", off).splitlines()
                 if needle in l and "not shared with " + who in l]
        self.assertEqual(len(lines), 1, lines)
        self.assertGreater(self.refused(), before)

    # ---- the test
    def test_share_read_refuse_unshare(self):
        bob_gw = self.start_gateway(9201, "bob")
        carol_gw = self.start_gateway(9301, "carol")
        bob = self.client_conf("bob", bob_gw)
        carol = self.client_conf("carol", carol_gw)
        self.lab.init_client(conf=bob)
        self.lab.init_client(conf=carol)

        src = write_random_file(self.scratch("report.bin"), 3 << 20)
        name, oid, version = self.lab.put(src, "report.bin")

        # bob has published no share key yet: alice cannot share with him.
        r = self.lab.client("share", "report.bin", "--with", "bob", check=False)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("ask bob to run `mistore shared`", r.stderr.decode())

        # bob publishes his key (`mistore shared` lists nothing yet).
        r = self.lab.client("shared", conf=bob)
        self.assertEqual(r.stdout.strip(), b"")
        self.lab.client("shared", conf=carol)
        self.lab.client("share", "report.bin", "--with", "bob")
        r = self.lab.client("shared", conf=bob)
        self.assertIn(("alice/report.bin  " + oid).encode(), r.stdout.lower())

        # bob reads the exact bytes through his own gateway.
        before_reads = self.shared_reads()
        out = self.scratch("report.bob")
        self.lab.client("get", "--shared", "alice/report.bin", "-o", out, conf=bob)
        self.assertFilesEqual(src, out, "bob's copy")
        self.assertGreater(self.shared_reads(), before_reads)

        # carol: nothing shared with her; asking the POP for the oid is refused.
        r = self.lab.client("get", "--shared", "alice/report.bin", "-o",
                            self.scratch("report.carol"), conf=carol, check=False)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertRefusedAtPop(carol, oid, "carol", self.refused())

        # bob can never write alice's object: a client of bob's gateway
        # claiming alice is refused (exit 5), and alice's object is unchanged.
        as_alice = self.client_conf("bob-as-alice", bob_gw, subscriber="alice")
        os.link(os.path.join(self.lab.work, "client-bob", "master.key"),
                os.path.join(self.lab.work, "client-bob-as-alice", "master.key"))
        evil = write_random_file(self.scratch("evil.bin"), 1000)
        r = self.lab.client("put", evil, "--name", "report.bin", conf=as_alice, check=False)
        self.assertEqual(r.returncode, 5, r.stderr)
        r = self.lab.client("rm", "report.bin", conf=as_alice, check=False)
        self.assertEqual(r.returncode, 5, r.stderr)
        out2 = self.scratch("report.alice")
        self.lab.get("report.bin", out2)
        self.assertFilesEqual(src, out2, "alice's object after bob's attempts")

        # alice unshares: once the POP's cached answer expired, bob is refused.
        r = self.lab.client("unshare", "report.bin", "--with", "bob")
        self.assertIn(b"no longer shared with bob", r.stdout)
        time.sleep(TTL_MS / 1000.0 + 0.5)
        self.assertRefusedAtPop(bob, oid, "bob", self.refused())
        r = self.lab.client("get", "--shared", "alice/report.bin", "-o",
                            self.scratch("report.bob2"), conf=bob, check=False)
        self.assertEqual(r.returncode, 3, r.stderr)
        r = self.lab.client("shared", conf=bob)
        self.assertEqual(r.stdout.strip(), b"")

        # alice herself still reads it; every daemon is alive.
        self.lab.get("report.bin", out2)
        self.assertFilesEqual(src, out2, "alice's read at the end")
        self.assertAllAlive()

    def shared_reads(self):
        text = lab_metrics(self.lab, "pop1")
        m = re.search(r"^mistore_pop_shared_reads_total (\S+)$", text, re.M)
        self.assertIsNotNone(m, "pop1 exports no mistore_pop_shared_reads_total")
        return float(m.group(1))


if __name__ == "__main__":
    unittest.main()
