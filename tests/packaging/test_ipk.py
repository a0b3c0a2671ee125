"""The OpenWrt .ipk of the gateway agent (packaging/build-ipk.sh), for the
target of the build that registers this test: unpacked with tar, its
structure and control fields checked, and the agent taken out of it run
(under qemu-user for cross targets) with a configuration translated from the
packaged UCI file by the packaged uci2conf, until it registers with a
stand-in POP on loopback and stores a fragment.
"""

import glob
import io
import os
import re
import shutil
import stat
import subprocess
import tarfile
import tempfile
import unittest

import agentpop

TARGET = os.environ.get("MISTORE_TARGET", "")
EMULATOR = os.environ.get("MISTORE_EMULATOR", "").split()
PACKAGES = os.environ.get("MISTORE_PACKAGES_DIR", "")
ARCH_PREFIX = {"armhf": "arm_", "arm64": "aarch64_", "mipsel": "mipsel_", "x86_64": "x86_64"}


def find_ipk():
    prefix = ARCH_PREFIX.get(TARGET)
    if not prefix or not PACKAGES:
        return None
    found = sorted(p for p in glob.glob(os.path.join(PACKAGES, "mistore-agent_*.ipk"))
                   if os.path.basename(p).split("_", 2)[2].startswith(prefix))
    return found[-1] if found else None


def members(tgz_bytes):
    with tarfile.open(fileobj=io.BytesIO(tgz_bytes), mode="r:gz") as t:
        return {m.name: (m, t.extractfile(m).read() if m.isfile() else None) for m in t.getmembers()}


def control_fields(text):
    fields, last = {}, None
    for line in text.splitlines():
        if line.startswith(" ") and last:
            fields[last] += "\n" + line
        elif ":" in line:
            last, v = line.split(":", 1)
            fields[last] = v.strip()
    return fields


class IpkTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ipk = find_ipk()
        if not cls.ipk:
            raise unittest.SkipTest("no .ipk for %r in %r: run bash cross-toolchains/build.sh" % (TARGET, PACKAGES))
        with open(cls.ipk, "rb") as f:
            cls.outer = members(f.read())
        cls.control = members(cls.outer["./control.tar.gz"][1])
        cls.data = members(cls.outer["./data.tar.gz"][1])
        cls.fields = control_fields(cls.control["./control"][1].decode())

    def test_outer_layout(self):
        self.assertEqual(sorted(self.outer), ["./control.tar.gz", "./data.tar.gz", "./debian-binary"])
        self.assertEqual(self.outer["./debian-binary"][1], b"2.0\n")
        for name, (m, _) in self.outer.items():
            self.assertEqual((m.uid, m.gid), (0, 0), name)

    def test_control_fields(self):
        f = self.fields
        for k in ("Package", "Version", "Architecture", "Installed-Size", "Depends", "Description"):
            self.assertIn(k, f)
        self.assertEqual(f["Package"], "mistore-agent")
        self.assertTrue(f["Architecture"].startswith(ARCH_PREFIX[TARGET]), f["Architecture"])
        self.assertIn("_%s_%s.ipk" % (f["Version"], f["Architecture"]), self.ipk)
        files = sum(len(d) for m, d in self.data.values() if m.isfile())
        self.assertGreaterEqual(int(f["Installed-Size"]), files)
        self.assertRegex(f["Version"], r"^\d+\.\d+\.\d+-\d+$")

    def test_conffiles_and_scripts(self):
        conffiles = self.control["./conffiles"][1].decode().split()
        self.assertEqual(conffiles, ["/etc/config/mistore"])
        for c in conffiles:
            self.assertIn("." + c, self.data)
        for script in ("./postinst", "./prerm"):
            m, body = self.control[script]
            self.assertTrue(m.mode & stat.S_IXUSR, script)
            # Inside an image build ($IPKG_INSTROOT set) they touch nothing.
            run = subprocess.run(["sh", "-x", "-c", body.decode(), script],
                                 env={"IPKG_INSTROOT": "/tmp/image-root", "PATH": "/usr/bin:/bin"},
                                 capture_output=True, text=True)
            self.assertEqual(run.returncode, 0, run.stderr)
            self.assertNotIn("/etc/init.d", run.stderr, script)
            # On a running gateway (no $IPKG_INSTROOT) they do act: the
            # trace shows the init script called (absent on the build host,
            # so the call fails harmlessly and the script still exits 0).
            live = subprocess.run(["sh", "-x", "-c", body.decode(), script],
                                  env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
            self.assertEqual(live.returncode, 0, live.stderr)
            self.assertIn("/etc/init.d/mistore", live.stderr, script)

    def test_data_files(self):
        want = {"./usr/bin/mistore-agent": 0o755, "./etc/init.d/mistore": 0o755,
                "./etc/config/mistore": 0o600, "./usr/libexec/mistore/uci2conf": 0o755}
        for name, mode in want.items():
            self.assertIn(name, self.data)
            m, _ = self.data[name]
            self.assertEqual(stat.S_IMODE(m.mode), mode, name)
            self.assertEqual((m.uid, m.gid), (0, 0), name)
        init = self.data["./etc/init.d/mistore"][1].decode()
        self.assertTrue(init.startswith("#!/bin/sh /etc/rc.common"))
        for needle in ("USE_PROCD=1", "procd_set_param respawn", "procd_add_reload_trigger mistore",
                       "procd_set_param file /etc/config/mistore", "procd_set_param command"):
            self.assertIn(needle, init)
        self.assertNotIn("--daemon", init)  # procd wants the agent in the foreground
        uci = self.data["./etc/config/mistore"][1].decode()
        for opt in ("store_dir", "disk_share_bytes", "pop", "enrolment_token", "failure_domain"):
            self.assertRegex(uci, r"(option|list) %s " % opt)

    def test_init_script_under_stub_procd(self):
        """Runs the packaged init script's start_service and service_triggers
        with procd's shell API stubbed (each call recorded), the packaged
        uci2conf and UCI file: disabled -> no instance; enabled -> one
        foreground instance with respawn, the config file watched, and a
        reload trigger on the `mistore` UCI package."""
        work = tempfile.mkdtemp(prefix="mistore-init-")
        self.addCleanup(shutil.rmtree, work, True)
        init = self.data["./etc/init.d/mistore"][1].decode()
        uci2conf = os.path.join(work, "uci2conf")
        with open(uci2conf, "wb") as f:
            f.write(self.data["./usr/libexec/mistore/uci2conf"][1])
        os.chmod(uci2conf, 0o755)
        init = (init.replace("/usr/libexec/mistore/uci2conf", uci2conf)
                .replace("/etc/config/mistore", os.path.join(work, "mistore"))
                .replace("/var/etc/", work + "/var-etc/"))
        with open(os.path.join(work, "init"), "w") as f:
            f.write(init)
        stubs = "".join("%s() { echo \"%s $*\" >> %s/calls; }\n" % (fn, fn, work) for fn in (
            "procd_open_instance", "procd_set_param", "procd_close_instance",
            "procd_add_reload_trigger"))
        uci = self.data["./etc/config/mistore"][1].decode()

        def run(enabled):
            with open(os.path.join(work, "mistore"), "w") as f:
                f.write(uci.replace("option enabled '0'", "option enabled '%s'" % enabled))
            if os.path.exists(os.path.join(work, "calls")):
                os.unlink(os.path.join(work, "calls"))
            r = subprocess.run(["sh", "-c", stubs + ". %s/init; start_service; echo rc=$?; service_triggers"
                                % work], capture_output=True, text=True,
                               env={"PATH": "/usr/bin:/bin", "MISTORE_AGENT_BIN": "/nonexistent"})
            calls = ""
            if os.path.exists(os.path.join(work, "calls")):
                with open(os.path.join(work, "calls")) as f:
                    calls = f.read()
            return r, [c.rstrip() for c in calls.splitlines()]

        r, calls = run("0")
        self.assertIn("rc=0", r.stdout, r.stderr)
        self.assertIn("disabled", r.stderr)
        self.assertEqual(calls, ["procd_add_reload_trigger mistore"])
        r, calls = run("1")
        self.assertIn("rc=0", r.stdout, r.stderr)
        conf = work + "/var-etc/mistore-agent.conf"
        self.assertEqual(calls[0], "procd_open_instance agent")
        self.assertIn("procd_set_param command /usr/bin/mistore-agent --config %s" % conf, calls)
        self.assertTrue(any(c.startswith("procd_set_param respawn ") for c in calls), calls)
        self.assertIn("procd_set_param file %s/mistore" % work, calls)
        self.assertEqual(calls[-2:], ["procd_close_instance", "procd_add_reload_trigger mistore"])
        with open(conf) as f:
            self.assertIn("data_dir = /mnt/mistore\n", f.read())

    def test_agent_from_ipk_registers_with_pop(self):
        work = tempfile.mkdtemp(prefix="mistore-ipk-")
        self.addCleanup(shutil.rmtree, work, True)
        root = os.path.join(work, "root")
        for name, (m, body) in self.data.items():
            path = os.path.join(root, name)
            if m.isdir():
                os.makedirs(path, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as f:
                    f.write(body)
                os.chmod(path, stat.S_IMODE(m.mode))
        agent = os.path.join(root, "usr/bin/mistore-agent")
        desc = subprocess.run(["file", "-b", agent], capture_output=True, text=True).stdout
        self.assertIn("statically linked", desc)
        # What the agent prints as settings decides what uci2conf writes.
        wrapper = os.path.join(work, "agent-wrapper")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\nexec %s %s \"$@\"\n" % (" ".join(EMULATOR), agent))
        os.chmod(wrapper, 0o755)

        pop = agentpop.FakePop()
        self.addCleanup(pop.close)
        uci = self.data["./etc/config/mistore"][1].decode()
        uci = re.sub(r"option enabled '0'", "option enabled '1'", uci)
        uci = re.sub(r"option gateway_id ''", "option gateway_id '1003'", uci)
        uci = re.sub(r"option subscriber ''", "option subscriber 'alice'", uci)
        # Two POPs listed: the first is down, so the agent fails over to the
        # second (the stand-in).
        dead = agentpop.closed_addr()
        listed = [dead, pop.addr]

        def pop_line(_m):  # the sample's POP lines, in order; any beyond two dropped
            return "\tlist pop '%s'\n" % listed.pop(0) if listed else ""
        uci = re.sub(r"\tlist pop '[^']*'\n", pop_line, uci)
        self.assertEqual(listed, [], "the sample config lists two POPs")
        uci = re.sub(r"option client_listen '[^']*'", "option client_listen '127.0.0.1:0'", uci)
        uci = re.sub(r"option store_dir '[^']*'", "option store_dir '%s/store'" % work, uci)
        uci_path = os.path.join(work, "mistore.uci")
        with open(uci_path, "w") as f:
            f.write(uci)
        conf = os.path.join(work, "var/etc/mistore-agent.conf")
        run = subprocess.run(["sh", os.path.join(root, "usr/libexec/mistore/uci2conf"), uci_path, conf],
                             env=dict(os.environ, MISTORE_AGENT_BIN=wrapper),
                             capture_output=True, text=True)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertEqual(stat.S_IMODE(os.stat(conf).st_mode), 0o600)
        with open(conf) as f:
            text = f.read()
        self.assertIn("pops = %s,%s\n" % (dead, pop.addr), text)
        # UCI's `list failure_domain` lines become the agent's failure_domains.
        self.assertRegex(text, r"(?m)^failure_domains = exchange=unknown,cabinet=unknown$")
        # Enrolment (issue 4): the token and the DC's enrolment address reach
        # the agent's configuration, which the agent accepts.
        token = "mse1." + "ab" * 8 + "." + "cd" * 16 + "." + "ef" * 16
        enrol_uci = re.sub(r"option enrolment_token ''", "option enrolment_token '%s'" % token, uci)
        enrol_uci = re.sub(r"option enrolment_dc ''", "option enrolment_dc '192.0.2.1:7001'",
                           enrol_uci)
        self.assertNotEqual(enrol_uci, uci, "the sample UCI has enrolment_token and enrolment_dc")
        enrol_path = os.path.join(work, "mistore-enrol.uci")
        with open(enrol_path, "w") as f:
            f.write(enrol_uci)
        enrol_conf = os.path.join(work, "var/etc/mistore-agent-enrol.conf")
        run = subprocess.run(["sh", os.path.join(root, "usr/libexec/mistore/uci2conf"), enrol_path,
                              enrol_conf], env=dict(os.environ, MISTORE_AGENT_BIN=wrapper),
                             capture_output=True, text=True)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertEqual(stat.S_IMODE(os.stat(enrol_conf).st_mode), 0o600)  # holds the token
        with open(enrol_conf) as f:
            enrol_text = f.read()
        self.assertIn("enrolment_token = %s\n" % token, enrol_text)
        self.assertIn("enrolment_dc = 192.0.2.1:7001\n", enrol_text)
        self.assertNotIn("ignored", run.stderr)

        log = open(os.path.join(work, "agent.log"), "wb")
        self.addCleanup(log.close)
        # The stand-in POP (agentpop.FakePop) speaks plain framing; the
        # packaged agent runs the secure transport by default (issue 4).
        proc = subprocess.Popen(EMULATOR + [agent, "--config", conf, "--secure=false"],
                                stdout=log, stderr=log)
        self.addCleanup(agentpop.stop, proc)
        hello = pop.accept_agent(timeout=120)
        self.assertEqual(hello.get(1), [agentpop.ROLE_GATEWAY])
        self.assertEqual(hello.get(2), [1003])
        self.assertEqual(hello.get(4), [b"alice"])
        [(chunk_id, blob)] = agentpop.make_fragments(1, 4096)
        self.assertEqual(pop.store_fragments([blob]), 0)
        self.assertEqual(pop.fetch_fragment(chunk_id, 0), blob)
        self.assertTrue(os.path.isdir(os.path.join(work, "store", "fragments")))


if __name__ == "__main__":
    unittest.main()
