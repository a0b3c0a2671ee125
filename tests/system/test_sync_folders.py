"""Sync client, folders: two devices of one subscriber (two state dirs, two
gateways in two regions, one lab) syncing one volume converge through
edits, renames, deletes, concurrent edits (both kept, the loser as
NAME.conflict-<device>-<time>.EXT) and .mistoreignore rules; continuous
mode picks up a new file; a deleted file and a whole volume at a snapshot
are restored."""

import json
import os
import shutil
import signal
import subprocess
import time

from labutil import LabTestCase, closed_port, write_random_file


def labutil_closed_port():
    return f"127.0.0.1:{closed_port()}"

MIB = 1 << 20


def tree_of(root):
    """{relative path: bytes} of every regular file under root."""
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = fh.read()
    return out


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


class SyncFolders(LabTestCase):
    LAB_OPTIONS = {"pops": 2, "gateways_per_pop": 6, "k": 4, "m": 2}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        gws = sorted((n for n in cls.lab.nodes("gateway")), key=lambda n: n["id"])
        regions = {}
        for n in gws:
            regions.setdefault(n.get("region"), n["id"])
        first, second = list(regions.values())[:2] if len(regions) > 1 else (gws[0]["id"], gws[-1]["id"])
        cls.conf = {}
        for device, gw in (("laptop", first), ("phone", second)):
            state = os.path.join(cls.lab.dir, f"state-{device}")
            path = cls.lab.write_client_conf(gw, os.path.join(cls.lab.dir, f"{device}.conf"), state)
            with open(path, "a") as f:
                f.write(f"device = {device}\n")
            cls.conf[device] = path

    def sync(self, device, folder, volume, *extra, check=True):
        p = self.lab.client("sync", folder, "--volume", volume, "--once", "--json", *extra,
                            conf=self.conf[device], check=check, timeout=120)
        lines = [json.loads(l) for l in p.stdout.decode().splitlines() if l.strip()]
        summary = [l for l in lines if l["event"] == "summary"]
        if check:
            self.assertEqual(len(summary), 1, p.stdout)
            for key in ("files", "bytes_sent", "bytes_received", "seconds"):
                self.assertIn(key, summary[0])
        return p, lines, (summary[0] if summary else None)

    def folder(self, name):
        d = self.scratch(name)
        os.makedirs(d, exist_ok=True)
        return d

    def test_two_devices_converge(self):
        a, b = self.folder("conv-a"), self.folder("conv-b")
        write(os.path.join(a, "notes.txt"), "v1 notes\n")
        write(os.path.join(a, "docs/report.md"), "# report\n")
        write(os.path.join(a, "docs/old.md"), "to be renamed\n")
        write(os.path.join(a, "gone.txt"), "to be deleted\n")
        os.makedirs(os.path.join(a, "photos"))
        write_random_file(os.path.join(a, "photos/big.bin"), 8 * MIB)
        write(os.path.join(a, ".mistoreignore"), "# local junk\n*.tmp\nbuild/\n!keep.tmp\n")
        write(os.path.join(a, "scratch.tmp"), "never leaves laptop")
        write(os.path.join(a, "keep.tmp"), "re-included")
        write(os.path.join(a, "build/out.o"), "object code")
        _, _, s = self.sync("laptop", a, "conv")
        self.assertEqual(s["uploaded"], 7, s)  # ignore file + 6 files; *.tmp and build/ stay
        self.assertGreaterEqual(s["bytes_sent"], 8 * MIB)
        _, _, s = self.sync("phone", b, "conv")
        self.assertEqual(s["downloaded"], 7, s)
        tb = tree_of(b)
        self.assertNotIn("scratch.tmp", tb, "an ignored file was synced")
        self.assertNotIn("build/out.o", tb, "a file in an ignored directory was synced")
        self.assertEqual(tb["keep.tmp"], b"re-included", "a negated pattern must re-include")
        ignored = {"scratch.tmp", "build/out.o"}
        self.assertEqual({k: v for k, v in tree_of(a).items() if k not in ignored}, tb)

        # laptop: edit, rename, delete; phone: add. Then both ways.
        write(os.path.join(a, "notes.txt"), "v2 notes from laptop\n")
        os.rename(os.path.join(a, "docs/old.md"), os.path.join(a, "docs/new.md"))
        os.remove(os.path.join(a, "gone.txt"))
        write(os.path.join(b, "from-phone.txt"), "hello from the phone\n")
        _, _, s1 = self.sync("laptop", a, "conv")
        self.assertEqual(s1["bytes_sent"] < MIB, True, "no big file should travel again")
        _, _, s2 = self.sync("phone", b, "conv")
        self.sync("laptop", a, "conv")
        tb = tree_of(b)
        self.assertEqual(tb["notes.txt"], b"v2 notes from laptop\n")
        self.assertNotIn("docs/old.md", tb, "the rename's old name must go")
        self.assertEqual(tb["docs/new.md"], b"to be renamed\n")
        self.assertNotIn("gone.txt", tb, "the delete must reach the phone")
        self.assertEqual({k: v for k, v in tree_of(a).items() if k not in ignored}, tb)

        # One byte changed in the middle of the big file: one chunk goes up,
        # and the phone rebuilds the rest from its own copy.
        with open(os.path.join(a, "photos/big.bin"), "r+b") as f:
            f.seek(4 * MIB)
            byte = f.read(1)
            f.seek(4 * MIB)
            f.write(bytes([byte[0] ^ 1]))
        _, _, s1 = self.sync("laptop", a, "conv")
        _, _, s2 = self.sync("phone", b, "conv")
        print(f"\n[one byte changed in an 8 MiB file: laptop sent {s1['bytes_sent']} bytes, "
              f"phone received {s2['bytes_received']} bytes]")
        self.assertLess(s1["bytes_sent"], 4 * MIB + 256 * 1024)
        self.assertLess(s2["bytes_received"], 4 * MIB + 256 * 1024,
                        "the phone must reuse the unchanged chunks of its own copy")
        self.assertEqual(tree_of(b)["photos/big.bin"], tree_of(a)["photos/big.bin"])

        # Concurrent edits of one file: both kept.
        write(os.path.join(a, "notes.txt"), "laptop's concurrent edit\n")
        write(os.path.join(b, "notes.txt"), "phone's concurrent edit\n")
        self.sync("laptop", a, "conv")
        _, lines, s = self.sync("phone", b, "conv")
        self.assertEqual(s["conflicts"], 1, lines)
        self.sync("laptop", a, "conv")
        ta, tb = tree_of(a), tree_of(b)
        self.assertEqual({k: v for k, v in ta.items() if k not in ignored}, tb, "devices diverge")
        self.assertEqual(tb["notes.txt"], b"laptop's concurrent edit\n")
        copies = [k for k in tb if k.startswith("notes.conflict-phone-") and k.endswith(".txt")]
        self.assertEqual(len(copies), 1, sorted(tb))
        self.assertEqual(tb[copies[0]], b"phone's concurrent edit\n", "the losing edit was dropped")

    def test_restore_deleted_file_and_volume_snapshot(self):
        a = self.folder("snap-a")
        write(os.path.join(a, "keep.txt"), "first keep\n")
        write(os.path.join(a, "doomed.txt"), "precious words\n")
        self.sync("laptop", a, "snap")
        p = self.lab.client("snapshot", "--volume", "snap", "--label", "before", "--json",
                            conf=self.conf["laptop"])
        snap = json.loads(p.stdout.decode().splitlines()[-1])
        self.assertEqual(snap["event"], "snapshot")
        time.sleep(1.1)  # --at has one-second resolution
        middle = int(time.time())
        time.sleep(1.1)
        os.remove(os.path.join(a, "doomed.txt"))
        write(os.path.join(a, "keep.txt"), "second keep\n")
        write(os.path.join(a, "later.txt"), "added after the snapshot\n")
        self.sync("laptop", a, "snap")
        self.assertFalse(os.path.exists(os.path.join(a, "doomed.txt")))

        out = self.scratch("doomed.restored")
        self.lab.client("restore", "snap/doomed.txt", "-o", out, conf=self.conf["laptop"])
        with open(out, "rb") as f:
            self.assertEqual(f.read(), b"precious words\n", "a deleted file must be restorable")

        r = self.scratch("snap-restored")
        self.lab.client("restore", "--volume", "snap", "--version", str(snap["version"]), "-o", r,
                        conf=self.conf["phone"])
        self.assertEqual(tree_of(r), {"keep.txt": b"first keep\n", "doomed.txt": b"precious words\n"})
        r2 = self.scratch("snap-at")
        self.lab.client("restore", "--volume", "snap", "--at", str(middle), "-o", r2,
                        conf=self.conf["phone"])
        self.assertEqual(tree_of(r2), tree_of(r), "--at between snapshot and edits")
        p = self.lab.client("versions", "--volume", "snap", "--json", conf=self.conf["laptop"])
        versions = [json.loads(l) for l in p.stdout.decode().splitlines()]
        self.assertIn("before", [v["snapshot"] for v in versions])

    def test_nested_ignore_files(self):
        """Issue 9: .mistoreignore in subdirectories, gitignore semantics."""
        a, b = self.folder("nest-a"), self.folder("nest-b")
        write(os.path.join(a, ".mistoreignore"), "*.log\n")
        write(os.path.join(a, "src/.mistoreignore"), "*.o\n/gen/\n!debug.log\n")
        write(os.path.join(a, "src/sub/.mistoreignore"), "debug.log\n")
        for path in ("src/main.c", "src/main.o", "src/gen/x.c", "src/debug.log",
                     "src/sub/gen/y.c", "src/sub/debug.log", "app.log", "main.o"):
            write(os.path.join(a, path), "contents of " + path)
        _, _, s = self.sync("laptop", a, "nest")
        self.sync("phone", b, "nest")
        self.assertEqual(sorted(tree_of(b)), sorted([
            ".mistoreignore", "src/.mistoreignore", "src/sub/.mistoreignore",
            "src/main.c",       # not ignored anywhere
            "src/debug.log",    # src's file re-includes what the root ignores
            "src/sub/gen/y.c",  # /gen/ is anchored at src
            "main.o",           # src's *.o applies below src only
        ]), s)

    def test_ls_leaves_out_removed_objects(self):
        """Issue 9: `mistore ls` listed tombstones (0 bytes) of removed objects."""
        conf = self.conf["laptop"]
        f = self.scratch("ls-file")
        write(f, "some bytes")
        empty = self.scratch("ls-empty")
        write(empty, "")
        self.lab.client("put", f, "--name", "ls-kept", conf=conf)
        self.lab.client("put", f, "--name", "ls-removed", conf=conf)
        self.lab.client("put", empty, "--name", "ls-empty", conf=conf)
        self.lab.client("rm", "ls-removed", conf=conf)

        def listing(*extra):
            p = self.lab.client("ls", "--json", *extra, conf=conf)
            rows = [json.loads(l) for l in p.stdout.decode().splitlines() if l.strip()]
            return {r["name"]: r for r in rows if r["name"].startswith("ls-")}
        live = listing()
        self.assertEqual(sorted(live), ["ls-empty", "ls-kept"], live)
        everything = listing("--all")
        self.assertEqual(sorted(everything), ["ls-empty", "ls-kept", "ls-removed"], everything)
        self.assertEqual(everything["ls-removed"]["deleted"], True)
        self.assertEqual(everything["ls-removed"]["version"], 2)
        self.assertEqual(everything["ls-empty"]["deleted"], False)
        p = self.lab.client("ls", "--all", conf=conf)
        self.assertRegex(p.stdout.decode(), r"(?m)^ls-removed  v2  0  [0-9a-f]+  \(removed\)$")

    def test_continuous_mode_picks_up_changes(self):
        a, b = self.folder("cont-a"), self.folder("cont-b")
        write(os.path.join(a, "first.txt"), "one")
        cmd = [self.lab.client_bin(), "--config", self.conf["laptop"], "sync", a, "--volume", "cont",
               "--interval", "30", "--json"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=self.lab.client_env())
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                self.sync("phone", b, "cont")
                if os.path.exists(os.path.join(b, "first.txt")):
                    break
                time.sleep(0.5)
            self.assertTrue(os.path.exists(os.path.join(b, "first.txt")), "initial pass")
            # A new file on the laptop travels through inotify, well before
            # the 30 s rescan.
            t0 = time.monotonic()
            write(os.path.join(a, "second.txt"), "two")
            while time.monotonic() < t0 + 20:
                self.sync("phone", b, "cont")
                if os.path.exists(os.path.join(b, "second.txt")):
                    break
                time.sleep(0.5)
            self.assertTrue(os.path.exists(os.path.join(b, "second.txt")), "inotify did not trigger a pass")
            self.assertLess(time.monotonic() - t0, 20)
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 0, err)

    def test_simultaneous_syncs_lose_nothing(self):
        """Both devices commit the tree at the same moment, several times: the
        later commit must merge the other's (MergeTrees) instead of dropping it."""
        a, b = self.folder("race-a"), self.folder("race-b")
        self.sync("laptop", a, "race")
        self.sync("phone", b, "race")
        merges = 0
        for round_ in range(4):
            write(os.path.join(a, f"a{round_}.txt"), f"laptop {round_}")
            write(os.path.join(b, f"b{round_}.txt"), f"phone {round_}")
            procs = [subprocess.Popen([self.lab.client_bin(), "--config", self.conf[dev], "sync",
                                       d, "--volume", "race", "--once", "--json"],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      env=self.lab.client_env())
                     for dev, d in (("laptop", a), ("phone", b))]
            for p in procs:
                out, err = p.communicate(timeout=120)
                self.assertEqual(p.returncode, 0, err)
                merges += out.count(b'"event":"merge"')
        self.sync("laptop", a, "race")
        self.sync("phone", b, "race")
        self.sync("laptop", a, "race")
        print(f"\n[simultaneous syncs: {merges} concurrent tree commits merged]")
        want = {f"a{i}.txt": f"laptop {i}".encode() for i in range(4)}
        want.update({f"b{i}.txt": f"phone {i}".encode() for i in range(4)})
        self.assertEqual(tree_of(a), want)
        self.assertEqual(tree_of(b), want)

    def test_dry_run_changes_nothing(self):
        a = self.folder("dry-a")
        write(os.path.join(a, "x.txt"), "x")
        _, lines, s = self.sync("laptop", a, "dry", "--dry-run")
        self.assertEqual([l["event"] for l in lines if l["event"].startswith("would-")], ["would-upload"])
        p = self.lab.client("versions", "--volume", "dry", conf=self.conf["laptop"], check=False)
        self.assertEqual(p.returncode, 3, "a dry run must not create the volume")


class SyncBadInput(LabTestCase):
    """Unreadable file, disk full on restore, wrong passphrase: a clear
    message, a distinct exit code, nothing lost."""

    LAB_OPTIONS = {"pops": 2, "gateways_per_pop": 6, "k": 4, "m": 2}

    def test_status(self):
        p = self.lab.client("status", "--json")
        st = json.loads(p.stdout.decode().splitlines()[-1])
        self.assertEqual(st["event"], "status")
        self.assertEqual(st["gateway"], "reachable", st)
        self.assertEqual(st["key_mode"], "0600", "the key file must be private")
        self.assertEqual(st["subscriber"], self.lab.subscriber)
        # An unreachable gateway is a retryable failure (exit 4).
        conf = self.scratch("unreachable.conf")
        with open(self.lab.client_conf) as f, open(conf, "w") as g:
            for line in f:
                g.write(f"agent = {labutil_closed_port()}\n" if line.startswith("agent") else line)
        p = self.lab.client("status", conf=conf, check=False)
        self.assertEqual(p.returncode, 4, p.stdout + p.stderr)
        self.assertIn(b"unreachable", p.stdout)

    def test_wrong_passphrase(self):
        env = self.lab.client_env()
        env["MISTORE_PASSPHRASE"] = "not the passphrase"
        src = write_random_file(self.scratch("wp"), 1000)
        p = subprocess.run([self.lab.client_bin(), "--config", self.lab.client_conf, "put", src],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=60)
        self.assertEqual(p.returncode, 5, p.stderr)
        self.assertIn(b"wrong passphrase", p.stderr)
        self.assertNotIn(src.encode(), self.lab.client("ls").stdout, "nothing was stored")

    def test_disk_full_on_restore_keeps_old_file(self):
        src = write_random_file(self.scratch("full-src"), 3 * MIB)
        self.lab.put(src, "full")
        mnt = self.scratch("tiny")
        os.makedirs(mnt)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt],
                           stderr=subprocess.PIPE)
        if r.returncode != 0:
            self.skipTest(f"cannot mount a tmpfs: {r.stderr.decode()}")
        try:
            target = os.path.join(mnt, "full.out")
            write(target, "the old contents")
            p = self.lab.client("restore", "full", "-o", target, check=False)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn(b"No space left on device", p.stderr)
            with open(target, "rb") as f:
                self.assertEqual(f.read(), b"the old contents", "the old file was damaged")
            self.assertEqual(os.listdir(mnt), ["full.out"], "a partial file was left behind")
        finally:
            subprocess.run(["umount", mnt])

    def test_unreadable_file_is_reported_and_skipped(self):
        # As root every file is readable: run the client as nobody.
        base = self.scratch("nobody")
        os.makedirs(base)
        state = os.path.join(base, "state")
        os.makedirs(state)
        shutil.copy(os.path.join(self.lab.dir, "client", "master.key"), os.path.join(state, "master.key"))
        conf = self.lab.write_client_conf(self.lab.nodes("gateway")[0]["id"],
                                          os.path.join(base, "nobody.conf"), state)
        with open(conf, "a") as f:
            f.write(f"key_file = {os.path.join(state, 'master.key')}\n")
        folder = os.path.join(base, "dir")
        write(os.path.join(folder, "good.txt"), "readable")
        write(os.path.join(folder, "secret.txt"), "unreadable")
        for d, dirs, files in os.walk(base):
            os.chown(d, 65534, 65534)
            for f in files:
                os.chown(os.path.join(d, f), 65534, 65534)
        os.chown(os.path.join(folder, "secret.txt"), 0, 0)
        os.chmod(os.path.join(folder, "secret.txt"), 0)
        for d in (self.lab.dir, self.lab.work):
            os.chmod(d, 0o755)
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
               self.lab.client_bin(), "--config", conf, "sync", folder, "--volume", "bad", "--once"]
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=self.lab.client_env(), timeout=120)
        self.assertEqual(p.returncode, 6, p.stderr)
        self.assertIn(b"secret.txt", p.stderr)
        self.assertIn(b"Permission denied", p.stderr)
        out = self.scratch("bad-restored")
        self.lab.client("restore", "--volume", "bad", "-o", out)
        self.assertEqual(tree_of(out), {"good.txt": b"readable"}, "the readable file must be synced")
        # Readable again: the next pass uploads it; nothing was lost.
        os.chmod(os.path.join(folder, "secret.txt"), 0o644)
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=self.lab.client_env(), timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        out2 = self.scratch("bad-restored-2")
        self.lab.client("restore", "--volume", "bad", "-o", out2)
        self.assertEqual(tree_of(out2), {"good.txt": b"readable", "secret.txt": b"unreadable"})


if __name__ == "__main__":
    import unittest
    unittest.main()
