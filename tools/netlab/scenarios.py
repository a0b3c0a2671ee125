"""netlab scenarios: the paper's figures 14-17 (plus delta upload) run with
the real daemons on the emulated network of netlab.py, each measured next to
its lower limit computed from the link parameters.

Owner: tools/netlab (issue 11). Runs in the harness's one thread; every
operation is one `mistore` client process in a gateway's namespace, timed
from its start to its exit (the client's own start-up, ~60 ms with the fast
KDF, is inside every figure).

Labs (each its own set of namespaces and daemons, 3 regions):
  cached     2 gateways/region, k=1 m=1, POP cache 1 GiB: paths served by POPs;
             gateway 1002's chunk cache on (read_home_cache), every other off;
             1002's client runs on a device behind a 125 MB/s home LAN
  stripe     G gateways/region, k=G-m, m=max(1,G//5), POP cache 0: striped xG
  nostripe   2 gateways/region, k=1 m=1, POP cache 0, POPs read_primary_first:
             a chunk is whole on a gateway and a read comes from the primary's
             region only (the paper's "object read entirely from one HG": its
             two gateways each hold and send every chunk, so the region's
             useful rate is one gateway's uplink)
  dc         2 gateways/region, k=1 m=1, POP cache 0, DC backup "latest":
             read_dc (the gateways of both replica regions down);
             write_hg_dc and read_dc_tier (a DC-tier object, `mistore put
             --tier dc`: the DC is its one replica, the entry POP relays)
Objects are written from region 1, so the oid's primary is POP 1; the backup
B is chosen by the system (read from the oid); the "third" region T is the one
that is neither (that is why 3 regions are the minimum).

The limits (README.md has the derivation): S = object bytes, U = 5 MB/s
(gateway up), D = 20 MB/s (gateway down), Rh = 0.150 s (gateway-POP round
trip), Rc = 0.010 s (core round trip), k = data fragments:
  write_hg_pb           S/U + 2Rh + 4Rc   (also write_hg_pb_backup_down)
  write_hg_pop_pb       S/U + 2Rh + 5Rc   (also write_hg_pop_pb_primary_down)
  write_*_hg_*          the write's limit + Rh (fragments to the gateways) +
                        Rh (the `placement` call that observes it)
  read_local_pop        S/D + 2Rh + 1Rc
  read_remote_pop       S/D + 2Rh + 2Rc       (also read_primary_down)
  read_gateways_stripe  max(S/D, S/(2kU)) + 3Rh + 2Rc   (also read_gw_down_, read_backup_down_;
                        each chunk comes from the gateways of primary or backup, at random)
  read_gateways_nostripe max(S/D, S/(kU)) + 3Rh + 2Rc  (also ...; one region: read_primary_first)
  read_pop_fail_*       read_gateways_* + Rh (an ideal cut-through POP loses nothing it had
                        fetched; the chunks it held are asked again: one more round trip)
  read_home_cache       S/L + Rh + Rc   (L = 125 MB/s, the home LAN, not in Table I: the client
                        runs on a device behind gateway 1002; GetVersion at the POP and its
                        name lookup at the DC; the chunks come from the gateway's chunk cache)
  read_dc               S/D + 2Rh + 4Rc (name lookup; FetchChunk at primary and backup, which
                        have neither copy nor reachable fragments; FetchBackupChunk at the DC)
  write_delta           1 MB/U + 3Rh + 4Rc    (only the changed bytes travel; also
                        write_delta_while_placing)
  write_hg_dc           S/U + 2Rh + 4Rc   (as write_hg_pb, the DC in the primary's place:
                        name claim, lock, chunk check and commit at the DC; the chunks
                        go on to the DC as they arrive at the entry POP)
  read_dc_tier          S/D + 2Rh + 2Rc   (as read_remote_pop, the DC in the remote POP's
                        place: from a region other than the writer's, POP caches 0)
"""

import os
import signal
import statistics
import subprocess
import time

import netlab

U = netlab.HG_POP["up"]
D = netlab.HG_POP["down"]
RH = 2 * netlab.HG_POP["delay"]
RC = 2 * netlab.POP_POP["delay"]
MIB = 1 << 20


def limit_for(scenario, size, k):
    S = float(size)
    w_pb = S / U + 2 * RH + 4 * RC
    w_pop = S / U + 2 * RH + 5 * RC
    # The stripe lab's entry POP asks primary or backup at random for each
    # chunk, so the gateways of both replica regions send at once: 2k uplinks
    # of S/k each. The nostripe lab's POPs read from the primary's region only.
    regions = 1 if scenario.endswith("_nostripe") else 2
    r_gw = max(S / D, S / (regions * k * U)) + 3 * RH + 2 * RC
    if scenario in ("write_hg_pb", "write_hg_pb_backup_down", "write_hg_dc"):
        return w_pb
    if scenario in ("write_hg_pop_pb", "write_hg_pop_pb_primary_down"):
        return w_pop
    if scenario.startswith("write_hg_pb_hg"):
        return w_pb + 2 * RH
    if scenario.startswith("write_hg_pop_pb_hg"):
        return w_pop + 2 * RH
    if scenario == "read_local_pop":
        return S / D + 2 * RH + RC
    if scenario in ("read_remote_pop", "read_primary_down", "read_dc_tier"):
        return S / D + 2 * RH + 2 * RC
    if scenario.startswith(("read_gateways", "read_gw_down", "read_backup_down")):
        # Backup POP down: the primary's gateways (or, in the stripe lab, the
        # DC's stand-in replica acting as backup) serve: no faster than both.
        return r_gw
    if scenario.startswith("read_pop_fail"):
        return r_gw + RH
    if scenario == "read_home_cache":
        return S / netlab.HOME_LAN["down"] + RH + RC
    if scenario == "read_dc":
        return S / D + 2 * RH + 4 * RC
    if scenario in ("write_delta", "write_delta_while_placing"):
        return 1e6 / U + 3 * RH + 4 * RC
    raise ValueError(scenario)


# Scenarios the system cannot express yet: name -> what is missing. (The
# HG-DC write was listed here until DC-tier objects existed: write_hg_dc.)
NOT_EXPRESSIBLE = {}


class Runner:
    def __init__(self, lab, workdir, reps, sizes, results, log=print):
        self.lab, self.workdir, self.reps, self.sizes = lab, workdir, reps, sizes
        self.results = results  # list of dicts (scenario, size, times, k, lab, note)
        self.log = log
        self.files = {}

    def datafile(self, size, rep, variant=""):
        path = os.path.join(self.workdir, "data", f"obj-{size}-{rep}{variant}")
        if not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                left = size
                while left:
                    n = min(left, 4 * MIB)
                    f.write(os.urandom(n))
                    left -= n
        return path

    def record(self, scenario, size, seconds, note=""):
        key = (scenario, size)
        for r in self.results:
            if (r["scenario"], r["size_bytes"]) == key:
                break
        else:
            r = {"scenario": scenario, "size_bytes": size, "times": [], "errors": [],
                 "k": self.lab.k, "m": self.lab.m, "gateways": self.lab.gateways,
                 "lab": self.labname, "note": note}
            self.results.append(r)
        if seconds is None:
            r["errors"].append(note)
        else:
            r["times"].append(seconds)
        self.log(f"  {scenario:28s} {size:>11d} B  "
                 + (f"{seconds:8.3f} s" if seconds is not None else f"FAILED: {note[:200]}"))

    # ------------------------------------------------------------ operations

    def put(self, gid, path, name, tier=None):
        args = ["put", path, "--name", name] + (["--tier", tier] if tier else [])
        dt, p = self.lab.client(gid, args,
                                timeout=120 + os.path.getsize(path) // 200_000)
        out = p.stdout.decode(errors="replace")
        if p.returncode != 0 or "stored" not in out:
            raise RuntimeError(f"put {name} via gw{gid}: exit {p.returncode}: "
                               f"{p.stderr.decode(errors='replace').strip()[-300:]}")
        oid = out.split(" as ")[1].split()[0]
        self.log(f"    put {name}: {dt:.3f} s, client CPU {self.lab.last_client_cpu_s:.3f} s")
        return dt, oid

    def get(self, gid, name, size):
        out = os.path.join(self.workdir, "out", f"gw{gid}")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        dt, p = self.lab.client(gid, ["get", name, "-o", out], timeout=120 + size // 200_000)
        if p.returncode != 0:
            raise RuntimeError(f"get {name} via gw{gid}: exit {p.returncode}: "
                               f"{p.stderr.decode(errors='replace').strip()[-300:]}")
        if os.path.getsize(out) != size:
            raise RuntimeError(f"get {name}: {os.path.getsize(out)} bytes, expected {size}")
        return dt

    def wait_placed(self, gid, name, t0, timeout):
        """Polls `mistore placement` until every chunk is placed; returns the
        time from t0 to the end of the call that saw it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _, p = self.lab.client(gid, ["placement", name], timeout=60)
            text = p.stdout.decode(errors="replace")
            for line in text.splitlines():
                if line.startswith("placed:"):
                    done, total = line.split()[1].split("/")
                    if int(total) > 0 and done == total:
                        return time.monotonic() - t0
        raise RuntimeError(f"{name}: not placed within {timeout:g} s")

    @staticmethod
    def roles(oid):
        raw = bytes.fromhex(oid)
        primary = int.from_bytes(raw[0:4], "little")
        backup = int.from_bytes(raw[4:8], "little")
        return primary, backup

    def third(self, primary, backup):
        for r in range(1, self.lab.regions + 1):
            if r not in (primary, backup):
                return r
        raise RuntimeError("needs 3 regions")

    def home(self, region):
        return region * 1000 + 1

    def attempt(self, scenario, size, fn):
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - every failure is recorded, the run goes on
            self.record(scenario, size, None, f"{type(e).__name__}: {e}")

    # ------------------------------------------------------------ labs

    def run_cached(self, want, delta_size):
        self.labname = "cached"
        for size in self.sizes:
            for rep in range(self.reps):
                name = f"c-{size}-{rep}"
                path = self.datafile(size, rep)
                state = {}

                def w1():
                    dt, oid = self.put(self.home(1), path, name)
                    state["oid"] = oid
                    self.record("write_hg_pb", size, dt)
                self.attempt("write_hg_pb", size, w1)
                if "oid" not in state:
                    continue
                p, b = self.roles(state["oid"])
                t = self.third(p, b)
                reads = {"read_local_pop", "read_home_cache", "read_remote_pop"} & set(want)
                if reads:
                    # The reads are of a stored object: once its fragments
                    # are placed. Right after the put the home region's
                    # gateway links still carry the placement (k=1 m=1: the
                    # whole object to each of its two gateways, 5 s at
                    # 20 MB/s for 100 MB), which a local read would share.
                    self.attempt("read_local_pop", size,
                                 lambda: self.wait_placed(self.home(1), name, time.monotonic(), 600))
                if "read_local_pop" in want:
                    self.attempt("read_local_pop", size,
                                 lambda: self.record("read_local_pop", size, self.get(self.home(p), name, size)))
                if "read_home_cache" in want:
                    # Gateway 1002 (region 1, the object's primary region) is
                    # the one with its chunk cache on: one untimed read fills
                    # it, the timed one is served from it (only GetVersion
                    # goes to the POP).
                    def hc():
                        gw = 1 * 1000 + 2
                        self.get(gw, name, size)
                        self.record("read_home_cache", size, self.get(gw, name, size))
                    self.attempt("read_home_cache", size, hc)
                if "read_remote_pop" in want:
                    self.attempt("read_remote_pop", size,
                                 lambda: self.record("read_remote_pop", size, self.get(self.home(t), name, size)))
                if "read_primary_down" in want:
                    # A fresh object (so the third region's POP has no copy),
                    # its primary killed, read from the region that is neither.
                    name2 = name + "-pd"
                    try:
                        _, oid2 = self.put(self.home(1), path, name2)
                        p2, b2 = self.roles(oid2)
                        t2 = self.third(p2, b2)
                        self.lab.kill(f"pop{p2}")
                        try:
                            self.record("read_primary_down", size, self.get(self.home(t2), name2, size))
                        finally:
                            self.lab.restart(f"pop{p2}")
                            time.sleep(2.0)  # the DC marks it up; maps refresh each second
                    except Exception as e:  # noqa: BLE001
                        self.record("read_primary_down", size, None, f"{type(e).__name__}: {e}")
                if "write_pop_down" in want:
                    # Paper Fig. 16: a new version while one replica POP is
                    # down: HG-[P/B] (backup down, written from the primary's
                    # region) and HG-POP-[P/B] (primary down, written from
                    # the third region).
                    for scen, victim, writer in (("write_hg_pb_backup_down", b, p),
                                                 ("write_hg_pop_pb_primary_down", p, t)):
                        path3 = self.datafile(size, rep, "-v3")

                        def wd(scen=scen, victim=victim, writer=writer, path3=path3):
                            self.lab.kill(f"pop{victim}")
                            # Timed once the DC has marked it down (its connection
                            # drops at once; the maps refresh every second).
                            time.sleep(2.5)
                            try:
                                self.record(scen, size, self.put(self.home(writer), path3, name)[0])
                            finally:
                                self.lab.restart(f"pop{victim}")
                                time.sleep(2.0)
                        self.attempt(scen, size, wd)
                if "write_hg_pop_pb" in want:
                    path2 = self.datafile(size, rep, "-v2")
                    self.attempt("write_hg_pop_pb", size,
                                 lambda: self.record("write_hg_pop_pb", size,
                                                     self.put(self.home(t), path2, name)[0]))
        if "write_delta" in want and delta_size:
            for rep in range(self.reps):
                name = f"d-{delta_size}-{rep}"
                base = self.datafile(delta_size, rep, "-base")
                # v2 = v1 with 1 MB rewritten at the middle, v3 = v2 with
                # 1 MB rewritten at a quarter: each differs from the one
                # before in 1 MB.
                with open(base, "rb") as f:
                    data = bytearray(f.read())
                versions = []
                for i, at in enumerate((len(data) // 2, len(data) // 4)):
                    data[at:at + 1_000_000] = os.urandom(min(1_000_000, len(data) - at))
                    path = os.path.join(self.workdir, "data", f"obj-{delta_size}-{rep}-delta{i}")
                    with open(path, "wb") as f:
                        f.write(data)
                    versions.append(path)

                def wd():
                    t0 = time.monotonic()
                    full, _ = self.put(self.home(1), base, name)
                    self.record("write_full_for_delta", delta_size, full)
                    # Right after the full write, while the POPs still
                    # place its fragments on the gateways (the home
                    # gateway's downlink carries them).
                    dt, _ = self.put(self.home(1), versions[0], name)
                    self.record("write_delta_while_placing", delta_size, dt)
                    # Once every chunk is placed: the edit of a file stored
                    # some time ago.
                    self.wait_placed(self.home(1), name, t0, 600)
                    dt, _ = self.put(self.home(1), versions[1], name)
                    self.record("write_delta", delta_size, dt)
                self.attempt("write_delta", delta_size, wd)

    def run_gateways(self, kind, want):
        """kind: 'stripe' or 'nostripe' (the lab's k/m decide the striping)."""
        self.labname = kind
        sfx = "_" + kind
        for size in self.sizes:
            for rep in range(self.reps):
                name = f"{kind}-{size}-{rep}"
                path = self.datafile(size, rep)
                state = {}

                def w():
                    t0 = time.monotonic()
                    _, oid = self.put(self.home(1), path, name)
                    state["oid"] = oid
                    self.record("write_hg_pb_hg" + sfx, size,
                                self.wait_placed(self.home(1), name, t0, 120 + size / 1e6))
                self.attempt("write_hg_pb_hg" + sfx, size, w)
                if "oid" not in state:
                    continue
                # With POP caches at 0 the POPs still keep a chunk until the
                # object's other POP confirms it placed it too (issue 6; each
                # POP asks every 2 s), and reads would hit that copy instead
                # of the gateways. Two ask rounds and a margin, outside timing.
                time.sleep(4.5)
                p, b = self.roles(state["oid"])
                t = self.third(p, b)
                if "read_gateways" in want:
                    self.attempt("read_gateways" + sfx, size,
                                 lambda: self.record("read_gateways" + sfx, size,
                                                     self.get(self.home(t), name, size)))
                if "read_gw_down" in want:
                    def gd():
                        victims = [f"gw{p * 1000 + self.lab.gateways}", f"gw{b * 1000 + self.lab.gateways}"]
                        for v in victims:
                            self.lab.kill(v)
                        try:
                            self.record("read_gw_down" + sfx, size, self.get(self.home(t), name, size))
                        finally:
                            for v in victims:
                                self.lab.restart(v)
                    self.attempt("read_gw_down" + sfx, size, gd)
                if "read_backup_down" in want:
                    # The backup POP down. Meant to force every chunk from the
                    # primary region's gateways (with k=1 the paper's "object
                    # read entirely from one HG"), but the DC's stand-in replica
                    # becomes acting backup and serves the chunks it has caught
                    # up from the primary: see docs/benchmarks/evaluation.md.
                    def orr():
                        self.lab.kill(f"pop{b}")
                        time.sleep(2.5)  # the DC marks it down; maps refresh each second
                        try:
                            self.record("read_backup_down" + sfx, size, self.get(self.home(t), name, size))
                        finally:
                            self.lab.restart(f"pop{b}")
                            time.sleep(2.0)
                    self.attempt("read_backup_down" + sfx, size, orr)
                if "read_pop_fail" in want:
                    def pf():
                        # Kill the primary POP while the read is under way: after
                        # a third of the time the gateways need to send the object.
                        k = self.lab.k
                        expect = max(size / D, size / (k * U))
                        out = os.path.join(self.workdir, "out", "popfail")
                        os.makedirs(os.path.dirname(out), exist_ok=True)
                        env = dict(os.environ, MISTORE_PASSPHRASE="netlab passphrase")
                        cmd = ["ip", "netns", "exec", self.lab.ns_gw(self.home(t)),
                               os.path.join(self.lab.bin_dir, "mistore"), "--config",
                               self.lab.client_conf(self.home(t)), "get", name, "-o", out]
                        t0 = time.monotonic()
                        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
                        time.sleep(0.3 + expect / 3)
                        self.lab.kill(f"pop{p}")
                        try:
                            _, err = proc.communicate(timeout=120 + size // 200_000)
                            dt = time.monotonic() - t0
                            if proc.returncode != 0:
                                raise RuntimeError(f"get exit {proc.returncode}: "
                                                   f"{err.decode(errors='replace').strip()[-300:]}")
                            if os.path.getsize(out) != size:
                                raise RuntimeError("short read")
                            self.record("read_pop_fail" + sfx, size, dt)
                        finally:
                            if proc.poll() is None:
                                proc.kill()
                                proc.wait()
                            self.lab.restart(f"pop{p}")
                            time.sleep(2.0)
                    self.attempt("read_pop_fail" + sfx, size, pf)
                if "write_hg_pop_pb_hg" in want:
                    path2 = self.datafile(size, rep, "-v2")

                    def w2():
                        t0 = time.monotonic()
                        self.put(self.home(t), path2, name)
                        self.record("write_hg_pop_pb_hg" + sfx, size,
                                    self.wait_placed(self.home(t), name, t0, 120 + size / 1e6))
                    self.attempt("write_hg_pop_pb_hg" + sfx, size, w2)


    def run_dc(self, want):
        """read_dc: reads served by the DC's backup store: the lab's volume has
        DC backup mode "latest", POP caches are 0, and the gateways of both
        replica regions are down during the read, so neither replica has a
        copy or reachable fragments and the entry POP falls back to
        FetchBackupChunk. write_hg_dc / read_dc_tier: a DC-tier object."""
        self.labname = "dc"
        if {"write_hg_dc", "read_dc_tier"} & set(want):
            self.run_dc_tier(want)
        if "read_dc" not in want:
            return
        for size in self.sizes:
            for rep in range(self.reps):
                name = f"dc-{size}-{rep}"
                path = self.datafile(size, rep)

                def rd():
                    _, oid = self.put(self.home(1), path, name)
                    # Backed up (the DC copies from the primary, chunk by chunk)
                    # and placed; then the replicas drop their copies (cache 0,
                    # once the other replica confirmed placement, every 2 s).
                    self.wait_placed(self.home(1), name, time.monotonic(), 120 + size / 1e6)
                    self.wait_backed_up(oid, 120 + size / 1e6)
                    time.sleep(4.5)
                    p, b = self.roles(oid)
                    t = self.third(p, b)
                    victims = [f"gw{r * 1000 + j}" for r in (p, b)
                               for j in range(1, self.lab.gateways + 1)]
                    for v in victims:
                        self.lab.kill(v)
                    time.sleep(1.0)  # the POPs see the connections close
                    try:
                        self.record("read_dc", size, self.get(self.home(t), name, size))
                    finally:
                        for v in victims:
                            self.lab.restart(v)
                self.attempt("read_dc", size, rd)

    def run_dc_tier(self, want):
        """HG-DC (paper Figs. 14, 15): a DC-tier object written from region 1
        (the DC keeps its one replica; the entry POP relays) and read from
        region 2, whose POP never held it (POP caches are 0 in this lab)."""
        for size in self.sizes:
            for rep in range(self.reps):
                name = f"dct-{size}-{rep}"
                path = self.datafile(size, rep)
                state = {}

                def w():
                    dt, oid = self.put(self.home(1), path, name, tier="dc")
                    if self.roles(oid) != (0, 0):
                        raise RuntimeError(f"{name}: oid {oid} is not a DC-tier oid")
                    state["oid"] = oid
                    self.record("write_hg_dc", size, dt)
                self.attempt("write_hg_dc", size, w)
                if "oid" in state and "read_dc_tier" in want:
                    def rd():
                        # Not while the DC copies the new version into its
                        # backup store (backup "latest"): disk and CPU shared.
                        self.wait_backed_up(state["oid"], 120 + size / 1e6)
                        self.record("read_dc_tier", size, self.get(self.home(2), name, size))
                    self.attempt("read_dc_tier", size, rd)

    def wait_backed_up(self, oid, timeout):
        deadline = time.monotonic() + timeout
        pat = f'msg="version backed up" oid={oid}'
        while pat not in self.lab.nodes["dc"].log_since_start():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{oid}: not backed up by the DC in time")
            time.sleep(0.2)


def summarize(results):
    """Rows for the CSV/Markdown: medians, limits, ratios."""
    rows = []
    for r in results:
        times = sorted(r["times"])
        med = statistics.median(times) if times else None
        if r["scenario"] == "write_full_for_delta":
            lim = limit_for("write_hg_pb", r["size_bytes"], r["k"])
        else:
            lim = limit_for(r["scenario"], r["size_bytes"], r["k"])
        rows.append({
            "scenario": r["scenario"], "size_bytes": r["size_bytes"],
            "median_s": med, "limit_s": lim,
            "ratio": (med / lim) if med is not None else None,
            "runs": len(times), "failures": len(r["errors"]),
            "min_s": times[0] if times else None, "max_s": times[-1] if times else None,
            "lab": r["lab"], "k": r["k"], "m": r["m"], "gateways_per_region": r["gateways"],
            "note": "; ".join(sorted(set(r["errors"])))[:300] or r.get("note", ""),
        })
    for name, why in NOT_EXPRESSIBLE.items():
        rows.append({"scenario": name, "size_bytes": "", "median_s": None, "limit_s": None,
                     "ratio": None, "runs": 0, "failures": 0, "min_s": None, "max_s": None,
                     "lab": "", "k": "", "m": "", "gateways_per_region": "",
                     "note": "not expressible: " + why})
    return rows
