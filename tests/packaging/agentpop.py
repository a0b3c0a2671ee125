"""A stand-in POP for driving one mistore-agent in tests (Python 3 stdlib only).

The agent dials its POP (--pop=ADDR), says Hello, and then serves the POP's
StoreFragment / FetchFragment calls. FakePop listens on loopback, accepts the
agent, answers its Hello and sends it fragments. Frames are
[u32 little-endian length][protobuf Envelope] (shared/wire/frame.h,
shared/proto/mistore.proto); Python has no protobuf module here, so the few
fields needed are encoded and decoded by hand below. Fragments follow
shared/erasure/fragment.h (100-byte little-endian header, BLAKE2b-256
hashes, which hashlib.blake2b(digest_size=32) computes exactly as libsodium's
crypto_generichash does).
"""

import hashlib
import os
import socket
import struct
import subprocess
import time

# ---- protobuf wire format (just what the tests need) ---------------------


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_varint(num, value):
    return varint(num << 3) + varint(value)


def field_bytes(num, data):
    return varint((num << 3) | 2) + varint(len(data)) + data


def parse_fields(buf):
    """Top-level fields of one message: {number: [value, ...]} (varint -> int,
    length-delimited -> bytes). Fixed32/64 are skipped."""
    fields = {}
    i = 0
    while i < len(buf):
        key, i = _read_varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _read_varint(buf, i)
        elif wt == 2:
            n, i = _read_varint(buf, i)
            v, i = bytes(buf[i:i + n]), i + n
        elif wt == 1:
            v, i = None, i + 8
        elif wt == 5:
            v, i = None, i + 4
        else:
            raise ValueError("unsupported wire type %d" % wt)
        fields.setdefault(num, []).append(v)
    return fields


def _read_varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


# Envelope field numbers (shared/proto/mistore.proto).
ENV_REQUEST_ID, ENV_IS_RESPONSE, ENV_ERROR = 1, 2, 3
ENV_HELLO, ENV_HELLO_REPLY, ENV_EMPTY = 10, 11, 45
ENV_STORE_FRAGMENT, ENV_FETCH_FRAGMENT, ENV_FRAGMENT_DATA = 60, 61, 62
ROLE_GATEWAY = 2


def envelope(request_id, is_response, body_field, body=b""):
    out = field_varint(ENV_REQUEST_ID, request_id)
    if is_response:
        out += field_varint(ENV_IS_RESPONSE, 1)
    return out + field_bytes(body_field, body)


def frame(payload):
    return struct.pack("<I", len(payload)) + payload


# ---- fragments (shared/erasure/fragment.h) --------------------------------


def fragment_size(chunk_len, k):
    per = -(-chunk_len // k)
    per = (per + 7) & ~7
    return per or 8


def encode_fragment(chunk_id, index, k, m, chunk_len, payload):
    assert len(chunk_id) == 32 and len(payload) == fragment_size(chunk_len, k)
    h = bytearray(100)
    h[0:4] = b"MSFR"
    struct.pack_into("<HH", h, 4, 1, 100)
    h[8:40] = chunk_id
    h[40], h[41], h[42] = index, k, m
    struct.pack_into("<QQ", h, 48, chunk_len, len(payload))
    h[64:96] = hashlib.blake2b(payload, digest_size=32).digest()
    h[96:100] = hashlib.blake2b(bytes(h[:96]), digest_size=32).digest()[:4]
    return bytes(h) + payload


# ---- the stand-in POP ----------------------------------------------------


class FakePop:
    def __init__(self, port=0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(4)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.conn = None
        self.hello = None
        self.next_id = 1
        self.agent_requests = []  # requests the agent made (inventory, heartbeats)

    def close(self):
        if self.conn:
            self.conn.close()
        self.sock.close()

    def _recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            got = self.conn.recv(n - len(buf))
            if not got:
                raise EOFError("agent closed the connection")
            buf += got
        return bytes(buf)

    def read_envelope(self):
        (n,) = struct.unpack("<I", self._recv_exact(4))
        return parse_fields(self._recv_exact(n))

    def read_reply(self):
        """Next response from the agent. Requests the agent makes meanwhile
        (its inventory on registration, heartbeats, bad-fragment reports:
        Envelope fields 140-142) are answered with Empty, as a POP does, and
        kept in self.agent_requests."""
        while True:
            env = self.read_envelope()
            if env.get(ENV_IS_RESPONSE, [0])[0]:
                return env
            rid = env.get(ENV_REQUEST_ID, [0])[0]
            self.agent_requests.append(env)
            self.conn.sendall(frame(envelope(rid, True, ENV_EMPTY)))

    def accept_agent(self, timeout=60.0):
        """Waits for the agent, answers its Hello; returns the Hello fields.
        Connections closed before a Hello (an agent's probe of a preferred
        POP) are skipped."""
        deadline = time.monotonic() + timeout
        while True:
            self.sock.settimeout(max(0.1, deadline - time.monotonic()))
            if self.conn:
                self.conn.close()
            self.conn, _ = self.sock.accept()
            self.conn.settimeout(timeout)
            try:
                env = self.read_envelope()
                break
            except (EOFError, ConnectionResetError):
                if time.monotonic() > deadline:
                    raise
        if ENV_HELLO not in env:
            raise AssertionError("first frame is not a Hello: %r" % env)
        self.hello = parse_fields(env[ENV_HELLO][0])
        rid = env.get(ENV_REQUEST_ID, [0])[0]
        reply = field_varint(1, 9000)  # HelloReply.node_id
        self.conn.sendall(frame(envelope(rid, True, ENV_HELLO_REPLY, reply)))
        return self.hello

    def store_fragments(self, blobs):
        """Sends every StoreFragment before reading any reply (all in flight at
        once); returns the number of errors in the replies."""
        ids = set()
        out = bytearray()
        for b in blobs:
            rid = self.next_id
            self.next_id += 1
            ids.add(rid)
            out += frame(envelope(rid, False, ENV_STORE_FRAGMENT, field_bytes(1, b)))
        self.conn.sendall(out)
        errors = 0
        while ids:
            env = self.read_reply()
            rid = env.get(ENV_REQUEST_ID, [0])[0]
            if rid not in ids:
                raise AssertionError("unexpected frame %r" % env)
            ids.discard(rid)
            if ENV_ERROR in env:
                errors += 1
        return errors

    def fetch_fragment(self, chunk_id, index):
        rid = self.next_id
        self.next_id += 1
        body = field_bytes(1, chunk_id) + field_varint(2, index)
        self.conn.sendall(frame(envelope(rid, False, ENV_FETCH_FRAGMENT, body)))
        env = self.read_reply()
        if ENV_ERROR in env:
            return None
        return parse_fields(env[ENV_FRAGMENT_DATA][0])[1][0]


def make_fragments(count, fragment_bytes, k=4, m=2, seed=b"mistore"):
    """`count` valid fragments of distinct chunks, payloads of fragment_bytes."""
    chunk_len = fragment_bytes * k
    assert fragment_size(chunk_len, k) == fragment_bytes
    blobs = []
    for i in range(count):
        chunk_id = hashlib.blake2b(seed + struct.pack("<I", i), digest_size=32).digest()
        payload = (hashlib.blake2b(chunk_id, digest_size=64).digest() *
                   (fragment_bytes // 64 + 1))[:fragment_bytes]
        blobs.append((chunk_id, encode_fragment(chunk_id, i % (k + m), k, m, chunk_len, payload)))
    return blobs


# ---- the agent process -----------------------------------------------------


def start_agent(binary, pop_addr, data_dir, emulator=(), gateway_id=1003,
                subscriber="alice", extra=()):
    cmd = list(emulator) + [
        binary,
        "--gateway-id=%d" % gateway_id,
        "--subscriber=" + subscriber,
        "--pop=" + pop_addr,
        "--client-listen=127.0.0.1:0",
        "--data-dir=" + data_dir,
        "--log-level=warn",
        # FakePop speaks plain framing, not the secure transport (on by
        # default since issue 4): the one place the opt-out is needed.
        "--secure=false",
    ] + list(extra)
    os.makedirs(data_dir, exist_ok=True)
    with open(os.path.join(data_dir, "agent.log"), "wb") as log:
        return subprocess.Popen(cmd, stdout=log, stderr=log)


def closed_addr():
    """A loopback HOST:PORT nobody listens on (bound once, then released)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    addr = "127.0.0.1:%d" % s.getsockname()[1]
    s.close()
    return addr


def rss_kib(pid, field="VmRSS"):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def stop(proc, timeout=10):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
