"""The agent taken out of a gateway .ipk (armhf by default) registers with a
real mistore-pop on loopback and stores and serves real fragments.

A lab (tools/mistore-lab, the build host's mistore-dc, mistore-pop and
mistore client from MISTORE_BIN_DIR, default build/release/bin) with two POPs
(an object needs a primary and a backup), two gateways each, k=1 m=1 (the
POP's Reed-Solomon needs m >= 1) and the POPs' caches off; the client's
gateway is stopped and started again from the .ipk's binary under qemu-user
(realistic -cpu), same settings. A file put
through that agent has a fragment of every chunk on it; with every other
gateway killed, the file reads back byte-identical from the qemu-run agent
alone.

Run by scripts/test.sh after cross-toolchains/build.sh armhf and the release
build (the .ipk and the servers must exist; a missing one fails the test):
    python3 tests/packaging/test_ipk_real_pop.py [-v]
MISTORE_IPK_TARGET=arm64|mipsel picks another target's package.
"""

import glob
import io
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "system"))
os.environ.setdefault("MISTORE_BIN_DIR", os.path.join(REPO, "build", "release", "bin"))
import labutil  # noqa: E402

TARGET = os.environ.get("MISTORE_IPK_TARGET", "armhf")
# The package's opkg architecture prefix and the qemu that runs its binary.
QEMU = {"armhf": ("arm_", ["qemu-arm", "-cpu", "cortex-a7"]),
        "arm64": ("aarch64_", ["qemu-aarch64", "-cpu", "cortex-a53"]),
        "mipsel": ("mipsel_", ["qemu-mipsel", "-cpu", "74Kf"])}


def agent_from_ipk(ipk, dest):
    """Unpacks usr/bin/mistore-agent from the .ipk (tar of tars) to dest."""
    with tarfile.open(ipk, "r:gz") as outer:
        data = outer.extractfile("./data.tar.gz").read()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as t:
        body = t.extractfile("./usr/bin/mistore-agent").read()
    with open(dest, "wb") as f:
        f.write(body)
    os.chmod(dest, 0o755)
    return dest


class IpkAgentWithRealPopTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        prefix, cls.qemu = QEMU[TARGET]
        pkgs = sorted(p for p in glob.glob(os.path.join(REPO, "out", "packages", "mistore-agent_*.ipk"))
                      if os.path.basename(p).split("_", 2)[2].startswith(prefix))
        if not pkgs:
            raise AssertionError("no %s .ipk in out/packages: run bash cross-toolchains/build.sh %s"
                                 % (TARGET, TARGET))
        cls.ipk = pkgs[-1]
        cls.tmp = tempfile.mkdtemp(prefix="mistore-ipk-pop-")
        cls.agent = agent_from_ipk(cls.ipk, os.path.join(cls.tmp, "mistore-agent"))
        # Two POPs: every object needs a primary and a backup lock service.
        cls.lab = labutil.Lab(pops=2, gateways_per_pop=2, k=1, m=1, pop_cache_bytes=0)
        cls.lab.up()
        cls.lab.init_client()

    @classmethod
    def tearDownClass(cls):
        cls.lab.teardown()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_agent_from_ipk_registers_stores_and_serves(self):
        desc = subprocess.run(["file", "-b", self.agent], capture_output=True, text=True).stdout
        self.assertIn("statically linked", desc)
        # The client's gateway (the lab's client config points at it).
        gw = self.lab.nodes("gateway")[0]
        others = [n["id"] for n in self.lab.nodes("gateway")[1:]]
        gid = int(gw["id"][2:])
        self.lab.kill(gw["id"])
        # Same node, same settings, the packaged binary under qemu-user.
        state = labutil.labtool.load_state(self.lab.dir)
        node = labutil.labtool.find_node(state, gw["id"])
        native = node["argv"][0]
        node["argv"] = self.qemu + [self.agent] + node["argv"][1:]
        labutil.labtool.save_state(self.lab.dir, state)
        off = self.lab.log_offset(gw["id"])
        self.lab.lab_cmd("start", gw["id"], "-q", "--wait-registered", "--ready-timeout", "180",
                         timeout=240)
        node = self.lab.node(gw["id"])
        with open("/proc/%d/cmdline" % node["pid"], "rb") as f:
            argv = f.read().split(b"\0")
        self.assertEqual(argv[0].decode(), self.qemu[0])
        self.assertIn(self.agent.encode(), argv)
        self.assertNotIn(native.encode(), argv)
        log = self.lab.log_since(gw["id"], off)
        self.assertIn('msg="registered with POP"', log)

        src = os.path.join(self.lab.work, "from-ipk-agent.bin")
        labutil.write_random_file(src, 3 * (1 << 20) + 17)
        name, _oid, _v = self.lab.put(src, "ipk-agent")
        frags = self.lab.wait_placed(name, timeout=float(os.environ.get("MISTORE_PLACE_TIMEOUT_S", "180")))
        ours = [f for f in frags if f["gateway"] == gid]
        # k=1: every chunk has a fragment on the qemu-run agent (k+m = 2
        # gateways per region), so it alone can serve the whole file.
        self.assertEqual({f["chunk"] for f in ours}, {f["chunk"] for f in frags}, frags)
        # Only the qemu-run agent left to serve fragments (POP caches off).
        for other in others:
            self.lab.kill(other)
        out = os.path.join(self.lab.work, "from-ipk-agent.out")
        self.lab.get(name, out, size_hint=os.path.getsize(src))
        self.assertEqual(labutil.sha256_file(out), labutil.sha256_file(src))
        # The fragments are on the qemu-run agent's disk.
        files = [p for p in glob.glob(os.path.join(node["data_dir"], "**"), recursive=True)
                 if os.path.isfile(p) and stat.S_ISREG(os.stat(p).st_mode)]
        self.assertGreaterEqual(len(files), len(ours))


if __name__ == "__main__":
    unittest.main()
