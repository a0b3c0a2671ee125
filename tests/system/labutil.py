"""Shared helpers for the Mistore system tests.

Each test class starts its own lab (tools/mistore-lab up --detach) in a fresh
temporary directory, drives the real `mistore` client against it and always
tears it down. On a failure the tail of every node's log is printed.

Environment:
  MISTORE_BIN_DIR   where mistore-dc, mistore-pop, mistore-agent, mistore live
                    (else the lab tool's default search: build/release/bin,
                    build/debug/bin, PATH)
  MISTORE_KEEP_LAB  set to 1 to keep the lab's temp dir after the tests
"""

import atexit
import base64
import hashlib
import importlib.machinery
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
LAB_TOOL = os.path.join(REPO, "tools", "mistore-lab")

PASSPHRASE = "correct horse battery staple (system tests)"

PUT_RE = re.compile(r"stored (\S+) as ([0-9a-fA-F]{32}) version (\d+)")
FRAGMENT_RE = re.compile(
    r"chunk=([0-9a-fA-F]+)\s+index=(\d+)\s+gateway=(\d+)\s+pop=(\d+)")
PLACED_RE = re.compile(r"placed:\s*(\d+)\s*/\s*(\d+)\s*chunks")


def _load_lab_module():
    loader = importlib.machinery.SourceFileLoader("mistore_lab", LAB_TOOL)
    spec = importlib.util.spec_from_loader("mistore_lab", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


labtool = _load_lab_module()


def decode_oid(oid_hex):
    """(primary_pop, backup_pop, gateway, counter) from 32 hex digits."""
    raw = bytes.fromhex(oid_hex)
    if len(raw) != 16:
        raise ValueError(f"oid {oid_hex!r} is not 16 bytes")
    return struct.unpack("<4I", raw)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_random_file(path, size):
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(left, 4 << 20)
            f.write(os.urandom(n))
            left -= n
    return path


def node_identity_flags(bin_dir, dc_dir, role, node_id, region, prefix, subscriber="-"):
    """For a daemon a test starts outside a lab: has the DC in dc_dir (its
    CA key is created on first use) issue a key and certificate at PREFIX
    (.key/.cert) and returns the flags that make the daemon use them; node
    links are secure by default (issue 4)."""
    if not os.path.exists(prefix + ".cert"):
        labtool.issue_cert(bin_dir, dc_dir, role, node_id, region, prefix, subscriber)
    return [f"--node-key-file={prefix}.key", f"--node-cert-file={prefix}.cert",
            f"--ca-public-key-file={os.path.join(dc_dir, 'ca.pub')}"]


def closed_port():
    """A loopback port nobody listens on (bound once, then released)."""
    return labtool.pick_free_ports(1)[0]


def frame(payload):
    """A wire frame: u32 little-endian payload length + payload."""
    return struct.pack("<I", len(payload)) + payload


def send_raw(addr, data, timeout=10.0):
    """Connects to host:port, sends data and waits for the peer to close.
    Returns 'closed' (EOF), 'reset' (RST) or 'open' (still open after timeout)."""
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=5)
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return "reset"
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return "open"
            s.settimeout(left)
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                return "open"
            except ConnectionResetError:
                return "reset"
            if not chunk:
                return "closed"
    finally:
        s.close()


_WATCHDOG = r"""
import os, shutil, subprocess, sys, time
parent, tool, lab_dir, keep = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4] == "1"
def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read()
        return st[st.rfind(")") + 2:].split()[0] not in ("Z", "X")
    except OSError:
        return False
while alive(parent) and os.path.isdir(lab_dir):
    time.sleep(1)
if os.path.exists(os.path.join(lab_dir, "lab.json")):
    subprocess.run([sys.executable, tool, "down", "-q", "--dir", lab_dir],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
if not keep:
    shutil.rmtree(lab_dir, ignore_errors=True)
"""


class Lab:
    """One lab: a DC, POPs and gateway agents started by tools/mistore-lab."""

    def __init__(self, pops=3, gateways_per_pop=6, k=4, m=2, pop_cache_bytes=None,
                 subscriber="alice", secure=True, dc_args=None, pop_args=None,
                 agent_args=None):
        self.pops, self.gpp, self.k, self.m = pops, gateways_per_pop, k, m
        self.dc_args = list(dc_args or [])  # extra --NAME=VALUE options of the DC
        self.pop_args = list(pop_args or [])  # ... and of every POP
        # ... and of every agent. By default the agents keep no chunk cache
        # (issue 11's home-gateway cache): these tests look at what the POPs
        # do on reads, which a cache hit at the agent would hide.
        self.agent_args = (["--chunk-cache-bytes-max=0"] if agent_args is None
                           else list(agent_args))
        self.secure = secure  # issue 4: secure node links (False: an --insecure lab)
        self.pop_cache_bytes = pop_cache_bytes
        self.subscriber = subscriber
        self.dir = None
        self.state = None
        self.up_ok = False
        self.work = None  # scratch dir for test files

    # ---- lifecycle
    def lab_cmd(self, *args, timeout=120, check=True):
        cmd = [sys.executable, LAB_TOOL] + list(args) + ["--dir", self.dir]
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(
                f"{' '.join(cmd)} exited {p.returncode}:\n"
                f"{p.stdout.decode(errors='replace')}{p.stderr.decode(errors='replace')}")
        return p

    def up(self):
        self.dir = tempfile.mkdtemp(prefix="mistore-systest-")
        self.work = os.path.join(self.dir, "work")
        os.makedirs(self.work)
        atexit.register(self._atexit)
        self._start_watchdog()
        args = ["up", "--detach", "-q", "--pops", str(self.pops),
                "--gateways-per-pop", str(self.gpp), "--k", str(self.k),
                "--m", str(self.m), "--subscriber", self.subscriber]
        if self.pop_cache_bytes is not None:
            args += ["--pop-cache-bytes", str(self.pop_cache_bytes)]
        if not self.secure:
            args += ["--insecure"]
        args += [f"--dc-arg={a}" for a in self.dc_args]
        args += [f"--pop-arg={a}" for a in self.pop_args]
        args += [f"--agent-arg={a}" for a in self.agent_args]
        self.lab_cmd(*args, timeout=180)
        self.up_ok = True
        self.reload()
        self.client_conf = self.state["client_conf"]

    def down(self):
        if self.dir and os.path.exists(os.path.join(self.dir, "lab.json")):
            self.lab_cmd("down", "-q", check=False)

    def teardown(self):
        self.down()
        if self.dir and not os.environ.get("MISTORE_KEEP_LAB"):
            shutil.rmtree(self.dir, ignore_errors=True)
        elif self.dir:
            print(f"\n[lab kept in {self.dir}]", file=sys.stderr)
        self.dir = None

    def _start_watchdog(self):
        """A detached process that takes the lab down (and removes its dir)
        if this test process dies without tearing down, e.g. when ctest kills
        it at its TIMEOUT: the daemons run in their own sessions and would
        otherwise outlive it."""
        self._watchdog = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, str(os.getpid()), LAB_TOOL, self.dir,
             "1" if os.environ.get("MISTORE_KEEP_LAB") else "0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, close_fds=True)

    def _atexit(self):
        if self.dir:
            self.teardown()

    def reload(self):
        self.state = labtool.load_state(self.dir)
        return self.state

    # ---- nodes
    def nodes(self, role=None):
        self.reload()
        return [n for n in self.state["nodes"] if role is None or n["role"] == role]

    def node(self, node_id):
        self.reload()
        return labtool.find_node(self.state, node_id)

    def alive(self, node_id):
        return labtool.node_alive(self.node(node_id))

    def dead_nodes(self):
        return [n["id"] for n in self.nodes() if not labtool.node_alive(n)]

    def kill(self, node_id, sig="KILL"):
        self.lab_cmd("kill", node_id, "--signal", sig)

    def start(self, node_id, wait_registered=True):
        args = ["start", node_id, "-q"]
        if wait_registered and node_id.startswith("gw"):
            args.append("--wait-registered")
        self.lab_cmd(*args)

    @staticmethod
    def gateway_node_id(gateway_id):
        return f"gw{gateway_id}"

    # ---- logs
    def log_offset(self, node_id):
        return labtool.log_size(self.node(node_id)["log"])

    def log_since(self, node_id, offset):
        with open(self.node(node_id)["log"], "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def wait_log(self, node_id, offset, needle, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_since(node_id, offset)
            if needle in text or time.monotonic() > deadline:
                return needle in text
            time.sleep(0.1)

    def log_tails(self, lines=15):
        if not self.dir or not os.path.exists(os.path.join(self.dir, "lab.json")):
            return "(no lab)"
        out = []
        for n in self.nodes():
            state = "alive" if labtool.node_alive(n) else "dead"
            out.append(f"--- {n['id']} ({n['role']}, {state}) {n['log']}")
            out.append(labtool.tail(n["log"], lines))
        return "\n".join(out)

    # ---- client
    def client_env(self):
        env = dict(os.environ)
        env["MISTORE_PASSPHRASE"] = PASSPHRASE
        env["MISTORE_PWHASH_FAST"] = "1"
        return env

    def client_bin(self):
        return labtool.binary_path(self.state.get("bin_dir"), "client")

    def client(self, *args, conf=None, timeout=120, check=True):
        """Runs mistore --config CONF ARGS; returns CompletedProcess (bytes)."""
        cmd = [self.client_bin(), "--config", conf or self.client_conf] + list(args)
        try:
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=self.client_env(), timeout=timeout)
        except subprocess.TimeoutExpired as e:
            err = (e.stderr or b"").decode(errors="replace")
            raise AssertionError(f"{' '.join(cmd)} did not finish within {timeout} s "
                                 f"(killed); stderr so far:\n{err}") from None
        if check and p.returncode != 0:
            raise AssertionError(
                f"{' '.join(cmd)} exited {p.returncode}; stderr:\n"
                f"{p.stderr.decode(errors='replace')}")
        return p

    def dc_cli(self, *args, check=True, timeout=60):
        """Runs `mistore-dc --data-dir=<the lab DC's> ARGS --json` (the operator's
        commands on the DC's catalog); returns its parsed JSON output, or None
        when it failed and check is False."""
        node = self.node("dc")
        p = subprocess.run([node["argv"][0], f"--data-dir={node['data_dir']}"] + list(args)
                           + ["--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"mistore-dc {' '.join(args)} exited {p.returncode}: "
                                 f"{p.stderr.decode(errors='replace')}")
        return json.loads(p.stdout) if p.returncode == 0 else None

    def init_client(self, conf=None):
        return self.client("init", conf=conf, timeout=120)

    @staticmethod
    def _io_timeout(path_or_size):
        size = path_or_size if isinstance(path_or_size, int) else (
            os.path.getsize(path_or_size) if os.path.exists(path_or_size) else 0)
        return 120 + size // (256 << 10)  # 120 s plus 1 s per 256 KiB

    def put(self, path, name=None, conf=None):
        """Returns (name, oid_hex, version)."""
        args = ["put", path] + (["--name", name] if name else [])
        p = self.client(*args, conf=conf, timeout=self._io_timeout(path))
        out = p.stdout.decode(errors="replace")
        m = PUT_RE.search(out)
        if not m:
            raise AssertionError(f"put printed no 'stored NAME as OID version N': {out!r}")
        return m.group(1), m.group(2).lower(), int(m.group(3))

    def get(self, name, out_path, version=None, conf=None, check=True, size_hint=0):
        args = ["get", name, "-o", out_path]
        if version is not None:
            args += ["--version", str(version)]
        return self.client(*args, conf=conf, check=check, timeout=self._io_timeout(size_hint))

    def placement(self, name, version=None, conf=None):
        """Returns (fragments, placed, total, text); fragments is a list of
        dicts chunk/index/gateway/pop. placed/total are None if absent."""
        args = ["placement", name] + (["--version", str(version)] if version else [])
        p = self.client(*args, conf=conf, check=False, timeout=60)
        text = p.stdout.decode(errors="replace")
        if p.returncode != 0:
            return [], None, None, text + p.stderr.decode(errors="replace")
        frags = [{"chunk": m.group(1), "index": int(m.group(2)),
                  "gateway": int(m.group(3)), "pop": int(m.group(4))}
                 for m in FRAGMENT_RE.finditer(text)]
        m = PLACED_RE.search(text)
        placed, total = (int(m.group(1)), int(m.group(2))) if m else (None, None)
        return frags, placed, total, text

    def wait_placed(self, name, version=None, conf=None, timeout=60.0):
        """Polls `mistore placement` until 'placed: X/Y chunks' with X == Y > 0."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            frags, placed, total, text = self.placement(name, version, conf)
            last = text
            if total and placed == total:
                return frags
            time.sleep(0.5)
        raise AssertionError(f"placement of {name!r} not complete after {timeout:g} s; "
                             f"last `mistore placement` output:\n{last}")

    def write_client_conf(self, gateway_node_id, path, state_dir):
        """A second client config entering through another gateway, sharing
        the lab client's key_file."""
        return labtool.write_client_conf(self.dir, self.reload(), gateway_node_id, path,
                                         state_dir=state_dir)


class LabTestCase(unittest.TestCase):
    """Starts one lab per test class; prints log tails when a test fails."""

    LAB_OPTIONS = {}
    INIT_CLIENT = True
    lab = None

    @classmethod
    def setUpClass(cls):
        cls.lab = Lab(**cls.LAB_OPTIONS)
        cls._printed_tails = False
        try:
            cls.lab.up()
            if cls.INIT_CLIENT:
                cls.lab.init_client()
        except BaseException:
            print("\n=== lab start-up failed; log tails ===\n" + cls.lab.log_tails(),
                  file=sys.stderr)
            cls.lab.teardown()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.lab:
            cls.lab.teardown()

    def _failed(self):
        outcome = getattr(self, "_outcome", None)
        if outcome is None:
            return False
        result = getattr(outcome, "result", None)
        if result is not None and hasattr(result, "failures"):   # Python >= 3.11
            return any(t is self for t, _ in result.failures + result.errors)
        errors = getattr(outcome, "errors", [])                   # Python <= 3.10
        return any(exc for _, exc in errors)

    def tearDown(self):
        if self._failed():
            print(f"\n=== {self.id()} failed; log tails (lab {self.lab.dir}) ===\n"
                  + self.lab.log_tails(), file=sys.stderr)

    # ---- shared assertions
    def assertFilesEqual(self, expected, actual, msg=""):
        self.assertTrue(os.path.exists(actual), f"{msg}: {actual} was not written")
        es, as_ = os.path.getsize(expected), os.path.getsize(actual)
        self.assertEqual(es, as_, f"{msg}: size {as_} != expected {es}")
        self.assertEqual(sha256_file(expected), sha256_file(actual),
                         f"{msg}: content differs")

    def assertAllAlive(self):
        dead = self.lab.dead_nodes()
        self.assertEqual(dead, [], f"daemons died: {dead}")

    def scratch(self, name):
        return os.path.join(self.lab.work, name)


# ---------------------------------------------------------------- operators' view
# Helpers for the metrics, admin API and dashboard tests (issue 8).

_METRIC_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$')
_LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxies


def http_get(url, headers=None, timeout=10.0, method="GET"):
    """GET url; returns (status, {lower-case header: value}, body bytes).
    HTTP error statuses are returned, not raised."""
    req = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with _HTTP.open(req, timeout=timeout) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def parse_metrics(text):
    """Prometheus text format -> list of (name, {label: value}, float)."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _METRIC_RE.match(line)
        if not m:
            raise ValueError(f"unparsable metrics line: {line!r}")
        labels = {k: v.encode().decode("unicode_escape") for k, v in _LABEL_RE.findall(m.group(2) or "")}
        out.append((m.group(1), labels, float(m.group(3))))
    return out


def metric_value(samples, name, **labels):
    """Sum of the samples called name whose labels include labels (None if none)."""
    vals = [v for n, l, v in samples
            if n == name and all(l.get(k) == str(want) for k, want in labels.items())]
    return sum(vals) if vals else None


def promtool_check_metrics(text):
    """Runs `promtool check metrics` on text; (returncode, output), or None
    when promtool is not installed."""
    tool = shutil.which("promtool")
    if not tool:
        return None
    p = subprocess.run([tool, "check", "metrics"], input=text.encode(), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    return p.returncode, p.stdout.decode(errors="replace")


def lab_metrics(lab, node_id):
    """The node's /metrics text (lab.json's metrics_url)."""
    url = lab.node(node_id).get("metrics_url")
    if not url:
        raise AssertionError(f"{node_id} has no metrics_url in lab.json")
    status, headers, body = http_get(url)
    if status != 200:
        raise AssertionError(f"GET {url}: HTTP {status}: {body[:200]!r}")
    return body.decode()


def lab_admin_token(lab):
    with open(lab.reload()["admin_token_file"]) as f:
        return f.read().strip()


def lab_admin_url(lab):
    url = lab.node("dc").get("admin_url")
    if not url:
        raise AssertionError("the DC has no admin_url in lab.json")
    return url


def lab_admin_get(lab, path, token=True):
    """GET admin_url + path (path without the leading '/'); token: True for
    the lab's token, a string for that one, None for no Authorization.
    Returns (status, parsed JSON or None, headers)."""
    headers = {}
    if token is True:
        token = lab_admin_token(lab)
    if token is not None:
        headers["Authorization"] = "Bearer " + token
    status, hdrs, body = http_get(lab_admin_url(lab) + path.lstrip("/"), headers)
    try:
        data = json.loads(body) if body else None
    except ValueError:
        data = None
    return status, data, hdrs


def find_chromium():
    for name in ("chromium", "chromium-browser"):
        p = shutil.which(name)
        if p:
            return p
    return None


class _WebSocket:
    """Just enough of RFC 6455 (client side, text frames) for the DevTools protocol."""

    def __init__(self, url, timeout=30.0):
        m = re.match(r"ws://([^/:]+):(\d+)(/.*)", url)
        if not m:
            raise ValueError(f"not a ws:// URL: {url}")
        self.sock = socket.create_connection((m.group(1), int(m.group(2))), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {m.group(3)} HTTP/1.1\r\nHost: {m.group(1)}:{m.group(2)}\r\n"
                           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("DevTools closed the websocket handshake")
            head += chunk
        head, self.buf = head.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise ConnectionError(f"websocket handshake refused: {head[:200]!r}")

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("DevTools websocket closed")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def send(self, text):
        payload = text.encode()
        head = bytes([0x81])
        n = len(payload)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def recv(self):
        message = b""
        while True:
            b0, b1 = self._read(2)
            op, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            mask = self._read(4) if b1 & 0x80 else None
            data = self._read(n)
            if mask:
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
            if op == 0x8:
                raise ConnectionError("DevTools websocket closed")
            if op == 0x9:  # ping
                self.sock.sendall(bytes([0x8A, 0x80]) + os.urandom(4))
                continue
            if op in (0x0, 0x1, 0x2):
                message += data
                if b0 & 0x80:
                    return message.decode(errors="replace")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class HeadlessChromium:
    """Debian's chromium, headless, driven over the DevTools protocol with
    the standard library only. One page; every artefact (profile, log,
    screenshots) under workdir."""

    FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--hide-scrollbars", "--window-size=1440,1000", "--remote-debugging-port=0"]

    def __init__(self, workdir, binary=None):
        self.workdir = workdir
        self.binary = binary or find_chromium()
        self.proc = None
        self.ws = None
        self.next_id = 1

    def start(self, url, timeout=60.0):
        profile = tempfile.mkdtemp(prefix="chromium-profile-", dir=self.workdir)
        self.log_path = os.path.join(self.workdir, "chromium.log")
        logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.binary] + self.FLAGS + [f"--user-data-dir={profile}", url],
                                     stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                     start_new_session=True, close_fds=True)
        logf.close()
        atexit.register(self.close)
        port_file = os.path.join(profile, "DevToolsActivePort")
        deadline = time.monotonic() + timeout
        port = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"chromium exited with {self.proc.returncode}; see {self.log_path}")
            try:
                with open(port_file) as f:
                    port = int(f.readline().strip())
                break
            except (OSError, ValueError):
                time.sleep(0.1)
        if not port:
            raise AssertionError(f"chromium wrote no DevToolsActivePort in {timeout:g} s")
        while time.monotonic() < deadline:
            status, _, body = http_get(f"http://127.0.0.1:{port}/json/list")
            pages = [t for t in json.loads(body) if t.get("type") == "page"] if status == 200 else []
            if pages:
                self.ws = _WebSocket(pages[0]["webSocketDebuggerUrl"])
                return self
            time.sleep(0.1)
        raise AssertionError("chromium showed no page target")

    def call(self, method, params=None, timeout=30.0):
        msg_id = self.next_id
        self.next_id += 1
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise AssertionError(f"DevTools {method}: {msg['error']}")
                return msg.get("result", {})
        raise AssertionError(f"DevTools {method}: no answer in {timeout:g} s")

    def evaluate(self, expression):
        """Value of a JavaScript expression in the page (promises awaited)."""
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                           "awaitPromise": True})
        if "exceptionDetails" in r:
            raise AssertionError(f"page threw: {r['exceptionDetails']}")
        return r.get("result", {}).get("value")

    def wait_for(self, expression, timeout=30.0, what=None):
        """Polls expression until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = self.evaluate(expression)
            except AssertionError as e:
                if "navigated or closed" not in str(e) and "context" not in str(e):
                    raise
                last = None  # the page is being (re)loaded
            if last:
                return last
            time.sleep(0.25)
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what or expression}; "
                             f"last value {last!r}")

    def navigate(self, url):
        self.call("Page.navigate", {"url": url})

    def reload(self):
        self.call("Page.reload", {"ignoreCache": True})

    def screenshot(self, path, full_page=True):
        params = {"format": "png"}
        if full_page:
            m = self.call("Page.getLayoutMetrics")
            size = m.get("cssContentSize") or m.get("contentSize")
            params["captureBeyondViewport"] = True
            params["clip"] = {"x": 0, "y": 0, "width": size["width"],
                              "height": min(size["height"], 6000), "scale": 1}
        data = self.call("Page.captureScreenshot", params, timeout=60)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path

    def close(self):
        if self.ws:
            self.ws.close()
            self.ws = None
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=10)
        self.proc = None
