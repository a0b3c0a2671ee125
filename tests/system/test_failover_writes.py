"""POP failover under writes (issue 5): kill -9 the primary POP of an
object while two clients keep writing it through other POPs. The backup
takes over as primary (the DC standing in as backup), every acknowledged
version reads back exactly, and once the old primary restarts it catches up,
takes its role back and serves the latest version."""

import os
import subprocess
import threading
import time
import unittest

from labutil import PUT_RE, LabTestCase, decode_oid, write_random_file

KIB = 1 << 10


def read(path):
    with open(path, "rb") as f:
        return f.read()


class FailoverUnderWrites(LabTestCase):
    LAB_OPTIONS = {"pops": 3, "gateways_per_pop": 6, "k": 4, "m": 2}

    def conf_for(self, pop):
        conf = self.scratch(f"client-pop{pop}.conf")
        if not os.path.exists(conf):
            self.lab.write_client_conf(f"gw{pop}001", conf, state_dir=self.scratch(f"state{pop}"))
        return conf

    def put_once(self, path, conf):
        cmd = [self.lab.client_bin(), "--config", conf, "put", path, "--name", "doc"]
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=self.lab.client_env(), timeout=60)
        m = PUT_RE.search(p.stdout.decode())
        return (int(m.group(3)) if p.returncode == 0 and m else None), p

    def writer(self, conf, tag, stop, acked, errors):
        i = 0
        while not stop.is_set():
            path = write_random_file(self.scratch(f"{tag}-{i}"), (8 + i % 5) * KIB)
            version, p = self.put_once(path, conf)
            if version is not None:
                acked.append((version, path))
            else:
                errors.append(p.stderr.decode(errors="replace").strip())
                time.sleep(0.2)
            i += 1

    def get_bytes(self, conf, *args):
        out = self.scratch("get.out")
        if os.path.exists(out):
            os.unlink(out)
        self.lab.client("get", "doc", "-o", out, *args, conf=conf)
        return read(out)

    def test_kill_primary_during_writes(self):
        first = write_random_file(self.scratch("v1"), 40 * KIB)
        _, oid, v = self.lab.put(first, "doc")  # through pop1: pop1 is the primary
        primary, backup, _, _ = decode_oid(oid)
        self.assertEqual((primary, v), (1, 1))
        other = ({1, 2, 3} - {primary, backup}).pop()
        writers = [self.conf_for(backup), self.conf_for(other)]
        stop, acked, errors = threading.Event(), [(1, first)], []
        threads = [threading.Thread(target=self.writer, args=(c, f"w{n}", stop, acked, errors))
                   for n, c in enumerate(writers)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        before_kill = len(acked)
        self.lab.kill(f"pop{primary}", "KILL")
        time.sleep(4.0)
        stop.set()
        for t in threads:
            t.join(timeout=120)
        after_kill = [v for v, _ in acked[before_kill:]]
        self.assertGreater(len(after_kill), 0,
                           f"no write was acknowledged while pop{primary} was down; errors: "
                           f"{errors[-5:]}")
        versions = sorted(v for v, _ in acked)
        self.assertEqual(len(versions), len(set(versions)), f"duplicate versions: {versions}")
        # The backup serves, with pop1 still down: every acknowledged version.
        for version, path in acked:
            self.assertEqual(self.get_bytes(writers[1], "--version", str(version)), read(path),
                             f"version {version} while pop{primary} is down")
        latest_v, latest_path = max(acked)
        self.assertEqual(self.get_bytes(writers[1], "--consistency", "atomic"), read(latest_path))

        # The old primary comes back, catches up and serves the latest version.
        self.lab.start(f"pop{primary}")
        conf_primary = self.conf_for(primary)
        deadline = time.monotonic() + 30
        while True:
            try:
                got = self.get_bytes(conf_primary, "--consistency", "atomic")
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        self.assertEqual(got, read(latest_path), "the restarted primary serves the latest version")
        for version, path in acked:
            self.assertEqual(self.get_bytes(conf_primary, "--version", str(version)), read(path),
                             f"version {version} through the restarted primary")
        nxt = write_random_file(self.scratch("after"), 12 * KIB)
        _, oid2, v2 = self.lab.put(nxt, "doc", conf=conf_primary)
        self.assertEqual((oid2, v2), (oid, latest_v + 1), "writes go on from the latest version")
        self.assertAllAlive()


class FailoverOfAHungPrimary(LabTestCase):
    """A primary that hangs (SIGSTOP: its connections stay open, it answers
    nothing) is marked down by the DC after pop_silence_ms, so writes go on
    through the backup; once it runs again it re-registers, catches up and
    serves the latest version."""
    SILENCE_MS = 3000
    LAB_OPTIONS = {"pops": 3, "gateways_per_pop": 6, "k": 4, "m": 2,
                   "dc_args": [f"--pop-silence-ms={SILENCE_MS}"],
                   "pop_args": ["--map-lease-ms=1500"]}

    def test_stopped_primary_is_marked_down_and_rejoins(self):
        first = write_random_file(self.scratch("v1"), 20 * KIB)
        _, oid, v = self.lab.put(first, "doc")  # through pop1: pop1 is the primary
        primary, backup, _, _ = decode_oid(oid)
        self.assertEqual((primary, v), (1, 1))
        conf_backup = self.scratch("client-backup.conf")
        self.lab.write_client_conf(f"gw{backup}001", conf_backup,
                                   state_dir=self.scratch("state-backup"))
        dc_log = self.lab.log_offset("dc")
        self.lab.kill(f"pop{primary}", "STOP")
        stopped = time.monotonic()
        try:
            self.assertTrue(self.lab.wait_log("dc", dc_log, "POP silent; closing its connection",
                                              timeout=self.SILENCE_MS / 1000 + 10),
                            "the DC did not notice the stopped primary")
            noticed_s = time.monotonic() - stopped
            # Its last request (a map refresh, every second) came at most
            # ~1 s before the stop.
            self.assertGreaterEqual(noticed_s, self.SILENCE_MS / 1000 - 1.2,
                                    "marked down long before pop_silence_ms had passed")
            second = write_random_file(self.scratch("v2"), 20 * KIB)
            deadline = time.monotonic() + 30
            while True:
                cmd = [self.lab.client_bin(), "--config", conf_backup, "put", second,
                       "--name", "doc"]
                p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   env=self.lab.client_env(), timeout=60)
                m = PUT_RE.search(p.stdout.decode())
                if p.returncode == 0 and m:
                    break
                self.assertLess(time.monotonic(), deadline,
                                f"no write through the backup: {p.stderr.decode()[-300:]}")
                time.sleep(0.3)
            self.assertEqual(int(m.group(3)), 2, "the write through the backup is version 2")
        finally:
            self.lab.kill(f"pop{primary}", "CONT")
        # It re-registers, catches up and serves version 2 through its own gateway.
        conf_primary = self.scratch("client-primary.conf")
        self.lab.write_client_conf(f"gw{primary}001", conf_primary,
                                   state_dir=self.scratch("state-primary"))
        out = self.scratch("got")
        deadline = time.monotonic() + 30
        while True:
            p = self.lab.client("get", "doc", "-o", out, "--consistency", "atomic",
                                conf=conf_primary, check=False)
            if p.returncode == 0 and read(out) == read(second):
                break
            self.assertLess(time.monotonic(), deadline,
                            "the resumed primary did not serve version 2")
            time.sleep(0.5)
        self.assertAllAlive()


if __name__ == "__main__":
    unittest.main()
