#!/usr/bin/env python3
"""Sync client vs Syncthing, side by side in one run (issue 9).

Two devices of one subscriber syncing one folder through a local Mistore lab
(tools/mistore-lab: a DC, 2 POPs, 12 gateway agents on loopback), against two
Syncthing instances syncing the same content directly over loopback
(discovery, relays and NAT off; scans triggered over the REST API). For each
scenario: bytes the first device sent, and wall time until the second device
has the data.

  (a) initial folder of mixed files (one large file, medium files, small files)
  (b) a one-byte change in the middle of a large file
  (c) 10,000 small files

Mistore time = `mistore sync --once` on device A (upload) + on device B
(download). Bytes sent = A's payload bytes (`bytes_sent` of its --json
summary); Syncthing's = A's outBytesTotal (/rest/system/connections).
Also the client's peak RSS (wait4 ru_maxrss over every client process).

Not part of the default test run (minutes, GiBs of disk). Run:
  MISTORE_BIN_DIR=build/release/bin python3 tests/bench/sync_vs_syncthing.py \\
      [--size-mib 1024] [--small-files 10000] [--scenarios abc] [--onebyte-mib N]
Each scenario runs Mistore then Syncthing and prints its table row at once.
Needs the Debian package `syncthing`.
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "system"))
import labutil  # noqa: E402

MIB = 1 << 20
PEAK_RSS_KIB = [0]


def run_client_rss(lab, conf, *args, timeout=3600):
    """Runs the client; returns (stdout, peak RSS KiB) using wait4."""
    cmd = [lab.client_bin(), "--config", conf] + list(args)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=lab.client_env())
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        o, e = out.read(), err.read()
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}: {e.decode()}")
    PEAK_RSS_KIB[0] = max(PEAK_RSS_KIB[0], ru.ru_maxrss)
    return o, ru.ru_maxrss


def mistore_sync(lab, conf, folder, volume):
    out, _ = run_client_rss(lab, conf, "sync", folder, "--volume", volume, "--once", "--json")
    lines = [json.loads(l) for l in out.decode().splitlines() if l.strip()]
    return [l for l in lines if l["event"] == "summary"][-1]


# ---------------------------------------------------------------- data sets

def random_file(path, size, rng):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(left, 4 * MIB)
            f.write(rng.randbytes(n))
            left -= n


def make_mixed(root, total, seed):
    """Half in one large file, a quarter in 32 medium files, a quarter in
    small files of 4-64 KiB."""
    rng = random.Random(seed)
    random_file(os.path.join(root, "large.bin"), total // 2, rng)
    for i in range(32):
        random_file(os.path.join(root, "medium", f"m{i:02d}.bin"), total // 4 // 32, rng)
    left, i = total // 4, 0
    while left > 0:
        n = min(left, rng.randint(4 << 10, 64 << 10))
        random_file(os.path.join(root, "small", f"d{i % 16}", f"s{i:05d}.dat"), n, rng)
        left -= n
        i += 1


def make_small(root, count, seed):
    rng = random.Random(seed)
    for i in range(count):
        random_file(os.path.join(root, f"d{i % 100:02d}", f"f{i:05d}.txt"), rng.randint(100, 4000), rng)


def flip_middle_byte(path):
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.seek(size // 2)
        b = f.read(1)
        f.seek(size // 2)
        f.write(bytes([b[0] ^ 0xFF]))


def tree_size(root):
    n = b = 0
    for d, _, files in os.walk(root):
        for f in files:
            if f.startswith(".st") or ".syncthing." in f:
                continue
            n += 1
            b += os.path.getsize(os.path.join(d, f))
    return n, b


# ---------------------------------------------------------------- syncthing

class Syncthing:
    def __init__(self, base, name, listen_port, gui_port):
        self.home = os.path.join(base, f"st-{name}")
        self.folder = os.path.join(base, f"st-{name}-folder")
        os.makedirs(self.folder, exist_ok=True)
        self.listen_port, self.gui_port = listen_port, gui_port
        self.apikey = f"bench-{name}-key"
        subprocess.run(["syncthing", "generate", f"--home={self.home}", "--no-default-folder",
                        "--skip-port-probing"], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        self.id = subprocess.run(["syncthing", "serve", f"--home={self.home}", "--device-id"],
                                 check=True, stdout=subprocess.PIPE).stdout.decode().strip()
        self.proc = None

    def configure(self, peer):
        path = os.path.join(self.home, "config.xml")
        tree = ET.parse(path)
        root = tree.getroot()
        for f in root.findall("folder"):
            root.remove(f)
        folder = ET.SubElement(root, "folder", id="bench", label="bench", path=self.folder,
                               type="sendreceive", rescanIntervalS="3600", fsWatcherEnabled="false",
                               ignorePerms="false", autoNormalize="true")
        for dev in (self.id, peer.id):
            ET.SubElement(folder, "device", id=dev)
        ET.SubElement(folder, "markerName").text = ".stfolder"
        os.makedirs(os.path.join(self.folder, ".stfolder"), exist_ok=True)
        dev = ET.SubElement(root, "device", id=peer.id, name="peer", compression="metadata",
                            introducer="false")
        ET.SubElement(dev, "address").text = f"tcp://127.0.0.1:{peer.listen_port}"
        gui = root.find("gui")
        gui.find("address").text = f"127.0.0.1:{self.gui_port}"
        key = gui.find("apikey")
        if key is None:
            key = ET.SubElement(gui, "apikey")
        key.text = self.apikey
        opts = root.find("options")

        def opt(name, value):
            e = opts.find(name)
            if e is None:
                e = ET.SubElement(opts, name)
            e.text = value
        for e in opts.findall("listenAddress"):
            opts.remove(e)
        ET.SubElement(opts, "listenAddress").text = f"tcp://127.0.0.1:{self.listen_port}"
        opt("globalAnnounceEnabled", "false")
        opt("localAnnounceEnabled", "false")
        opt("relaysEnabled", "false")
        opt("natEnabled", "false")
        opt("startBrowser", "false")
        opt("urAccepted", "-1")
        opt("crashReportingEnabled", "false")
        opt("autoUpgradeIntervalH", "0")
        tree.write(path)

    def start(self):
        log = open(os.path.join(self.home, "log.txt"), "wb")
        env = dict(os.environ, STNOUPGRADE="1", STNODEFAULTFOLDER="1")
        self.proc = subprocess.Popen(["syncthing", "serve", f"--home={self.home}", "--no-browser",
                                      "--no-restart"], stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                self.get("/rest/system/ping")
                return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("syncthing did not start")

    def stop(self):
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def req(self, method, path):
        r = urllib.request.Request(f"http://127.0.0.1:{self.gui_port}{path}", method=method,
                                   headers={"X-API-Key": self.apikey})
        with urllib.request.urlopen(r, timeout=30) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def get(self, path):
        return self.req("GET", path)

    def out_bytes(self):
        return self.get("/rest/system/connections")["total"]["outBytesTotal"]

    def scan(self):
        self.req("POST", "/rest/db/scan?folder=bench")

    def wait_connected(self, peer):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            c = self.get("/rest/system/connections")["connections"].get(peer.id, {})
            if c.get("connected"):
                return
            time.sleep(0.3)
        raise RuntimeError("syncthing instances did not connect")


def syncthing_round(a, b, expect):
    """Scan A, wait until B holds `expect` (files, bytes) and is idle.
    Returns (seconds, bytes A sent)."""
    sent0 = a.out_bytes()
    t0 = time.monotonic()
    a.scan()
    while True:
        st = b.get("/rest/db/status?folder=bench")
        if (st["state"] == "idle" and st["needFiles"] == 0 and st["needBytes"] == 0
                and tree_size(b.folder) == expect):
            break
        if time.monotonic() - t0 > 7200:
            raise RuntimeError("syncthing did not converge")
        time.sleep(0.2)
    secs = time.monotonic() - t0
    time.sleep(1.0)  # let the last index updates settle before reading counters
    return secs, a.out_bytes() - sent0


# ---------------------------------------------------------------- main

SCENARIOS = ("a", "b", "c")


def scenario_name(key, args):
    return {"a": f"(a) initial {args.size_mib} MiB mixed folder",
            "b": f"(b) one byte changed in a {args.onebyte_mib} MiB file",
            "c": f"(c) {args.small_files:,} small files"}[key]


def table_row(name, m, s):
    return (f"| {name} | {m[0]:,} | {s[0]:,} | {m[0] / max(s[0], 1):.2f} | "
            f"{m[1]:.1f} | {s[1]:.1f} | {m[1] / max(s[1], 1e-9):.2f} |")


def load_text():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--small-files", type=int, default=10000)
    ap.add_argument("--onebyte-mib", type=int, default=0,
                    help="size of scenario (b)'s file (default: --size-mib)")
    ap.add_argument("--scenarios", default="abc",
                    help="which scenarios, in this order (default abc)")
    args = ap.parse_args()
    if not shutil.which("syncthing"):
        sys.exit("syncthing is not installed (apt-get install syncthing)")
    if not args.scenarios or any(c not in SCENARIOS for c in args.scenarios):
        sys.exit("--scenarios takes letters of abc")
    size = args.size_mib * MIB
    args.onebyte_mib = args.onebyte_mib or args.size_mib
    big_size = args.onebyte_mib * MIB
    # Each scenario runs Mistore, then Syncthing on the same content, and
    # prints its row at once: a run cut short still has whole rows.
    lab = labutil.Lab(pops=2, gateways_per_pop=6, k=4, m=2)
    base = tempfile.mkdtemp(prefix="mistore-bench-st-")
    a = b = None
    rows = []
    try:
        lab.up()
        lab.init_client()
        confs = {}
        gws = sorted(lab.nodes("gateway"), key=lambda n: n["id"])
        for dev, gw in (("a", gws[0]["id"]), ("b", gws[-1]["id"])):
            path = lab.write_client_conf(gw, os.path.join(lab.dir, f"{dev}.conf"),
                                         os.path.join(lab.dir, f"state-{dev}"))
            with open(path, "a") as f:
                f.write(f"device = bench-{dev}\n")
            confs[dev] = path
        ports = labutil.labtool.pick_free_ports(4)
        a = Syncthing(base, "a", ports[0], ports[1])
        b = Syncthing(base, "b", ports[2], ports[3])
        a.configure(b)
        b.configure(a)
        a.start()
        b.start()
        a.wait_connected(b)

        def mistore_case(label, volume, prepare, change=None):
            fa, fb = os.path.join(lab.work, f"{volume}-a"), os.path.join(lab.work, f"{volume}-b")
            os.makedirs(fa)
            os.makedirs(fb)
            prepare(fa)
            if change:
                mistore_sync(lab, confs["a"], fa, volume)
                mistore_sync(lab, confs["b"], fb, volume)
                change(fa)
            PEAK_RSS_KIB[0] = 0
            t0 = time.monotonic()
            sa = mistore_sync(lab, confs["a"], fa, volume)
            mistore_sync(lab, confs["b"], fb, volume)
            secs = time.monotonic() - t0
            if tree_size(fa) != tree_size(fb):
                raise RuntimeError(f"mistore {label}: folders differ")
            print(f"mistore   {label}: {sa['bytes_sent']} bytes sent, {secs:.1f} s, "
                  f"client peak RSS {PEAK_RSS_KIB[0] / 1024:.1f} MiB (load {load_text()})",
                  flush=True)
            shutil.rmtree(fa, ignore_errors=True)
            shutil.rmtree(fb, ignore_errors=True)
            return sa["bytes_sent"], secs, PEAK_RSS_KIB[0]

        def st_case(label, prepare, change=None):
            for f in os.listdir(a.folder):
                if f != ".stfolder":
                    p = os.path.join(a.folder, f)
                    shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
            syncthing_round(a, b, tree_size(a.folder))
            prepare(a.folder)
            if change:
                syncthing_round(a, b, tree_size(a.folder))
                change(a.folder)
            secs, sent = syncthing_round(a, b, tree_size(a.folder))
            print(f"syncthing {label}: {sent} bytes sent, {secs:.1f} s (load {load_text()})",
                  flush=True)
            return sent, secs

        big = lambda d: random_file(os.path.join(d, "big.bin"), big_size, random.Random(2))
        flip = lambda d: flip_middle_byte(os.path.join(d, "big.bin"))
        cases = {
            "a": (("mixed", lambda d: make_mixed(d, size, 1), None),
                  (lambda d: make_mixed(d, size, 1), None)),
            "b": (("onebyte", big, flip), (big, flip)),
            "c": (("small", lambda d: make_small(d, args.small_files, 3), None),
                  (lambda d: make_small(d, args.small_files, 3), None)),
        }
        print(f"start {time.strftime('%H:%M:%S', time.gmtime())} UTC, load {load_text()}",
              flush=True)
        for key in args.scenarios:
            (volume, prep, change), (st_prep, st_change) = cases[key]
            m = mistore_case(key, volume, prep, change)
            s = st_case(key, st_prep, st_change)
            rows.append((key, m, s))
            print(table_row(scenario_name(key, args), m, s), flush=True)
    finally:
        for inst in (a, b):
            if inst:
                inst.stop()
        shutil.rmtree(base, ignore_errors=True)
        lab.teardown()

    print()
    print("| scenario | Mistore bytes sent | Syncthing bytes sent | ratio | Mistore s | Syncthing s | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for key, m, s in rows:
        print(table_row(scenario_name(key, args), m, s))
    peak = max(m[2] for _, m, _ in rows)
    print(f"\nmistore client peak RSS: {peak / 1024:.1f} MiB "
          f"(per scenario: {', '.join(f'{k} {m[2] / 1024:.1f}' for k, m, _ in rows)})")
    print(f"end {time.strftime('%H:%M:%S', time.gmtime())} UTC, load {load_text()}")


if __name__ == "__main__":
    main()
