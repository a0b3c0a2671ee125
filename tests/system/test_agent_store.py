"""Gateway agent fragment store under power cuts, rot and a full disk (issue 6).

FakePopAgentTest runs a real mistore-agent against a fake POP written here
(raw frames, protobuf encoded by hand) so that the test knows exactly which
StoreFragment calls the agent acknowledged:
  - power cut: kill -9 the agent in the middle of a store burst, restart it:
    it starts, its inventory lists every acknowledged fragment (and nothing
    it was never sent), it serves each byte-identical, and the rest is
    missing (not listed, not served);
  - scrub: bits flipped in fragment files are found by the scrubber and
    reported with FragmentsBad, never served; heartbeats carry the
    inventory digest (checked against an independent Python computation),
    failure domains and scrub passes; DeleteFragments removes files;
  - a POP that refuses the issue-6 messages does not disturb the agent.
FullGatewayDiskTest runs a lab where two gateways have a tiny store: stores
go elsewhere and every object reads back from fragments (POP caches off).
"""

import hashlib
import os
import queue
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest

import labutil
from labutil import LabTestCase, write_random_file

MIB = 1 << 20
CODE_PROTOCOL = 6  # mistore::Code::kProtocol

# Envelope body field numbers (shared/proto/mistore.proto).
HELLO, HELLO_REPLY, EMPTY = 10, 11, 45
STORE_FRAGMENT, FETCH_FRAGMENT, FRAGMENT_DATA = 60, 61, 62
HEARTBEAT, INVENTORY, FRAGMENTS_BAD, DELETE_FRAGMENTS, GET_INVENTORY = 140, 141, 142, 143, 144


# ---------------------------------------------------------------- protobuf

def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f_varint(no, v):
    return _varint(no << 3) + _varint(v)


def f_bytes(no, b):
    return _varint((no << 3) | 2) + _varint(len(b)) + b


def parse(buf):
    """{field number: [values]}; varints as int, length-delimited as bytes."""
    out, i = {}, 0
    while i < len(buf):
        key, i = _read_varint(buf, i)
        no, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _read_varint(buf, i)
        elif wt == 2:
            n, i = _read_varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wt}")
        out.setdefault(no, []).append(v)
    return out


def _read_varint(buf, i):
    shift = v = 0
    while True:
        b = buf[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, i


def envelope(request_id, body_no, body, is_response=False, error=None):
    e = f_varint(1, request_id)
    if is_response:
        e += f_varint(2, 1)
    if error is not None:
        e += f_bytes(3, f_varint(1, error[0]) + f_bytes(2, error[1].encode()))
    elif body_no is not None:
        e += f_bytes(body_no, body)
    return e


def body_of(env):
    for no in (HELLO, STORE_FRAGMENT, FETCH_FRAGMENT, FRAGMENT_DATA, EMPTY, HEARTBEAT,
               INVENTORY, FRAGMENTS_BAD, DELETE_FRAGMENTS, GET_INVENTORY, HELLO_REPLY):
        if no in env:
            return no, env[no][0]
    return None, None


def refs(body, no=1):
    """FragmentRef names from a repeated field."""
    out = []
    for r in parse(body).get(no, []):
        f = parse(r)
        out.append(f[1][0].hex() + "." + str(f.get(2, [0])[0]))
    return out


def ref(name):
    cid, idx = name.split(".")
    return f_bytes(1, bytes.fromhex(cid)) + (f_varint(2, int(idx)) if int(idx) else b"")


# ---------------------------------------------------------------- fragments

def make_fragment(chunk_id, index, payload, k=4, m=2):
    """A fragment blob as shared/erasure/fragment.h lays it out."""
    assert len(payload) % 8 == 0 and len(chunk_id) == 32
    chunk_len = k * len(payload)
    h = bytearray(b"MSFR")
    h += struct.pack("<HH", 1, 100) + chunk_id + bytes([index, k, m, 0]) + bytes(4)
    h += struct.pack("<QQ", chunk_len, len(payload))
    h += hashlib.blake2b(payload, digest_size=32).digest()
    h += hashlib.blake2b(bytes(h), digest_size=32).digest()[:4]
    assert len(h) == 100
    return bytes(h) + payload


def inventory_digest(names):
    """The digest as fragment_store.h defines it (independent implementation)."""
    data = "".join(n + "\n" for n in sorted(set(names))).encode()
    return hashlib.blake2b(data, digest_size=32).digest()


def random_fragments(n, payload_bytes):
    out = {}
    for _ in range(n):
        cid = os.urandom(32)
        idx = int.from_bytes(os.urandom(1), "little") % 6
        out[cid.hex() + "." + str(idx)] = make_fragment(cid, idx, os.urandom(payload_bytes))
    return out


# ---------------------------------------------------------------- fake POP

class FakePop:
    """Accepts agent connections one at a time; answers Hello and the
    agent's issue-6 calls; lets the test call the agent."""

    def __init__(self, refuse_durability=False):
        self.refuse = refuse_durability
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.events = queue.Queue()  # (kind, body) from the agent, kind = field no
        self.conn = None
        self.lock = threading.Lock()
        self.send_lock = threading.Lock()
        self.pending = {}
        self.next_id = 1
        self.closed = threading.Event()
        self.registered = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.conn = c
                self.pending = {}
            self.closed.clear()
            self.registered.clear()
            self._read(c)
            c.close()
            self.closed.set()

    def _read(self, c):
        buf = b""
        while True:
            try:
                data = c.recv(1 << 20)
            except OSError:
                data = b""
            if not data:
                with self.lock:
                    for q in self.pending.values():
                        q.put(None)
                    self.pending = {}
                return
            buf += data
            while len(buf) >= 4:
                n = struct.unpack("<I", buf[:4])[0]
                if len(buf) < 4 + n:
                    break
                env, buf = parse(buf[4:4 + n]), buf[4 + n:]
                self._on_envelope(c, env)

    def _send(self, c, payload):
        # Replies (reader thread) and calls (test thread) share the socket:
        # one frame at a time.
        with self.send_lock:
            try:
                c.sendall(struct.pack("<I", len(payload)) + payload)
            except OSError:
                pass

    def _on_envelope(self, c, env):
        rid = env.get(1, [0])[0]
        if env.get(2, [0])[0]:  # a response to our call
            with self.lock:
                q = self.pending.pop(rid, None)
            if q:
                q.put(env)
            return
        no, body = body_of(env)
        if no == HELLO:
            self._send(c, envelope(rid, HELLO_REPLY, b"", is_response=True))
            self.registered.set()
            return
        self.events.put((no, body))
        if self.refuse and no in (HEARTBEAT, INVENTORY, FRAGMENTS_BAD):
            self._send(c, envelope(rid, None, None, is_response=True,
                                   error=(CODE_PROTOCOL, f"POP does not serve message type {no}")))
        else:
            self._send(c, envelope(rid, EMPTY, b"", is_response=True))

    def call_async(self, body_no, body):
        """Sends a request; returns a queue that receives the reply (None if
        the connection closed first)."""
        q = queue.Queue(1)
        with self.lock:
            rid = self.next_id
            self.next_id += 1
            self.pending[rid] = q
            c = self.conn
        self._send(c, envelope(rid, body_no, body))
        return q

    def call(self, body_no, body, timeout=10):
        env = self.call_async(body_no, body).get(timeout=timeout)
        if env is None:
            raise AssertionError("agent connection closed during the call")
        return env

    def wait_event(self, kind, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                no, body = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if no == kind:
                return body
        raise AssertionError(f"no message {kind} from the agent within {timeout} s")

    def drain(self):
        out = []
        while True:
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                return out

    def close(self):
        self.sock.close()
        with self.lock:
            if self.conn:
                try:
                    self.conn.close()
                except OSError:
                    pass


def error_of(env):
    if 3 not in env:
        return None
    e = parse(env[3][0])
    return e.get(1, [0])[0], e.get(2, [b""])[0].decode(errors="replace")


# ---------------------------------------------------------------- tests

class FakePopAgentTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="mistore-agentstore-")
        self.proc = None
        self.pop = None
        self.log = os.path.join(self.dir, "agent.log")

    def tearDown(self):
        self.stop_agent(signal.SIGKILL)
        if self.pop:
            self.pop.close()
        failed = any(t is self for t, _ in getattr(self._outcome.result, "failures", []) +
                     getattr(self._outcome.result, "errors", []))
        if failed and os.path.exists(self.log):
            with open(self.log, errors="replace") as f:
                print("\n=== agent log tail ===\n" + "".join(f.readlines()[-30:]))
        shutil.rmtree(self.dir, ignore_errors=True)

    def agent_bin(self):
        bin_dir = os.environ.get("MISTORE_BIN_DIR")
        return labutil.labtool.binary_path(bin_dir, "gateway")

    def start_agent(self, *extra):
        off = os.path.getsize(self.log) if os.path.exists(self.log) else 0
        argv = [self.agent_bin(), "--gateway-id=7", "--subscriber=alice",
                f"--pop={self.pop.addr}", "--client-listen=127.0.0.1:0",
                "--metrics-listen=off", f"--data-dir={os.path.join(self.dir, 'agent')}",
                "--heartbeat-ms=200", "--log-level=debug",
                "--failure-domains=cabinet=c12,power=p3",
                # The stand-in POP here is Python speaking plain framing; node
                # links are secure by default (issue 4).
                "--secure=false"] + list(extra)
        with open(self.log, "ab") as logf:
            self.proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with open(self.log, errors="replace") as f:
                f.seek(off)
                if 'msg="ready"' in f.read():
                    break
            self.assertIsNone(self.proc.poll(), "agent exited at start")
            time.sleep(0.05)
        else:
            self.fail("agent not ready within 20 s")
        self.assertTrue(self.pop.registered.wait(10), "agent did not say Hello")
        return off

    def stop_agent(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)
        self.proc = None

    def fragment_path(self, name):
        return os.path.join(self.dir, "agent", "fragments", name[:2], name)

    def store(self, blob):
        env = self.pop.call(STORE_FRAGMENT, f_bytes(1, blob))
        self.assertIsNone(error_of(env), "StoreFragment refused")

    def fetch(self, name):
        cid, idx = name.split(".")
        env = self.pop.call(FETCH_FRAGMENT, f_bytes(1, bytes.fromhex(cid)) +
                            (f_varint(2, int(idx)) if int(idx) else b""))
        if error_of(env):
            return None, error_of(env)
        return parse(env[FRAGMENT_DATA][0]).get(1, [b""])[0], None

    def test_power_cut_mid_burst(self):
        self.pop = FakePop()
        self.start_agent()
        first = self.pop.wait_event(INVENTORY)
        self.assertEqual(refs(first), [])
        frags = random_fragments(3000, 8192)
        names = list(frags)
        acked, sent = set(), []
        in_flight = []
        # A burst with up to 64 stores in flight; SIGKILL once 300 are acked.
        i = 0
        killed = False
        while not killed:
            while i < len(names) and len(in_flight) < 64:
                in_flight.append((names[i], self.pop.call_async(STORE_FRAGMENT,
                                                                f_bytes(1, frags[names[i]]))))
                sent.append(names[i])
                i += 1
            name, q = in_flight.pop(0)
            env = q.get(timeout=30)
            self.assertIsNotNone(env, "connection closed before the kill")
            self.assertIsNone(error_of(env), f"store of {name} refused: {error_of(env)}")
            acked.add(name)
            if len(acked) >= 300:
                os.kill(self.proc.pid, signal.SIGKILL)
                killed = True
        # Replies that raced the kill still count as acknowledged.
        for name, q in in_flight:
            env = q.get(timeout=10)
            if env is not None and error_of(env) is None:
                acked.add(name)
        self.proc.wait(10)
        self.assertTrue(self.pop.closed.wait(10))
        unacked = set(sent) - acked
        self.assertGreater(len(unacked), 0, "the kill did not land mid-burst")

        self.pop.drain()
        self.start_agent()  # restart on the same data dir
        inv = self.pop.wait_event(INVENTORY)
        listed = set(refs(inv, 1))
        bad = set(refs(inv, 2))
        self.assertEqual(acked - listed, set(), "acknowledged fragments missing after restart")
        self.assertEqual(listed - set(sent), set(), "inventory lists fragments never sent")
        self.assertEqual(bad & acked, set(), "acknowledged fragments reported bad")
        self.assertEqual(parse(inv).get(3, [b""])[0], inventory_digest(listed))
        # Every acknowledged fragment is served byte-identical.
        for name in sorted(acked):
            blob, err = self.fetch(name)
            self.assertIsNone(err, f"{name}: {err}")
            self.assertEqual(blob, frags[name], name)
        # What the inventory does not list is missing: not served.
        for name in sorted(set(sent) - listed)[:50]:
            blob, err = self.fetch(name)
            self.assertIsNotNone(err, f"{name} not in the inventory but served")
        # No temporary files left behind.
        leftovers = [f for _, _, fs in os.walk(os.path.join(self.dir, "agent")) for f in fs
                     if f.endswith(".tmp")]
        self.assertEqual(leftovers, [])
        print(f"\n[power cut: {len(sent)} sent, {len(acked)} acked, "
              f"{len(listed)} held after restart, {len(listed - acked)} unacked but complete]")

    def test_scrub_reports_rot_heartbeat_digest_and_deletes(self):
        self.pop = FakePop()
        self.start_agent("--scrub-period-s=2", "--background-io-bytes-per-s=50000000")
        self.pop.wait_event(INVENTORY)
        frags = random_fragments(60, 4096)
        for blob in frags.values():
            self.store(blob)
        names = sorted(frags)
        rotten = set(names[3::12])  # 5 fragments
        for name in rotten:
            path = self.fragment_path(name)
            with open(path, "r+b") as f:
                f.seek(100 + 1000)
                b = f.read(1)
                f.seek(100 + 1000)
                f.write(bytes([b[0] ^ 0x04]))
        reported = set()
        deadline = time.monotonic() + 20
        while reported != rotten and time.monotonic() < deadline:
            try:
                body = self.pop.wait_event(FRAGMENTS_BAD, timeout=deadline - time.monotonic())
            except AssertionError:
                break
            reported |= set(refs(body))
        self.assertEqual(reported, rotten, "scrub did not report exactly the rotten fragments")
        for name in rotten:
            blob, err = self.fetch(name)
            self.assertIsNotNone(err, f"rotten {name} served")
            self.assertFalse(os.path.exists(self.fragment_path(name)))
        good = set(names) - rotten
        blob, err = self.fetch(min(good))
        self.assertEqual(blob, frags[min(good)])
        # Heartbeats: digest, count, domains, scrub passes.
        self.pop.drain()
        hb = parse(self.pop.wait_event(HEARTBEAT, timeout=5))
        self.assertEqual(hb[4][0], inventory_digest(good))
        self.assertEqual(hb[5][0], len(good))
        self.assertEqual([d.decode() for d in hb[6]], ["cabinet=c12", "power=p3"])
        self.assertGreaterEqual(hb.get(7, [0])[0], 1)
        self.assertGreater(hb[2][0], 0)
        # DeleteFragments removes files; GetInventory agrees.
        victims = sorted(good)[:10]
        env = self.pop.call(DELETE_FRAGMENTS, b"".join(f_bytes(1, ref(n)) for n in victims))
        self.assertIsNone(error_of(env))
        for n in victims:
            self.assertFalse(os.path.exists(self.fragment_path(n)), n)
        env = self.pop.call(GET_INVENTORY, b"")
        inv = env[INVENTORY][0]
        self.assertEqual(set(refs(inv)), good - set(victims))
        self.assertEqual(parse(inv)[3][0], inventory_digest(good - set(victims)))

    def test_full_store_refuses_with_a_clear_error(self):
        self.pop = FakePop()
        self.start_agent("--store-bytes-max=20000")
        self.pop.wait_event(INVENTORY)
        frags = random_fragments(4, 8192)  # 8292 bytes each: two fit
        replies = [self.pop.call(STORE_FRAGMENT, f_bytes(1, b)) for b in frags.values()]
        self.assertEqual([error_of(r) for r in replies[:2]], [None, None])
        for r in replies[2:]:
            code, msg = error_of(r)
            self.assertEqual(code, 5, msg)  # kResourceExhausted
            self.assertIn("fragment store full", msg)
        self.pop.drain()
        hb = parse(self.pop.wait_event(HEARTBEAT, timeout=5))
        self.assertEqual(hb[1][0], 20000)
        self.assertEqual(hb[2][0], 20000 - 2 * 8292)
        self.assertEqual(hb[5][0], 2)

    def test_pop_without_durability_handlers(self):
        self.pop = FakePop(refuse_durability=True)
        off = self.start_agent()
        self.pop.wait_event(INVENTORY)
        t0 = time.monotonic()
        beats = 0
        while time.monotonic() - t0 < 2.0:
            self.pop.wait_event(HEARTBEAT, timeout=2)
            beats += 1
        self.assertGreaterEqual(beats, 5, "heartbeats stopped after refusals")
        self.assertFalse(self.pop.closed.is_set(), "agent dropped the connection")
        frags = random_fragments(3, 1024)
        for blob in frags.values():
            self.store(blob)
        for name, blob in frags.items():
            self.assertEqual(self.fetch(name)[0], blob)
        with open(self.log, errors="replace") as f:
            f.seek(off)
            text = f.read()
        self.assertEqual(text.count("POP refused a durability message"), 2,
                         "expected one debug line per refused message type")
        self.assertIsNone(self.proc.poll())


TINY_STORE = 300_000  # about one fragment of a 1 MiB chunk with k=4


class FullGatewayDiskTest(LabTestCase):
    LAB_OPTIONS = {"pops": 2, "gateways_per_pop": 8, "k": 4, "m": 2, "pop_cache_bytes": 0}
    FULL = ["gw1002", "gw2002"]

    def shrink(self, node_id):
        """Restarts node_id with --store-bytes-max=TINY_STORE."""
        self.lab.kill(node_id, "TERM")
        state = labutil.labtool.load_state(self.lab.dir)
        node = labutil.labtool.find_node(state, node_id)
        node["argv"] = [a for a in node["argv"] if not a.startswith("--store-bytes-max=")]
        node["argv"].append(f"--store-bytes-max={TINY_STORE}")
        labutil.labtool.save_state(self.lab.dir, state)
        self.lab.start(node_id)

    def test_full_gateway_stores_go_elsewhere(self):
        offs = {}
        for n in self.FULL:
            self.shrink(n)
            offs[n] = self.lab.log_offset(n)
        objects = []
        for i in range(4):
            name = f"full-{i}"
            src = write_random_file(self.scratch(name), 3 * MIB + 4096 * i + 1)
            self.lab.put(src, name)
            objects.append((name, src))
        for name, _ in objects:
            self.lab.wait_placed(name, timeout=180)
        refused = 0
        for n in self.FULL:
            text = self.lab.log_since(n, offs[n])
            refused += len(re.findall(r'msg="fragment refused".*fragment store full', text))
            frag_dir = os.path.join(self.lab.node(n)["data_dir"], "fragments")
            used = sum(os.path.getsize(os.path.join(d, f))
                       for d, _, fs in os.walk(frag_dir) for f in fs)
            self.assertLessEqual(used, TINY_STORE, f"{n} holds more than its share")
        # Either the POP kept away from the full gateways (it knows their free
        # space from Hello and heartbeats) or they refused with "store full"
        # and the POP placed elsewhere; both end with everything placed.
        print(f"\n[full gateways refused {refused} stores]")
        for name, src in objects:
            out = self.scratch(name + ".out")
            self.lab.get(name, out)
            self.assertFilesEqual(src, out, f"{name} after stores refused by full gateways")
        self.assertEqual(self.lab.dead_nodes(), [])


if __name__ == "__main__":
    unittest.main()
