"""Sync client, transfers: only changed chunks travel (one-byte change in the
middle of a large file), --dry-run, and an upload killed half-way resumes
without resending the chunks the POP acknowledged.

The default size is 64 MiB; the 1 GiB variant of the issue is one command:
  MISTORE_SYNC_BIG=1 MISTORE_BIN_DIR=build/release/bin \\
      python3 -m unittest -v test_sync_delta      (from tests/system)
"""

import json
import os
import signal
import subprocess
import time

from labutil import LabTestCase, write_random_file

MIB = 1 << 20
SIZE = (1024 if os.environ.get("MISTORE_SYNC_BIG") else 64) * MIB
CHUNK_MAX = 4 * MIB + 40  # largest sealed chunk


def json_lines(p):
    return [json.loads(l) for l in p.stdout.decode().splitlines() if l.strip()]


class SyncDelta(LabTestCase):
    LAB_OPTIONS = {"pops": 2, "gateways_per_pop": 6, "k": 4, "m": 2}

    def put_json(self, path, name, *extra):
        p = self.lab.client("put", path, "--name", name, "--json", *extra,
                            timeout=self.lab._io_timeout(path))
        lines = json_lines(p)
        put = [l for l in lines if l["event"] in ("put", "would-put")]
        summary = [l for l in lines if l["event"] == "summary"]
        self.assertEqual(len(put), 1, lines)
        self.assertEqual(len(summary), 1, lines)
        for key in ("files", "bytes_sent", "bytes_received", "seconds"):
            self.assertIn(key, summary[0])
        return put[0], summary[0]

    def test_one_byte_change_sends_at_most_two_chunks(self):
        src = write_random_file(self.scratch("big"), SIZE)
        first, s1 = self.put_json(src, "big")
        self.assertEqual(first["version"], 1)
        self.assertEqual(first["chunks_sent"], first["chunks"], "a new file sends every chunk")
        self.assertGreaterEqual(s1["bytes_sent"], SIZE)
        with open(src, "r+b") as f:
            f.seek(SIZE // 2)
            b = f.read(1)
            f.seek(SIZE // 2)
            f.write(bytes([b[0] ^ 0xFF]))
        dry, _ = self.put_json(src, "big", "--dry-run")
        self.assertLessEqual(dry["chunks_sent"], 2, dry)
        second, s2 = self.put_json(src, "big")
        self.assertEqual(second["version"], 2, "--dry-run must not have committed a version")
        print(f"\n[{SIZE // MIB} MiB file, one byte changed in the middle: "
              f"{second['chunks_sent']} of {second['chunks']} chunks sent, "
              f"{s2['bytes_sent']} bytes on the wire (first put: {s1['bytes_sent']} bytes)]")
        self.assertGreaterEqual(second["chunks_sent"], 1)
        self.assertLessEqual(second["chunks_sent"], 2)
        # two chunks plus the commit (its manifest lists every chunk id)
        self.assertLess(s2["bytes_sent"], 2 * CHUNK_MAX + 64 * 1024 + 200 * second["chunks"])
        out = self.scratch("big.out")
        self.lab.get("big", out, size_hint=SIZE)
        self.assertFilesEqual(src, out, "the delta-uploaded version reads back whole")
        self.lab.get("big", out, version=1, size_hint=SIZE)
        with open(out, "rb") as f:
            f.seek(SIZE // 2)
            self.assertEqual(f.read(1), b, "version 1 still has the old byte")

    def test_killed_upload_resumes_without_resending(self):
        size = min(SIZE, 64 * MIB)
        src = write_random_file(self.scratch("resume"), size)
        cmd = [self.lab.client_bin(), "--config", self.lab.client_conf, "put", src,
               "--name", "resume", "--bwlimit", "16M", "--json"]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=self.lab.client_env())
        # Kill once 28 MiB have left the process (wchar counts socket
        # writes): with at most 4 chunks (<= 16 MiB) in flight, at least
        # 12 MiB of chunks were acknowledged by then.
        deadline = time.monotonic() + 60
        written = 0
        while time.monotonic() < deadline and p.poll() is None:
            try:
                with open(f"/proc/{p.pid}/io") as f:
                    written = int([l for l in f if l.startswith("wchar:")][0].split()[1])
            except OSError:
                break
            if written >= 28 * MIB:
                break
            time.sleep(0.05)
        self.assertGreaterEqual(written, 28 * MIB, "the upload never got going")
        p.send_signal(signal.SIGKILL)
        p.communicate(timeout=30)
        self.assertEqual(p.returncode, -signal.SIGKILL, "the upload was still running when killed")
        t0 = time.monotonic()
        put, summary = self.put_json(src, "resume")
        print(f"\n[resume after kill: {put['chunks_sent']} of {put['chunks']} chunks sent again, "
              f"{summary['bytes_sent']} bytes, {time.monotonic() - t0:.1f} s]")
        self.assertEqual(put["version"], 1, "the killed put committed nothing")
        self.assertLessEqual(put["chunks_sent"], put["chunks"] - 3,
                        "chunks acknowledged before the kill were sent again")
        self.assertLess(summary["bytes_sent"], size - 12 * MIB)
        out = self.scratch("resume.out")
        self.lab.get("resume", out, size_hint=size)
        self.assertFilesEqual(src, out, "resumed upload")

    def test_bwlimit_slows_the_upload(self):
        src = write_random_file(self.scratch("slow"), 8 * MIB)
        t0 = time.monotonic()
        self.put_json(src, "slow", "--bwlimit", "4M")
        elapsed = time.monotonic() - t0
        self.assertGreater(elapsed, 1.4, "8 MiB at 4 MiB/s cannot take under ~1.5 s")

    def test_piped_output_has_no_progress_noise(self):
        src = write_random_file(self.scratch("quiet"), 3 * MIB)
        p = self.lab.client("put", src, "--name", "quiet")
        self.assertNotIn(b"\r", p.stderr + p.stdout, "progress must not be drawn when piped")
        self.assertEqual(p.stderr, b"")
        q = self.lab.client("put", src, "--name", "quiet", "-q")
        self.assertEqual(q.stdout, b"", "-q prints nothing on success")


if __name__ == "__main__":
    import unittest
    unittest.main()
