"""The cluster map reaches the gateway agents (issue 7: "pushed to POPs and
agents on change").

Real processes on loopback, started here rather than by mistore-lab (whose
POPs are each their own region): a DC, POPs pop1 and pop2 in region r1, pop3
in region r2, and one agent configured with pop1 ONLY. Checked through the
agent's /metrics:
  - the agent learns r1's POPs from the map (mistore_agent_pops_known 2: its
    configured pop1 plus pop2; pop3 is another region's);
  - a POP killed: the DC bumps the epoch, pop1 pushes the map, and the
    agent's mistore_agent_map_epoch grows while it stays on pop1;
  - pop1 killed: the agent fails over to pop2, which it only knows from the
    map, and its epoch grows again (it never goes back).
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from labutil import http_get, labtool, metric_value, node_identity_flags, parse_metrics

HOST = "127.0.0.1"


def bin_path(name):
    d = os.environ.get("MISTORE_BIN_DIR")
    if d:
        return os.path.join(d, name)
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.path.join(repo, "build", "release", "bin", name)


class MapPushToAgents(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="mistore-mappush-")
        cls.procs = {}
        cls.logs = {}
        ports = labtool.pick_free_ports(11)
        cls.addr = {}
        cls.metrics = {}
        for name in ("dc", "pop1", "pop2", "pop3", "gw"):
            cls.addr[name] = f"{HOST}:{ports.pop()}"
            cls.metrics[name] = f"{HOST}:{ports.pop()}"
        admin = f"{HOST}:{ports.pop()}"
        cls.argv = {
            "dc": [bin_path("mistore-dc"), f"--listen={cls.addr['dc']}",
                   f"--data-dir={cls.dir}/dc", f"--admin-listen={admin}",
                   f"--admin-token-file={cls.dir}/admin.token"],
            "gw": [bin_path("mistore-agent"), "--gateway-id=1001", "--subscriber=alice",
                   f"--pop={cls.addr['pop1']}", f"--client-listen={cls.addr['gw']}",
                   f"--data-dir={cls.dir}/gw", "--store-bytes-max=1073741824"],
        }
        for i, region in ((1, "r1"), (2, "r1"), (3, "r2")):
            name = f"pop{i}"
            cls.argv[name] = [bin_path("mistore-pop"), f"--pop-id={i}", f"--region={region}",
                              f"--listen={cls.addr[name]}", f"--dc={cls.addr['dc']}",
                              f"--data-dir={cls.dir}/{name}", "--k=2", "--m=1",
                              "--map-refresh-ms=1000"]
        # Node links are secure by default (issue 4): keys and certificates
        # from the DC's CA.
        bin_dir = os.path.dirname(bin_path("mistore-dc"))
        for name, role, nid, region in (("pop1", "pop", 1, "r1"), ("pop2", "pop", 2, "r1"),
                                        ("pop3", "pop", 3, "r2"), ("gw", "gateway", 1001, "r1")):
            cls.argv[name] += node_identity_flags(
                bin_dir, f"{cls.dir}/dc", role, nid, region, f"{cls.dir}/{name}-id",
                "alice" if role == "gateway" else "-")
        try:
            for name in ("dc", "pop1", "pop2", "pop3"):
                cls.start(name)
            cls.start("gw")
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def start(cls, name):
        os.makedirs(f"{cls.dir}/{name}", exist_ok=True)
        log = open(f"{cls.dir}/{name}.log", "ab")
        cls.logs[name] = f"{cls.dir}/{name}.log"
        argv = cls.argv[name] + [f"--metrics-listen={cls.metrics[name]}"]
        cls.procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                           stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # ready: its /metrics answers
            if cls.procs[name].poll() is not None:
                raise AssertionError(f"{name} exited {cls.procs[name].returncode}:\n"
                                     + cls.tail(name))
            try:
                if http_get(f"http://{cls.metrics[name]}/metrics", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{name} did not come up:\n" + cls.tail(name))

    @classmethod
    def kill(cls, name):
        p = cls.procs.pop(name, None)
        if p and p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=10)

    @classmethod
    def tail(cls, name, lines=25):
        try:
            with open(cls.logs[name], errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no log)"

    @classmethod
    def tearDownClass(cls):
        for name in list(cls.procs):
            cls.kill(name)
        if os.environ.get("MISTORE_KEEP_LAB"):
            print(f"\n[kept {cls.dir}]")
        else:
            shutil.rmtree(cls.dir, ignore_errors=True)

    def agent(self):
        status, _, body = http_get(f"http://{self.metrics['gw']}/metrics", timeout=5)
        self.assertEqual(status, 200)
        s = parse_metrics(body.decode())
        return {k: metric_value(s, "mistore_agent_" + k) for k in
                ("map_epoch", "pops_known", "pop_connected", "maps_stale_total")}

    def wait_agent(self, what, pred, timeout=30.0):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.agent()
            if pred(last):
                return last
            time.sleep(0.2)
        self.fail(f"agent: {what} not seen within {timeout:g} s; last {last}\n"
                  f"--- agent log ---\n{self.tail('gw')}\n--- pop1 log ---\n{self.tail('pop1')}")

    def test_map_changes_reach_the_agent_and_it_fails_over_to_learned_pops(self):
        # The map lists pop1 and pop2 up in r1: the agent knows both.
        a = self.wait_agent("registered, knowing r1's two POPs",
                            lambda m: m["pop_connected"] == 1 and m["pops_known"] == 2)
        e0 = a["map_epoch"]
        self.assertGreater(e0, 0)

        # pop3 (another region) killed: a new epoch, pushed by pop1.
        gw_log = os.path.getsize(self.logs["gw"])
        self.kill("pop3")
        a = self.wait_agent("a newer epoch after pop3 went down",
                            lambda m: m["map_epoch"] > e0)
        e1 = a["map_epoch"]
        self.assertEqual(a["pop_connected"], 1)
        self.assertEqual(a["pops_known"], 2, "pop3 is not in the agent's region")
        with open(self.logs["gw"], errors="replace") as f:
            f.seek(gw_log)
            since = f.read()
        self.assertNotIn("lost POP connection", since,
                         "the map must arrive by push, not by reconnecting")
        self.assertIn('msg="cluster map"', since)

        # pop2 (same region) killed and restarted: down, then up again.
        self.kill("pop2")
        a = self.wait_agent("pop2 down in the map", lambda m: m["map_epoch"] > e1)
        e2 = a["map_epoch"]
        self.start("pop2")
        a = self.wait_agent("pop2 up again", lambda m: m["map_epoch"] > e2
                            and m["pops_known"] == 2)
        e3 = a["map_epoch"]

        # pop1, the only POP in the agent's configuration, killed: the agent
        # fails over to pop2, learned from the map; the epoch grows again.
        gw_log = os.path.getsize(self.logs["gw"])
        self.kill("pop1")
        a = self.wait_agent("registered with pop2 and a newer epoch",
                            lambda m: m["pop_connected"] == 1 and m["map_epoch"] > e3,
                            timeout=60)
        with open(self.logs["gw"], errors="replace") as f:
            f.seek(gw_log)
            since = f.read()
        self.assertIn(f"pop={self.addr['pop2']}", since)
        self.assertIn('msg="registered with POP"', since)
        self.assertGreaterEqual(a["map_epoch"], e3 + 1)
        self.assertEqual(a["maps_stale_total"] or 0, 0)
        for name, p in self.procs.items():
            self.assertIsNone(p.poll(), f"{name} died:\n{self.tail(name)}")


if __name__ == "__main__":
    unittest.main()
