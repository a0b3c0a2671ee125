"""Region durability (issue 6), real processes on mistore-lab.

m gateways of a region killed with SIGKILL: once the (shortened) grace period
is over, every chunk is back to k+m fragments on distinct live gateways of
that region, `mistore-lab status` shows nothing below redundancy, and every
object reads back byte-identical. Then bits are flipped in fragment files of
the region: every corrupted fragment is detected (by the agent's scrub or on
read), rebuilt on another gateway, and no read returns wrong bytes.

POP caches are off, so reads and repairs need the region's fragments.
MISTORE_DURABILITY_OBJECTS (default 24) sets how many objects are stored.
"""

import os
import random
import re
import socket
import struct
import subprocess
import time
import unittest

import labutil
from labutil import LabTestCase, write_random_file
from test_agent_store import f_bytes, f_varint, parse

GRACE_S = 3
K, M = 3, 2
GATEWAYS_PER_POP = 7  # k+m must still fit after m are lost
CLIENT_GATEWAY = 1001
REGION_POP = 1        # the client's entry POP: primary of every object
N_OBJECTS = int(os.environ.get("MISTORE_DURABILITY_OBJECTS", "24"))
STATUS_RE = re.compile(r"region (\S+) \(pop(\d+)\): below redundancy: (\d+)\s+repair queue: "
                       r"(\d+) chunks, (\d+) in flight.*repaired: (\d+) chunks.*"
                       r"alive (\d+) suspected (\d+) lost (\d+)")


class DurabilityLab(labutil.Lab):
    """A lab whose POPs declare silent gateways lost after GRACE_S seconds."""

    def lab_cmd(self, *args, **kw):
        if args and args[0] == "up":
            args = tuple(args) + ("--grace-seconds", str(GRACE_S))
        return super().lab_cmd(*args, **kw)


class RegionRepair(LabTestCase):
    LAB_OPTIONS = {"pops": 2, "gateways_per_pop": GATEWAYS_PER_POP, "k": K, "m": M,
                   "pop_cache_bytes": 0}

    @classmethod
    def setUpClass(cls):
        real = labutil.Lab
        labutil.Lab = DurabilityLab
        try:
            super().setUpClass()
        finally:
            labutil.Lab = real
        cls.objects = []  # (name, src path)
        cls.victims = []

    # ---- helpers
    def region_status(self):
        p = self.lab.lab_cmd("status", timeout=60)
        out = p.stdout.decode(errors="replace")
        rows = {}
        for m in STATUS_RE.finditer(out):
            rows[int(m.group(2))] = {
                "below": int(m.group(3)), "queue": int(m.group(4)), "in_flight": int(m.group(5)),
                "repaired": int(m.group(6)), "alive": int(m.group(7)),
                "suspected": int(m.group(8)), "lost": int(m.group(9))}
        self.assertIn(REGION_POP, rows, f"no durability line for pop{REGION_POP}:\n{out}")
        return rows[REGION_POP], out

    def wait_region(self, pred, what, timeout=60.0):
        deadline = time.monotonic() + timeout
        row, out = self.region_status()
        while not pred(row):
            if time.monotonic() > deadline:
                self.fail(f"{what} not reached after {timeout:g} s; last status:\n{out}")
            time.sleep(0.5)
            row, out = self.region_status()
        return row

    def fragments_of_region(self, name):
        frags, placed, total, text = self.lab.placement(name)
        self.assertTrue(total and placed == total, f"{name} not placed:\n{text}")
        by_chunk = {}
        for f in frags:
            if f["pop"] == REGION_POP:
                by_chunk.setdefault(f["chunk"], {})[f["index"]] = f["gateway"]
        return by_chunk

    def assert_full_redundancy(self, name, dead):
        by_chunk = self.fragments_of_region(name)
        self.assertTrue(by_chunk, f"{name}: no fragment in region of pop{REGION_POP}")
        for chunk, at in by_chunk.items():
            self.assertEqual(sorted(at), list(range(K + M)),
                             f"{name} chunk {chunk[:12]}: fragment indices {sorted(at)}")
            gws = list(at.values())
            self.assertEqual(len(set(gws)), K + M, f"{name} chunk {chunk[:12]}: shared gateways {gws}")
            on_dead = [g for g in gws if g in dead]
            self.assertEqual(on_dead, [], f"{name} chunk {chunk[:12]}: fragments on dead {on_dead}")
        return by_chunk

    def read_all_back(self, what):
        for name, src in self.objects:
            out = self.scratch(name + ".out")
            if os.path.exists(out):
                os.unlink(out)
            self.lab.get(name, out)
            self.assertFilesEqual(src, out, f"{what}: {name}")

    # ---- the tests (run in name order, sharing the lab)
    def test_1_m_gateways_killed_then_repaired(self):
        rng = random.Random(6)
        for i in range(N_OBJECTS):
            name = f"obj{i:03d}"
            src = write_random_file(self.scratch(name), rng.randint(5_000, 150_000))
            self.lab.put(src, name)
            self.objects.append((name, src))
        for name, _ in self.objects:
            self.lab.wait_placed(name)
        holders = {}
        for name, _ in self.objects:
            for at in self.fragments_of_region(name).values():
                for g in at.values():
                    holders[g] = holders.get(g, 0) + 1
        candidates = sorted((g for g in holders if g != CLIENT_GATEWAY),
                            key=lambda g: (-holders[g], g))
        self.assertGreaterEqual(len(candidates), M, f"holders: {holders}")
        victims = candidates[:M]
        type(self).victims = victims
        for g in victims:
            self.lab.kill(f"gw{g}", "KILL")
            self.assertFalse(self.lab.alive(f"gw{g}"))
        t0 = time.monotonic()
        row = self.wait_region(lambda r: r["lost"] == M and r["below"] == 0 and r["queue"] == 0
                               and r["in_flight"] == 0 and r["repaired"] > 0,
                               f"{M} gateways lost and every chunk repaired")
        repair_s = time.monotonic() - t0
        print(f"\n[durability] {N_OBJECTS} objects, killed {victims} holding "
              f"{sum(holders[g] for g in victims)} fragments; full redundancy after "
              f"{repair_s:.1f} s (grace {GRACE_S} s); repaired {row['repaired']} chunks")
        for name, _ in self.objects:
            self.assert_full_redundancy(name, set(victims))
        # `mistore-pop status` asks the running POP (its /metrics listener).
        pop = self.lab.node(f"pop{REGION_POP}")
        addr = pop["metrics_url"].split("/")[2]
        p = subprocess.run([os.path.join(self.lab.state["bin_dir"], "mistore-pop"), "status",
                            f"--metrics-listen={addr}"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        text = p.stdout.decode(errors="replace")
        self.assertEqual(p.returncode, 0, text)
        self.assertIn("below redundancy: 0", text)
        self.assertIn(f"lost {M}", text)
        self.assertRegex(text, r"repaired: [1-9]\d* chunks")
        self.read_all_back(f"after SIGKILL of {victims} and repair")
        others = [d for d in self.lab.dead_nodes() if d not in {f"gw{g}" for g in victims}]
        self.assertEqual(others, [], f"other daemons died: {others}")

    def test_2_flipped_bits_detected_and_repaired(self):
        if not self.objects:
            self.skipTest("needs the objects of test_1")
        dead = set(self.victims)
        # Fragment files of the region's live gateways, one per chunk at most
        # (so every chunk keeps k intact fragments), 5% of them.
        files = []
        for n in self.lab.nodes("gateway"):
            gid = int(n["id"][2:])
            if n["region"] != f"r{REGION_POP}" or gid in dead:
                continue
            for root, _, names in os.walk(os.path.join(n["data_dir"], "fragments")):
                for fn in names:
                    m = re.fullmatch(r"([0-9a-f]{64})\.(\d+)", fn)
                    if m:
                        files.append((m.group(1), int(m.group(2)), gid, os.path.join(root, fn)))
        files.sort()
        rng = random.Random(7)
        rng.shuffle(files)
        want = max(1, (len(files) * 5 + 99) // 100)
        flipped, chunks, original = [], set(), {}
        for chunk, idx, gid, path in files:
            if len(flipped) == want:
                break
            if chunk in chunks:
                continue
            chunks.add(chunk)
            with open(path, "rb") as f:
                original[(chunk, idx, gid)] = f.read()
            with open(path, "r+b") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(size - 7)
                b = f.read(1)
                f.seek(size - 7)
                f.write(bytes([b[0] ^ 0x10]))
            flipped.append((chunk, idx, gid))
        self.assertEqual(len(flipped), want, f"{len(files)} files, wanted {want} flips")
        before = self.region_status()[0]["repaired"]
        # Reads decode around the corrupt fragments (and report them).
        self.read_all_back("with flipped bits")
        self.wait_region(lambda r: r["below"] == 0 and r["queue"] == 0 and r["in_flight"] == 0
                         and r["repaired"] >= before + len({c for c, _, _ in flipped}),
                         "every corrupted fragment rebuilt")
        recorded = {}
        for name, _ in self.objects:
            for chunk, at in self.assert_full_redundancy(name, dead).items():
                recorded[chunk.lower()] = at  # `mistore placement` shows 12 hex digits
        gw_dirs = {int(n["id"][2:]): n["data_dir"] for n in self.lab.nodes("gateway")}
        moved = 0
        for chunk, idx, gid in flipped:
            short = next((c for c in recorded if chunk.startswith(c)), None)
            self.assertIsNotNone(short, f"flipped a fragment of an unknown chunk {chunk[:12]}")
            now_at = recorded[short][idx]
            moved += now_at != gid
            # Wherever it is recorded now, the file there is the intact fragment.
            path = os.path.join(gw_dirs[now_at], "fragments", chunk[:2], f"{chunk}.{idx}")
            with open(path, "rb") as f:
                self.assertEqual(f.read(), original[(chunk, idx, gid)],
                                 f"chunk {chunk[:12]} index {idx} on gw{now_at} is not intact")
        self.read_all_back("after repairing flipped bits")
        print(f"\n[durability] flipped bits in {len(flipped)} of {len(files)} fragment files: "
              f"all rebuilt ({moved} on another gateway)")



# ---------------------------------------------------------------- kept results
# Raw client protocol (shared/proto/mistore.proto), so that the test chooses
# the write id and retries it exactly as a client whose gateway vanished would.
PUT_CHUNK, PUT_COMMIT, PUT_REPLY, GET_VERSION, VERSION_INFO = 20, 21, 22, 23, 24
READ_ATOMIC = 1


class RawClient:
    """One connection to an agent's client port: [u32 LE length][Envelope]."""

    def __init__(self, addr, timeout=60.0):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.next_id = 1

    def close(self):
        self.sock.close()

    def send(self, body_no, body):
        rid = self.next_id
        self.next_id += 1
        env = f_varint(1, rid) + f_bytes(body_no, body)
        self.sock.sendall(struct.pack("<I", len(env)) + env)
        return rid

    def recv(self):
        n = struct.unpack("<I", self._exact(4))[0]
        env = parse(self._exact(n))
        if 3 in env:
            err = parse(env[3][0])
            return None, (err.get(1, [0])[0], err.get(2, [b""])[0].decode(errors="replace"))
        return env, None

    def call(self, body_no, body):
        self.send(body_no, body)
        return self.recv()

    def _exact(self, n):
        buf = b""
        while len(buf) < n:
            part = self.sock.recv(n - len(buf))
            if not part:
                raise ConnectionError("agent closed the connection")
            buf += part
        return buf


def put_commit_body(subscriber, name_key, chunk_ids, write_id, size):
    b = f_bytes(1, subscriber.encode()) + f_bytes(2, name_key) + f_bytes(3, b"sealed-name")
    b += f_varint(4, size) + f_bytes(5, b"sealed-manifest-" + write_id)
    for cid in chunk_ids:
        b += f_bytes(6, cid)
    return b + f_bytes(8, write_id)


@unittest.skip("its raw client speaks plain framing to the agent's client port, which since "
               "session 5 accepts only the Noise device link (issue 4); needs a device-link "
               "client in Python. The logic stays covered by held_results_test and "
               "sync_client_test (commit retries answered from kept results)")
class KeptResultsForAGatewayThatWentAway(LabTestCase):
    """Paper section VII: results of requests pending for a gateway that went
    away are kept at its POP and delivered when it returns.

    A commit relayed by gw1001 is held up at the backup POP (SIGSTOP), the
    agent is killed with SIGKILL, the backup continues and the commit
    completes with nobody to answer. Meanwhile another device commits the
    same object through gw1002 (version 2). pop1 is SIGKILLed and restarted
    while the agent is still away (the kept result is in its store). The
    agent restarts, its POP delivers the kept result, and the client's retry of the same write id is
    answered by the agent with the original (oid, version 1); no third
    version exists."""

    LAB_OPTIONS = {"pops": 2, "gateways_per_pop": 3, "k": 2, "m": 1}
    INIT_CLIENT = False

    def upload(self, client, n_chunks, chunk_bytes):
        ids = []
        for _ in range(n_chunks):
            cid = os.urandom(32)
            env, err = client.call(PUT_CHUNK, f_bytes(1, b"alice") + f_bytes(2, cid)
                                   + f_bytes(3, os.urandom(chunk_bytes)))
            self.assertIsNone(err, f"PutChunk refused: {err}")
            ids.append(cid)
        return ids

    def reply_version(self, env):
        self.assertIn(PUT_REPLY, env, f"not a PutReply: {sorted(env)}")
        r = parse(env[PUT_REPLY][0])
        return r[1][0], r.get(2, [0])[0]

    def latest(self, client, name_key, version=0):
        body = f_bytes(1, b"alice") + f_bytes(2, name_key) + f_varint(5, READ_ATOMIC)
        if version:
            body += f_varint(4, version)
        return client.call(GET_VERSION, body)

    def test_commit_finished_while_the_agent_was_away_is_delivered_and_answers_the_retry(self):
        lab = self.lab
        gw1, gw2 = lab.node("gw1001"), lab.node("gw1002")
        name_key = os.urandom(32)
        write_1, write_2 = b"W1-" + os.urandom(13), b"W2-" + os.urandom(13)
        c1 = RawClient(gw1["addr"])
        ids_1 = self.upload(c1, 4, 256 << 10)
        # New object: primary pop1 (the entry POP), backup pop2 (the only other).
        pop1_log = lab.log_offset("pop1")
        gw1_log = lab.log_offset("gw1001")
        lab.kill("pop2", "STOP")
        try:
            c1.send(PUT_COMMIT, put_commit_body("alice", name_key, ids_1, write_1, 1 << 20))
            # The agent relays at once; the POP claims the name at the DC,
            # then waits for pop2 (catch-up and chunk pushes): stuck there.
            deadline = time.monotonic() + 20
            while not labutil.metric_value(labutil.parse_metrics(labutil.lab_metrics(lab, "pop1")),
                                           "mistore_calls_total", type="claim_name", result="ok"):
                self.assertLess(time.monotonic(), deadline, "pop1 never claimed the name")
                time.sleep(0.05)
            lab.kill("gw1001", "KILL")
            c1.close()
        finally:
            lab.kill("pop2", "CONT")
        self.assertTrue(lab.wait_log("pop1", pop1_log,
                                     "commit finished after its gateway went away; result kept",
                                     timeout=60),
                        "the commit did not finish after the agent died")
        # Another device writes version 2 of the same object meanwhile.
        c2 = RawClient(gw2["addr"])
        ids_2 = self.upload(c2, 1, 64 << 10)
        env, err = c2.call(PUT_COMMIT, put_commit_body("alice", name_key, ids_2, write_2, 65536))
        self.assertIsNone(err, f"second writer failed: {err}")
        oid_2, v2 = self.reply_version(env)
        self.assertEqual(v2, 2)
        c2.close()
        # pop1 loses power while the agent is still away: the kept result
        # is in its store and loaded again at start.
        lab.kill("pop1", "KILL")
        pop1_log = lab.log_offset("pop1")
        lab.start("pop1")
        self.assertTrue(lab.wait_log("pop1", pop1_log, "kept commit results loaded", timeout=60),
                        "pop1 did not load its kept results after the restart")
        self.assertIn("undelivered=1", lab.log_since("pop1", pop1_log))
        # The agent comes back: its POP delivers the kept result.
        lab.start("gw1001")
        self.assertTrue(lab.wait_log("gw1001", gw1_log,
                                     "POP delivered results kept while this gateway was away",
                                     timeout=30), "kept result not delivered to the agent")
        c1 = RawClient(gw1["addr"])
        env, err = c1.call(PUT_COMMIT, put_commit_body("alice", name_key, ids_1, write_1, 1 << 20))
        self.assertIsNone(err, f"retry failed: {err}")
        oid_1, v1 = self.reply_version(env)
        self.assertEqual(v1, 1, "the retry did not get the original version")
        self.assertEqual(oid_1, oid_2)
        answered = labutil.metric_value(labutil.parse_metrics(labutil.lab_metrics(lab, "gw1001")),
                                        "mistore_agent_results_answered_total")
        self.assertEqual(answered, 1, "the retry was not answered by the agent from the kept result")
        # No duplicate: the latest is 2, and there is no version 3.
        c2 = RawClient(gw2["addr"])
        deadline = time.monotonic() + 30
        while True:  # gw1002 registers with the restarted pop1 again
            env, err = self.latest(c2, name_key)
            if err is None or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.assertIsNone(err, f"GetVersion failed: {err}")
        self.assertEqual(parse(env[VERSION_INFO][0]).get(2, [0])[0], 2)
        env, err = self.latest(c2, name_key, version=3)
        self.assertIsNotNone(err, "a third version exists: the retry ran the write again")
        c1.close()
        c2.close()
        print("\n[durability] commit finished while its agent was dead: kept at pop1 (which was "
              "SIGKILLed and restarted meanwhile), delivered on restart, retry answered with version 1 (version 2 by another device; no v3)")

if __name__ == "__main__":
    unittest.main()
