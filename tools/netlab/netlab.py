"""netlab: the paper's ISP network (Table I) built from Linux network namespaces,
with the real Mistore daemons in it.

Owner: tools/netlab (issue 11). Python 3 standard library only; needs root
(ip netns, tc). Runs in the harness's one thread; the daemons and the delay
relays are child processes, one per namespace each.

Topology (see README.md): every daemon gets its own namespace
`nl<pid>-dc`, `nl<pid>-p<i>`, `nl<pid>-g<gid>`. Links are point-to-point veth
pairs created directly inside the two namespaces (nothing is ever put in the
host's namespace), each with its own /30 from 10.200.0.0/16:
  gateway <-> its POP   tbf 5 MB/s up (gateway side), 20 MB/s down (POP side), 75 ms
  POP <-> POP (mesh)    tbf 40,000 MB/s each way, 5 ms
  POP <-> DC            tbf 10,000 MB/s each way, 5 ms
  device <-> gateway    tbf 125 MB/s each way, no added delay (home LAN; only for
                        `lan_gateways`, whose clients run in `nl<pid>-d<gid>` and
                        whose agent listens on its LAN address)
(MB = 10^6 bytes.) The kernel has no sch_netem, so the one-way delay is added
by tools/netlab/delay_relay.py, one process per namespace, on the dialling
side of each link: a gateway's agent dials its POP at 127.0.0.1:7100 in its
own namespace, where the relay holds every byte 75 ms each way and forwards
over the veth to the POP namespace's port 7101; there a zero-delay forwarder
hands it to the POP on 127.0.1.<i>:7100. A POP advertises 127.0.1.<i>:7100
(every namespace has all of 127/8 on lo), so in every other POP's namespace
the relay listens on that same address and forwards over the POP-POP veth
with 5 ms; the DC is 127.0.2.1:7000 in every POP namespace, relayed over the
POP-DC veth with 5 ms to the DC listening on 0.0.0.0:7000 in its namespace;
the DC, which dials POPs as an object's acting backup, reaches 127.0.1.<i>
through a relay of its own.

Everything is torn down by Netlab.close() (processes, then namespaces, which
removes their veths), which the harness calls in finally blocks, at exit and
on SIGINT/SIGTERM; if the harness is SIGKILLed its children get SIGTERM
(PR_SET_PDEATHSIG) and the next run's `cleanup_stale()` removes the
namespaces of runs whose process is gone.
"""

import ctypes
import ipaddress
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
RELAY = os.path.join(HERE, "delay_relay.py")

MB = 1_000_000

# Table I of the paper: (rate up, rate down) in bytes/s, one-way delay in s.
HG_POP = {"up": 5 * MB, "down": 20 * MB, "delay": 0.075}
POP_POP = {"up": 40_000 * MB, "down": 40_000 * MB, "delay": 0.005}
POP_DC = {"up": 10_000 * MB, "down": 10_000 * MB, "delay": 0.005}
# Not in Table I: a subscriber's home LAN between a device and its gateway
# (wired gigabit Ethernet). Used only for the gateways given as
# `lan_gateways` (the home-cache read): their clients run in a device
# namespace behind the gateway. Its round trip (~0.2 ms on real gigabit
# Ethernet) is not emulated: no relay, delay 0.
HOME_LAN = {"up": 125 * MB, "down": 125 * MB, "delay": 0.0}

# Initial congestion/receive window (segments) on every link's route when
# tcp_tuning is on (Linux default: 10).
TCP_INITCWND = 64

POP_PORT = 7100        # the POP's own listener (127.0.1.<i>)
POP_EDGE_PORT = 7101   # the forwarder on the POP namespace's veth addresses
DC_PORT = 7000
AGENT_PORT = 7300
READY_RE = re.compile(r'msg="ready"')
REGISTERED_RE = re.compile(r'msg="registered with POP"')
NS_PREFIX = "nl"
PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)


class NetlabError(Exception):
    pass


def log(msg):
    print(f"netlab: {msg}", file=sys.stderr, flush=True)


def run(cmd, check=True):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if check and p.returncode != 0:
        raise NetlabError(f"{' '.join(cmd)}: exit {p.returncode}: "
                          f"{p.stderr.decode(errors='replace').strip()}")
    return p


def netns_available():
    """(True, '') if this process may create namespaces, veths and tbf qdiscs;
    else (False, reason)."""
    if os.geteuid() != 0:
        return False, "needs root (ip netns, tc)"
    for tool in ("ip", "tc"):
        if not shutil.which(tool):
            return False, f"'{tool}' is not installed (iproute2)"
    name = f"{NS_PREFIX}{os.getpid()}-probe"
    p = run(["ip", "netns", "add", name], check=False)
    if p.returncode != 0:
        return False, "cannot create a network namespace: " + p.stderr.decode(errors="replace").strip()
    try:
        p = run(["ip", "-n", name, "link", "add", "pa", "type", "veth", "peer", "name", "pb"],
                check=False)
        if p.returncode != 0:
            return False, "cannot create veth pairs: " + p.stderr.decode(errors="replace").strip()
        p = run(["tc", "-n", name, "qdisc", "add", "dev", "pa", "root", "tbf", "rate", "8mbit",
                 "burst", "64kb", "limit", "256kb"], check=False)
        if p.returncode != 0:
            return False, "tc tbf unavailable: " + p.stderr.decode(errors="replace").strip()
    finally:
        run(["ip", "netns", "del", name], check=False)
    return True, ""


def cleanup_stale():
    """Deletes namespaces nl<pid>-* whose creating process no longer runs."""
    p = run(["ip", "netns", "list"], check=False)
    for line in p.stdout.decode().splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.match(rf"{NS_PREFIX}(\d+)-", name)
        if m and not os.path.exists(f"/proc/{m.group(1)}"):
            run(["ip", "netns", "del", name], check=False)


def tbf_args(rate):
    """tbf parameters for a rate in bytes/s: burst of 4 ms of traffic (at least
    128 KiB so a GSO packet fits, at most 16 MiB), queue of 50 ms (at least
    512 KiB, at most 64 MiB)."""
    burst = int(min(max(rate * 0.004, 128 << 10), 16 << 20))
    limit = int(min(max(rate * 0.05, 512 << 10), 64 << 20))
    return ["rate", f"{rate * 8}bit", "burst", str(burst), "limit", str(limit)]


class Proc:
    def __init__(self, name, ns, argv, log_path, nice=0):
        self.name, self.ns, self.argv, self.log_path = name, ns, argv, log_path
        self.nice = nice
        self.popen = None
        self.offset = 0

    def start(self):
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        self.offset = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        with open(self.log_path, "ab") as f:
            nice = self.nice

            def pre():
                # Die with the harness even if it is SIGKILLed (kept across
                # the exec of `ip netns exec` and of the daemon).
                _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
                if nice:
                    os.nice(nice)
            self.popen = subprocess.Popen(["ip", "netns", "exec", self.ns] + self.argv,
                                          stdin=subprocess.DEVNULL, stdout=f, stderr=f,
                                          start_new_session=True, close_fds=True,
                                          preexec_fn=pre)
        return self

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    def log_since_start(self):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self.offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def tail(self, n=15):
        return "\n".join("    " + l for l in self.log_since_start().splitlines()[-n:])

    def stop(self, sig=signal.SIGTERM, timeout=5.0):
        if not self.alive():
            return
        try:
            os.kill(self.popen.pid, sig)
        except ProcessLookupError:
            return
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)


def wait_logs(procs, regex, what, timeout):
    deadline = time.monotonic() + timeout
    pending = list(procs)
    while pending:
        for p in list(pending):
            if regex.search(p.log_since_start()):
                pending.remove(p)
            elif not p.alive():
                raise NetlabError(f"{p.name} exited before logging {what}:\n{p.tail()}")
        if not pending:
            return
        if time.monotonic() > deadline:
            p = pending[0]
            raise NetlabError(f"{p.name} did not log {what} within {timeout:g} s "
                              f"({len(pending)} waiting):\n{p.tail()}")
        time.sleep(0.1)


class Netlab:
    """One emulated network with one Mistore deployment in it.

    regions: POPs (one per region, ids 1..regions); gateways: agents per
    region (gateway id = 1000 * region + j); k, m: each POP's Reed-Solomon
    parameters; pop_cache_bytes: each POP's cache_bytes_max; delays: True to
    run the relays with Table I's delays, False for 0 ms (tests).
    Reads (issue 11): read_primary_first sets the POPs' knob of that name
    (reads from one replica region); cache_gateways: ids of the agents whose
    chunk cache is on (1 GiB; every other agent runs with
    chunk_cache_bytes_max=0 so that repeated reads measure the network);
    dc_backup: the subscriber's volume gets DC backup mode "latest" (every
    committed version copied into the DC's backup store)."""

    def __init__(self, workdir, bin_dir, regions=3, gateways=2, k=1, m=1,
                 pop_cache_bytes=1 << 30, subscriber="alice", link_delay=True,
                 tcp_tuning=True, pop_args=(), read_primary_first=False, cache_gateways=(),
                 dc_backup=False, get_window_bytes=None, lan_gateways=()):
        self.workdir = os.path.abspath(workdir)
        self.bin_dir = bin_dir
        self.regions, self.gateways, self.k, self.m = regions, gateways, k, m
        self.pop_cache_bytes = pop_cache_bytes
        self.subscriber = subscriber
        self.link_delay = link_delay
        self.tcp_tuning = tcp_tuning
        self.pop_args = list(pop_args)  # extra mistore-pop flags (e.g. knobs to compare)
        self.read_primary_first = read_primary_first
        self.cache_gateways = set(cache_gateways)
        self.lan_gateways = set(lan_gateways)  # gateways whose clients sit behind HOME_LAN
        self.lan_addr = {}  # gid -> the gateway's address on its LAN link
        self.dc_backup = dc_backup
        self.get_window_bytes = get_window_bytes  # None: the client's default
        self.tag = f"{NS_PREFIX}{os.getpid()}-"
        self.namespaces = []
        self.relays = {}     # ns -> Proc
        self.nodes = {}      # "dc", "pop<i>", "gw<gid>" -> Proc
        self.next_subnet = 0
        self.routes = {}     # ns -> [route strings]
        self.edge_addr = {}  # (ns_from, ns_to) -> address of ns_to on their link
        self.closed = False
        self.last_client_cpu_s = 0.0

    # ------------------------------------------------------------ names

    def ns_dc(self):
        return self.tag + "dc"

    def ns_pop(self, i):
        return f"{self.tag}p{i}"

    def ns_gw(self, gid):
        return f"{self.tag}g{gid}"

    def ns_device(self, gid):
        return f"{self.tag}d{gid}"

    def ns_client(self, gid):
        """Where gateway gid's clients run: its device namespace if it has a
        home LAN, else the gateway's own namespace."""
        return self.ns_device(gid) if gid in self.lan_gateways else self.ns_gw(gid)

    def agent_addr(self, gid):
        """Where gateway gid's agent listens for devices."""
        return f"{self.lan_addr.get(gid, '127.0.0.1')}:{AGENT_PORT}"

    def gateway_ids(self, region):
        return [region * 1000 + j for j in range(1, self.gateways + 1)]

    # ------------------------------------------------------------ topology

    def _add_ns(self, name):
        run(["ip", "netns", "add", name])
        self.namespaces.append(name)
        run(["ip", "-n", name, "link", "set", "lo", "up"])
        self.routes[name] = []
        if self.tcp_tuning:
            # As an ISP tunes its own access network: no return to slow
            # start after an idle period (per namespace). See README.md
            # ("TCP") for why it changes little here.
            run(["ip", "netns", "exec", name, "sysctl", "-q", "-w",
                 "net.ipv4.tcp_slow_start_after_idle=0"])

    def _link(self, ns_a, ns_b, rate_a_to_b, rate_b_to_a):
        """veth between ns_a and ns_b with a /30; tbf on each side's egress.
        Returns (addr in a, addr in b)."""
        idx = self.next_subnet
        self.next_subnet += 1
        if idx >= 16384:
            raise NetlabError("more than 16384 links")
        base = ipaddress.IPv4Address("10.200.0.0") + 4 * idx
        a_ip, b_ip = str(base + 1), str(base + 2)
        a_if, b_if = f"l{idx}a", f"l{idx}b"
        run(["ip", "link", "add", a_if, "netns", ns_a, "type", "veth", "peer", "name", b_if,
             "netns", ns_b])
        for ns, ifname, ip, rate in ((ns_a, a_if, a_ip, rate_a_to_b), (ns_b, b_if, b_ip, rate_b_to_a)):
            run(["ip", "-n", ns, "addr", "add", f"{ip}/30", "dev", ifname])
            run(["ip", "-n", ns, "link", "set", ifname, "up"])
            run(["tc", "-n", ns, "qdisc", "add", "dev", ifname, "root", "tbf"] + tbf_args(rate))
            if self.tcp_tuning:
                # Larger initial congestion and receive windows on the link's route.
                net = str(ipaddress.IPv4Network(f"{ip}/30", strict=False))
                run(["ip", "-n", ns, "route", "change", net, "dev", ifname, "proto", "kernel",
                     "scope", "link", "src", ip, "initcwnd", str(TCP_INITCWND),
                     "initrwnd", str(TCP_INITCWND)])
        self.edge_addr[(ns_a, ns_b)] = b_ip
        self.edge_addr[(ns_b, ns_a)] = a_ip
        return a_ip, b_ip

    def _delay_ms(self, spec):
        return spec["delay"] * 1000.0 if self.link_delay else 0.0

    def pop_addr(self, i):
        return f"127.0.1.{i}:{POP_PORT}"

    def build(self):
        """Namespaces, links, qdiscs and relays (no daemons yet)."""
        if self.regions < 1 or self.regions > 250:
            raise NetlabError("regions must be 1..250")
        cleanup_stale()
        self._add_ns(self.ns_dc())
        for i in range(1, self.regions + 1):
            self._add_ns(self.ns_pop(i))
            for gid in self.gateway_ids(i):
                self._add_ns(self.ns_gw(gid))
        dc = self.ns_dc()
        for i in range(1, self.regions + 1):
            p = self.ns_pop(i)
            self._link(p, dc, POP_DC["up"], POP_DC["down"])
            self.routes[p].append(f"127.0.2.1:{DC_PORT}={self.edge_addr[(p, dc)]}:{DC_PORT}"
                                  f"@{self._delay_ms(POP_DC)}")
            self.routes[p].append(f"0.0.0.0:{POP_EDGE_PORT}=127.0.1.{i}:{POP_PORT}@0")
            # The DC dials POPs too (as an object's acting backup it catches up from them).
            self.routes[dc].append(f"127.0.1.{i}:{POP_PORT}={self.edge_addr[(dc, p)]}:{POP_EDGE_PORT}"
                                   f"@{self._delay_ms(POP_DC)}")
            for j in range(1, i):
                q = self.ns_pop(j)
                self._link(p, q, POP_POP["up"], POP_POP["down"])
                self.routes[p].append(f"127.0.1.{j}:{POP_PORT}={self.edge_addr[(p, q)]}:{POP_EDGE_PORT}"
                                      f"@{self._delay_ms(POP_POP)}")
                self.routes[q].append(f"127.0.1.{i}:{POP_PORT}={self.edge_addr[(q, p)]}:{POP_EDGE_PORT}"
                                      f"@{self._delay_ms(POP_POP)}")
            for gid in self.gateway_ids(i):
                g = self.ns_gw(gid)
                self._link(g, p, HG_POP["up"], HG_POP["down"])
                self.routes[g].append(f"127.0.0.1:{POP_PORT}={self.edge_addr[(g, p)]}:{POP_EDGE_PORT}"
                                      f"@{self._delay_ms(HG_POP)}")
                if gid in self.lan_gateways:
                    d = self.ns_device(gid)
                    self._add_ns(d)
                    _, self.lan_addr[gid] = self._link(d, g, HOME_LAN["up"], HOME_LAN["down"])
        relays = []
        for ns, routes in self.routes.items():
            if not routes:
                continue
            argv = [sys.executable, RELAY]
            for r in routes:
                argv += ["--route", r]
            # nice -10: the relays are the network; they must not queue behind
            # the daemons' CPU work on a small machine (their timers run late).
            relays.append(Proc("relay-" + ns[len(self.tag):], ns, argv,
                               os.path.join(self.workdir, "logs", f"relay-{ns[len(self.tag):]}.log"),
                               nice=-10).start())
        for r in relays:
            self.relays[r.ns] = r
        wait_logs(relays, re.compile(r"^ready$", re.M), "ready", 60)
        log(f"topology up: {len(self.namespaces)} namespaces, {self.next_subnet} links, "
            f"{len(relays)} relays")

    # ------------------------------------------------------------ daemons

    def _bin(self, name):
        p = os.path.join(self.bin_dir, name)
        if not os.access(p, os.X_OK):
            raise NetlabError(f"{p}: not found or not executable")
        return p

    def _node(self, nid, ns, argv):
        return Proc(nid, ns, argv, os.path.join(self.workdir, "logs", nid + ".log"))

    def plan_nodes(self):
        d = self.workdir
        self.nodes["dc"] = self._node("dc", self.ns_dc(), [
            self._bin("mistore-dc"), f"--listen=0.0.0.0:{DC_PORT}",
            f"--data-dir={d}/dc", "--metrics-listen=off", "--admin-listen=off"])
        for i in range(1, self.regions + 1):
            self.nodes[f"pop{i}"] = self._node(f"pop{i}", self.ns_pop(i), [
                self._bin("mistore-pop"), f"--pop-id={i}", f"--region=r{i}",
                f"--listen={self.pop_addr(i)}", f"--dc=127.0.2.1:{DC_PORT}",
                f"--data-dir={d}/pop{i}", f"--k={self.k}", f"--m={self.m}",
                f"--cache-bytes-max={self.pop_cache_bytes}", "--metrics-listen=off",
                "--tick-ms=200",
                f"--read-primary-first={'true' if self.read_primary_first else 'false'}"]
                + self.pop_args)
            for gid in self.gateway_ids(i):
                self.nodes[f"gw{gid}"] = self._node(f"gw{gid}", self.ns_gw(gid), [
                    self._bin("mistore-agent"), f"--gateway-id={gid}",
                    f"--subscriber={self.subscriber}", f"--pop=127.0.0.1:{POP_PORT}",
                    f"--client-listen={self.agent_addr(gid)}", f"--data-dir={d}/gw{gid}",
                    "--metrics-listen=off", "--reconnect-ms=300", "--reconnect-max-ms=2000",
                    f"--chunk-cache-bytes-max={(1 << 30) if gid in self.cache_gateways else 0}"])
        self.issue_certs()

    def issue_certs(self):
        """Node links are secure by default (issue 4): the DC's CA issues every
        POP and agent a key and certificate (workdir/certs/, `mistore-dc
        issue`, before the DC starts; it creates the CA key the DC then uses)."""
        d = self.workdir
        certs = os.path.join(d, "certs")
        os.makedirs(certs, exist_ok=True)
        for nid, n in self.nodes.items():
            if nid == "dc":
                continue
            role, num = ("pop", nid[3:]) if nid.startswith("pop") else ("gateway", nid[2:])
            region = f"r{num}" if role == "pop" else f"r{int(num) // 1000}"
            prefix = os.path.join(certs, nid)
            if not os.path.exists(prefix + ".cert"):
                run([self._bin("mistore-dc"), f"--data-dir={d}/dc", "issue", role, num, region,
                     prefix, self.subscriber if role == "gateway" else "-"])
            n.argv += [f"--node-key-file={prefix}.key", f"--node-cert-file={prefix}.cert",
                       f"--ca-public-key-file={d}/dc/ca.pub"]

    def start(self):
        self.plan_nodes()
        dc = self.nodes["dc"].start()
        wait_logs([dc], READY_RE, 'msg="ready"', 30)
        if self.dc_backup:
            # The CLI opens the DC's catalog directly (SQLite in WAL mode).
            run([self._bin("mistore-dc"), f"--data-dir={self.workdir}/dc", "backup", "set",
                 self.subscriber, "latest"])
        pops = [self.nodes[f"pop{i}"].start() for i in range(1, self.regions + 1)]
        wait_logs(pops, READY_RE, 'msg="ready"', 30)
        gws = [n.start() for nid, n in self.nodes.items() if nid.startswith("gw")]
        wait_logs(gws, REGISTERED_RE, 'msg="registered with POP"', 60)
        want = re.compile(r'msg="cluster map".*\bpops=%d\b' % self.regions)
        try:
            wait_logs(pops, want, f"a cluster map of {self.regions} POPs", 30)
        except NetlabError as e:
            log(f"warning: {e}")
        log(f"daemons up: dc, {len(pops)} POPs, {len(gws)} agents (k={self.k} m={self.m}, "
            f"POP cache {self.pop_cache_bytes} bytes)")

    def kill(self, nid, sig=signal.SIGKILL):
        self.nodes[nid].stop(sig, timeout=5)

    def restart(self, nid, wait=True):
        n = self.nodes[nid]
        n.stop()
        n.start()
        if wait:
            wait_logs([n], REGISTERED_RE if nid.startswith("gw") else READY_RE, "ready", 60)
        if wait and nid.startswith("pop"):
            # Its gateways too (they redial with backoff): a read that needs
            # this POP's fragments right after must find them registered.
            for gid in self.gateway_ids(int(nid[3:])):
                if self.nodes[f"gw{gid}"].alive():
                    wait_logs([n], re.compile(r'msg="gateway registered" gateway=%d\b' % gid),
                              f"gateway {gid} registered", 60)

    # ------------------------------------------------------------ client

    def client_conf(self, gid):
        path = os.path.join(self.workdir, "client", f"gw{gid}.conf")
        if not os.path.exists(path):
            os.makedirs(os.path.join(self.workdir, "client", f"state-{gid}"), exist_ok=True)
            with open(path, "w") as f:
                f.write(f"# netlab client entering through gateway {gid}\n")
                f.write(f"agent = {self.agent_addr(gid)}\n")
                f.write(f"subscriber = {self.subscriber}\n")
                f.write(f"key_file = {os.path.join(self.workdir, 'client', 'master.key')}\n")
                f.write(f"state_dir = {os.path.join(self.workdir, 'client', f'state-{gid}')}\n")
                if self.get_window_bytes:
                    f.write(f"get_window_bytes = {self.get_window_bytes}\n")
                if gid in self.lan_gateways:
                    f.write("pairing_file = " +
                            os.path.join(self.workdir, "client", f"pairing-{gid}") + "\n")
        return path

    def client(self, gid, args, timeout=600):
        """Runs `mistore` for gateway gid (in its namespace, or on its home
        LAN's device); returns (seconds, CompletedProcess)."""
        env = dict(os.environ, MISTORE_PASSPHRASE="netlab passphrase", MISTORE_PWHASH_FAST="1")
        cmd = ["ip", "netns", "exec", self.ns_client(gid), self._bin("mistore"),
               "--config", self.client_conf(gid)] + list(args)
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                           timeout=timeout)
        dt = time.monotonic() - t0
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        # CPU time (user + system) of the client process: on a shared
        # machine the wall time of its CPU-bound steps (chunking, hashing,
        # sealing) grows with the load, this does not.
        self.last_client_cpu_s = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        return dt, p

    def init_client(self):
        key = os.path.join(self.workdir, "client", "master.key")
        if not os.path.exists(key):
            _, p = self.client(1001, ["init"])
            if p.returncode != 0:
                raise NetlabError("mistore init failed: " + p.stderr.decode(errors="replace"))
        for gid in sorted(self.lan_gateways):
            self.pair_device(gid)

    def pair_device(self, gid):
        """A device on a home LAN is served only once paired with its
        gateway (issue 4): a code from `mistore-agent pair`, redeemed with
        `mistore pair CODE` from the device."""
        if os.path.exists(os.path.join(self.workdir, "client", f"pairing-{gid}")):
            return
        p = subprocess.run([self._bin("mistore-agent"), f"--data-dir={self.workdir}/gw{gid}", "pair"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        code = p.stdout.decode().strip()
        if p.returncode != 0 or not code:
            raise NetlabError(f"mistore-agent pair for gateway {gid} failed: "
                              + p.stderr.decode(errors="replace"))
        _, p = self.client(gid, ["pair", code])
        if p.returncode != 0:
            raise NetlabError(f"pairing the device of gateway {gid} failed: "
                              + p.stderr.decode(errors="replace"))

    # ------------------------------------------------------------ teardown

    def close(self):
        if self.closed:
            return
        self.closed = True
        procs = [n for n in self.nodes.values()] + list(self.relays.values())
        for p in procs:
            if p.alive():
                try:
                    os.kill(p.popen.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 5
        for p in procs:
            if p.popen is None:
                continue
            try:
                p.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.kill(p.popen.pid, signal.SIGKILL)
                p.popen.wait(timeout=10)
        for ns in reversed(self.namespaces):
            run(["ip", "netns", "del", ns], check=False)
        self.namespaces = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def find_bin_dir(explicit=None):
    for d in ([explicit] if explicit else []) + [os.environ.get("MISTORE_BIN_DIR"),
                                                 os.path.join(REPO, "build", "release", "bin")]:
        if d and os.access(os.path.join(d, "mistore-pop"), os.X_OK):
            return os.path.abspath(d)
    raise NetlabError("no mistore binaries: give --bin-dir or set MISTORE_BIN_DIR")
