"""Bad input never takes a daemon down and always yields one clear error line."""

import os
import struct
import unittest

from labutil import LabTestCase, closed_port, frame, send_raw, write_random_file

GIB = 1 << 30


def unknown_fields_envelope():
    """A well-formed protobuf message holding only fields Envelope lacks:
    field 1000 (varint 7) and field 1001 (bytes 'hello')."""
    def varint(v):
        out = bytearray()
        while True:
            b = v & 0x7F
            v >>= 7
            if v:
                out.append(b | 0x80)
            else:
                out.append(b)
                return bytes(out)
    return (varint(1000 << 3 | 0) + varint(7) +
            varint(1001 << 3 | 2) + varint(5) + b"hello")


def random_garbage(n=100):
    """n random bytes that cannot parse as protobuf: the first byte's wire type
    is 7 (invalid), so the test does not depend on luck."""
    data = bytearray(os.urandom(n))
    data[0] = (data[0] & 0x78) | 0x07
    return bytes(data)


class BadInput(LabTestCase):
    LAB_OPTIONS = {"pops": 3, "gateways_per_pop": 6, "k": 4, "m": 2}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.src = write_random_file(os.path.join(cls.lab.work, "good.bin"), 100000)
        try:
            cls.lab.put(cls.src, "good")
        except BaseException:
            cls.lab.teardown()
            raise

    def assertOneErrorLine(self, p, code, *needles):
        err = p.stderr.decode(errors="replace")
        lines = [l for l in err.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, f"expected exactly one line on stderr, got:\n{err}")
        line = lines[0]
        self.assertTrue(line.startswith("mistore: "), f"stderr line lacks 'mistore: ': {line!r}")
        if isinstance(code, int):
            self.assertEqual(p.returncode, code, f"exit code (stderr: {line!r})")
        else:
            self.assertIn(p.returncode, code, f"exit code (stderr: {line!r})")
        if needles:
            self.assertTrue(any(n.lower() in line.lower() for n in needles),
                            f"error line {line!r} names none of {needles}")
        return line

    def assertGoodGetWorks(self):
        out = self.scratch("good.out")
        if os.path.exists(out):
            os.unlink(out)
        self.lab.get("good", out)
        self.assertFilesEqual(self.src, out, "normal get after bad input")

    def write_conf(self, name, lines):
        path = self.scratch(name)
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def base_conf_lines(self, agent=None):
        gw = self.lab.node("gw1001")
        client_dir = os.path.join(self.lab.dir, "client")
        return [f"agent = {agent or gw['addr']}",
                f"subscriber = {self.lab.subscriber}",
                f"key_file = {os.path.join(client_dir, 'master.key')}",
                f"state_dir = {client_dir}"]

    # ---- client-side errors
    def test_put_missing_file(self):
        missing = self.scratch("does-not-exist.bin")
        p = self.lab.client("put", missing, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertNotEqual(p.returncode, 4, "a missing local file is not retryable")
        self.assertOneErrorLine(p, (1, 2, 3), "does-not-exist.bin")
        self.assertAllAlive()

    def test_get_unknown_name(self):
        p = self.lab.client("get", "no-such-object-name", "-o", self.scratch("nothing"),
                            check=False)
        self.assertOneErrorLine(p, 3, "no-such-object-name", "not found")
        self.assertAllAlive()

    def test_get_unknown_version(self):
        p = self.lab.client("get", "good", "--version", "99", "-o", self.scratch("nothing"),
                            check=False)
        self.assertOneErrorLine(p, 3, "not found", "version")
        self.assertAllAlive()

    def test_unreachable_agent(self):
        addr = f"127.0.0.1:{closed_port()}"
        conf = self.write_conf("unreachable.conf", self.base_conf_lines(agent=addr))
        p = self.lab.client("ls", conf=conf, check=False, timeout=120)
        self.assertOneErrorLine(p, 4, addr, "unreachable", "connect", "refused", "unavailable")
        self.assertAllAlive()

    def test_config_line_without_equals(self):
        lines = self.base_conf_lines()
        lines.insert(2, "this line has no equals sign")
        conf = self.write_conf("noequals.conf", lines)
        p = self.lab.client("ls", conf=conf, check=False)
        self.assertOneErrorLine(p, 2, "noequals.conf")
        self.assertAllAlive()

    def test_config_unknown_key(self):
        lines = self.base_conf_lines() + ["favourite_colour = blue"]
        conf = self.write_conf("unknownkey.conf", lines)
        p = self.lab.client("ls", conf=conf, check=False)
        self.assertOneErrorLine(p, 2, "favourite_colour")
        self.assertAllAlive()

    def test_missing_config_file(self):
        p = self.lab.client("ls", conf=self.scratch("no-such.conf"), check=False)
        self.assertOneErrorLine(p, 2, "no-such.conf")

    # ---- wire-level garbage
    def hostile(self, payload, what):
        # The POP's node port runs the secure transport (the default since
        # issue 4): garbage never reaches its frame decoder but is refused
        # before the handshake. The agent's client port speaks only the
        # device link (issue 4): anything else is a refused plaintext
        # connection.
        expected = {"pop1": "plaintext connection refused", "gw1001": "reason=plaintext"}
        for node_id in ("pop1", "gw1001"):
            with self.subTest(node=node_id, payload=what):
                node = self.lab.node(node_id)
                off = self.lab.log_offset(node_id)
                outcome = send_raw(node["addr"], payload)
                self.assertIn(outcome, ("closed", "reset"),
                              f"{node_id} kept the connection open after {what}")
                self.assertTrue(self.lab.alive(node_id), f"{node_id} died after {what}")
                self.assertTrue(self.lab.wait_log(node_id, off, expected[node_id]),
                                f"{node_id} log has no {expected[node_id]!r} after {what}:\n"
                                + self.lab.log_since(node_id, off)[-2000:])
                self.assertAllAlive()
                self.assertGoodGetWorks()

    def test_frame_header_announcing_1_gib(self):
        self.hostile(struct.pack("<I", GIB), "a frame header announcing 1 GiB")

    def test_random_bytes_frame(self):
        self.hostile(frame(random_garbage(100)), "a frame of 100 random bytes")

    def test_frame_with_unknown_fields_only(self):
        self.hostile(frame(unknown_fields_envelope()), "a frame with unknown fields only")


if __name__ == "__main__":
    unittest.main()
