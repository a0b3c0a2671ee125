"""A device away from home works directly through a POP (issue 9, `mistore
--pop ADDR`), with real daemons on a (secure) lab. The device first stores a
file through its home gateway; it is enrolled with a one-time client token
(`mistore-dc enroll --role client --subscriber alice`, then `mistore enroll
TOKEN --dc ADDR`: a 0600 key and a DC-signed certificate of role client);
then, through a POP and not the gateway, it reads that file, writes a new
one (whose oid names the device's node id as its creator), lists, removes
and syncs a folder, and all of it is seen through the gateway. Refused, each
with exit 5 and one line naming the reason: a device enrolled for another
subscriber claiming alice, a device without credentials, a reused token.
The POP counts the devices it served (mistore_pop_devices_admitted_total)."""

import os
import re
import stat
import subprocess

from labutil import (LabTestCase, PUT_RE, decode_oid, lab_metrics, labtool,
                     write_random_file)

EXIT_DENIED = 5


class DeviceThroughPop(LabTestCase):
    LAB_OPTIONS = {"pops": 2, "gateways_per_pop": 3, "k": 2, "m": 1, "secure": True}

    # ---- helpers
    def dc_enroll(self, subscriber):
        dc = self.lab.node("dc")
        cmd = [labtool.binary_path(self.lab.state["bin_dir"], "dc"),
               "--data-dir=" + dc["data_dir"], "enroll", "--role", "client",
               "--region", "r1", "--subscriber", subscriber]
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace"))
        token = p.stdout.decode().strip()
        self.assertRegex(token, r"^mse1\.[0-9a-f]{16}\.[0-9a-f]{32}\.[0-9a-f]{32}$")
        return token

    def device_conf(self, name, subscriber, identity=None):
        """A client config of this lab's subscriber keys, its own state dir
        and device identity files (identity: another device's dir)."""
        base = os.path.join(self.lab.dir, "dev-" + name)
        ident = identity or os.path.join(base, "identity")
        os.makedirs(base, exist_ok=True)
        keep = []
        with open(self.lab.client_conf) as f:
            for line in f:
                key = line.split("=", 1)[0].strip()
                if key not in ("subscriber", "state_dir"):
                    keep.append(line)
        path = os.path.join(base, "client.conf")
        with open(path, "w") as f:
            f.writelines(keep)
            f.write(f"subscriber = {subscriber}\n")
            f.write(f"state_dir = {os.path.join(base, 'state')}\n")
            f.write(f"pairing_file = {os.path.join(base, 'pairing')}\n")
            f.write(f"device_key_file = {os.path.join(ident, 'device.key')}\n")
            f.write(f"device_cert_file = {os.path.join(ident, 'device.cert')}\n")
            f.write(f"ca_public_key_file = {os.path.join(ident, 'ca.pub')}\n")
            f.write(f"device = {name}\n")
        return path, ident

    def pop_addr(self):
        return [n for n in self.lab.nodes("pop") if n["id"] == "pop2"][0]["addr"]

    def via_pop(self, conf, *args, check=True, timeout=120):
        return self.lab.client("--pop", self.pop_addr(), *args, conf=conf, check=check,
                               timeout=timeout)

    def enrolled_device(self):
        if getattr(self.__class__, "_alice", None):
            return self.__class__._alice
        conf, ident = self.device_conf("laptop", "alice")
        p = self.lab.client("enroll", self.dc_enroll("alice"), "--dc",
                            self.lab.node("dc")["enrol_addr"], conf=conf)
        out = p.stdout.decode()
        m = re.search(r"enrolled as device (\d+) for subscriber alice", out)
        self.assertTrue(m, out)
        mode = stat.S_IMODE(os.stat(os.path.join(ident, "device.key")).st_mode)
        self.assertEqual(mode, 0o600, "device key mode %o" % mode)
        self.__class__._alice = (conf, int(m.group(1)))
        return self.__class__._alice

    # ---- tests
    def test_1_read_write_list_remove_and_sync_through_a_pop(self):
        home = self.scratch("home.bin")
        write_random_file(home, 600_000)
        self.lab.put(home, name="home.bin")

        conf, device_id = self.enrolled_device()
        self.assertGreaterEqual(device_id, 100000)  # a DC-assigned node id

        st = self.via_pop(conf, "status").stdout.decode()
        self.assertIn("pop:        " + self.pop_addr() + " (reachable", st)
        self.assertIn(f"enrolled:   device {device_id} for alice", st)

        # Read what was written at home, through the POP.
        back = self.scratch("home.back")
        self.via_pop(conf, "get", "home.bin", "-o", back)
        self.assertFilesEqual(home, back, "read through the POP")

        # Write through the POP; the new oid names the device as creator.
        away = self.scratch("away.bin")
        write_random_file(away, 700_000)
        out = self.via_pop(conf, "put", away, "--name", "away.bin").stdout.decode()
        m = PUT_RE.search(out)
        self.assertTrue(m, out)
        primary, backup, creator, _ = decode_oid(m.group(2))
        self.assertEqual(creator, device_id, "oid creator of a put through the POP")
        self.assertEqual(primary, 2, "the entry POP is the new object's primary")

        names = self.via_pop(conf, "ls").stdout.decode()
        self.assertIn("home.bin", names)
        self.assertIn("away.bin", names)

        # Seen at home, through the gateway.
        home_back = self.scratch("away.back")
        self.lab.get("away.bin", home_back)
        self.assertFilesEqual(away, home_back, "written through the POP, read at home")

        # Remove through the POP: gone from the gateway's listing.
        self.via_pop(conf, "rm", "home.bin")
        listing = self.lab.client("ls").stdout.decode()
        self.assertNotIn("home.bin", listing)
        self.assertIn("away.bin", listing)

        # Sync a folder through the POP; the gateway side gets the same files.
        src = self.scratch("trip")
        os.makedirs(os.path.join(src, "photos"))
        for i, size in enumerate((1000, 90_000, 300_000)):
            write_random_file(os.path.join(src, "photos", f"p{i}.jpg"), size)
        self.via_pop(conf, "sync", src, "--volume", "trip", "--once")
        dst = self.scratch("trip-home")
        os.makedirs(dst)
        self.lab.client("sync", dst, "--volume", "trip", "--once")
        for i in range(3):
            self.assertFilesEqual(os.path.join(src, "photos", f"p{i}.jpg"),
                                  os.path.join(dst, "photos", f"p{i}.jpg"), "synced via POP")

        metrics = lab_metrics(self.lab, "pop2")
        m = re.search(r"^mistore_pop_devices_admitted_total (\d+)", metrics, re.M)
        self.assertTrue(m and int(m.group(1)) >= 5, "devices admitted counter: %s" % (m and m.group(0)))
        self.assertAllAlive()

    def test_2_device_of_another_subscriber_is_refused(self):
        conf_bob, ident_bob = self.device_conf("bobs-phone", "bob")
        self.lab.client("enroll", self.dc_enroll("bob"), "--dc",
                        self.lab.node("dc")["enrol_addr"], conf=conf_bob)
        # Bob's certificate, a configuration claiming alice.
        conf_claim, _ = self.device_conf("bobs-phone-as-alice", "alice", identity=ident_bob)
        off = self.lab.log_offset("pop2")
        p = self.via_pop(conf_claim, "ls", check=False)
        err = p.stderr.decode()
        self.assertEqual(p.returncode, EXIT_DENIED, err)
        self.assertIn("alice", err)
        self.assertIn("bob", err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertTrue(self.lab.wait_log("pop2", off, "refused"), "no refusal logged by pop2")
        # Bob, as bob, sees nothing of alice's.
        p = self.via_pop(conf_bob, "ls")
        self.assertNotIn("away.bin", p.stdout.decode())
        self.assertAllAlive()

    def test_3_device_without_credentials_is_refused(self):
        conf, ident = self.device_conf("stranger", "alice")
        self.assertFalse(os.path.exists(ident))
        p = self.via_pop(conf, "get", "away.bin", "-o", self.scratch("x"), check=False)
        err = p.stderr.decode()
        self.assertEqual(p.returncode, EXIT_DENIED, err)
        self.assertIn("not enrolled", err)
        self.assertIn("mistore enroll", err)
        self.assertFalse(os.path.exists(self.scratch("x")))

    def test_4_a_used_token_is_refused(self):
        token = self.dc_enroll("alice")
        conf1, _ = self.device_conf("tablet", "alice")
        self.lab.client("enroll", token, "--dc", self.lab.node("dc")["enrol_addr"], conf=conf1)
        conf2, ident2 = self.device_conf("tablet-2", "alice")
        p = self.lab.client("enroll", token, "--dc", self.lab.node("dc")["enrol_addr"],
                            conf=conf2, check=False)
        err = p.stderr.decode()
        self.assertEqual(p.returncode, EXIT_DENIED, err)
        self.assertIn("enrolment token already used", err)
        self.assertFalse(os.path.exists(os.path.join(ident2, "device.cert")))


if __name__ == "__main__":
    import unittest
    unittest.main()
