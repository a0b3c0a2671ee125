"""cross-toolchains/src-deb.sh: fetching Debian's source packages of
gf-complete and jerasure for the static agent, and the message that names
why a file is missing. A stand-in apt-get (APT_GET) plays the mirror: it
writes a .dsc and the files it "has" into the current folder and prints
apt's own error lines for the others, as the real one does (this machine's
mirror answers 404 for jerasure's debian.tar.xz).
"""

import hashlib
import io
import os
import subprocess
import tarfile
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC_DEB = os.path.join(HERE, "..", "..", "cross-toolchains", "src-deb.sh")
NAME, UPVER, VER = "jerasure", "2.0.0+git.x", "2.0.0+git.x-2"
URL = "http://deb.debian.org/debian/pool/main/j/jerasure/"
ORIG = "%s_%s.orig.tar.xz" % (NAME, UPVER)
DIFF = "%s_%s.debian.tar.xz" % (NAME, VER)
HEADER = b"int jerasure_thing(int w);\n"


def tar_xz(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as t:
        for name, body in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            t.addfile(info, io.BytesIO(body))
    return buf.getvalue()


class SrcDebTest(unittest.TestCase):
    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="mistore-srcdeb-")
        self.src = os.path.join(self.work, "src-deb")
        self.mirror = os.path.join(self.work, "mirror")
        self.inc = os.path.join(self.work, "include")
        for d in (self.src, self.mirror, os.path.join(self.inc, NAME)):
            os.makedirs(d)
        self.files = {
            ORIG: tar_xz({"jerasure-git/include/jerasure.h": HEADER,
                          "jerasure-git/src/jerasure.c": b"int x;\n"}),
            DIFF: tar_xz({"debian/source/format": b"3.0 (quilt)\n"}),
        }
        with open(os.path.join(self.inc, "jerasure.h"), "wb") as f:
            f.write(HEADER)
        self.apt_get = os.path.join(self.work, "apt-get")
        with open(self.apt_get, "w") as f:
            f.write("#!/bin/sh\n"
                    "[ -f %(m)s/no-deb-src ] && { echo \"E: You must put some 'deb-src' URIs in your sources.list\"; exit 100; }\n"
                    "cp %(m)s/* . 2>/dev/null\n"
                    "for f in %(m)s/*.404; do [ -e \"$f\" ] || continue; b=$(basename \"$f\" .404);"
                    " u=$(printf %%s \"$b\" | sed 's/+/%%2b/g');"
                    " echo \"E: Failed to fetch %(url)s$u  404  Not Found [IP: 203.0.113.80 80]\"; done\n"
                    "rm -f ./*.404 ./no-deb-src\n"
                    "exit 100\n" % {"m": self.mirror, "url": URL})
        os.chmod(self.apt_get, 0o755)

    def tearDown(self):
        subprocess.run(["rm", "-rf", self.work])

    def publish(self, missing=(), corrupt=()):
        lines = ["Format: 3.0 (quilt)", "Source: %s" % NAME, "Version: %s" % VER,
                 "Checksums-Sha256:"]
        for name, body in self.files.items():
            lines.append(" %s %d %s" % (hashlib.sha256(body).hexdigest(), len(body), name))
            if name in missing:
                open(os.path.join(self.mirror, name + ".404"), "w").close()
                continue
            with open(os.path.join(self.mirror, name), "wb") as f:
                f.write(body + (b"x" if name in corrupt else b""))
        with open(os.path.join(self.mirror, "%s_%s.dsc" % (NAME, VER)), "w") as f:
            f.write("\n".join(lines) + "\nFiles:\n")

    def fetch(self, **env):
        script = '. "%s"; src_fetch %s' % (SRC_DEB, NAME)
        return subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                              env=dict(os.environ, SRC_DIR=self.src, APT_GET=self.apt_get,
                                       SRC_DEV_INCLUDE=self.inc, **env))

    def test_missing_debian_diff_names_the_404_and_builds_from_upstream(self):
        self.publish(missing=[DIFF])
        run = self.fetch()
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertIn("404 Not Found for %s%s" % (URL, DIFF.replace("+", "%2b")), run.stderr)
        self.assertIn("mirror sync in progress", run.stderr)
        self.assertIn("WARNING", run.stderr)
        with open(os.path.join(self.src, NAME + ".dir")) as f:
            tree = os.path.join(self.src, f.read().strip())
        self.assertEqual(os.path.basename(tree), "%s-%s" % (NAME, UPVER))
        self.assertTrue(os.path.isfile(os.path.join(tree, "src", "jerasure.c")))
        with open(os.path.join(self.src, NAME + ".note")) as f:
            note = f.read()
        self.assertIn("without Debian's diff %s" % DIFF, note)
        # Every later run repeats the warning (not silently forgotten).
        again = self.fetch()
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertIn("WARNING: " + note.strip(), again.stderr)

    def test_required_debian_diff_is_an_error_naming_the_cause(self):
        self.publish(missing=[DIFF])
        run = self.fetch(MISTORE_REQUIRE_DEBIAN_DIFF="1")
        self.assertEqual(run.returncode, 1)
        self.assertIn("ERROR: MISTORE_REQUIRE_DEBIAN_DIFF=1", run.stderr)
        self.assertIn("404 Not Found", run.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.src, NAME + ".dir")))

    def test_upstream_headers_unlike_debian_refused(self):
        with open(os.path.join(self.inc, "jerasure.h"), "wb") as f:
            f.write(HEADER + b"int debian_added(void);\n")
        self.publish(missing=[DIFF])
        run = self.fetch()
        self.assertEqual(run.returncode, 1)
        self.assertIn("differ from the installed Debian package", run.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.src, NAME + ".dir")))

    def test_missing_upstream_tarball_is_an_error_naming_file_and_cause(self):
        self.publish(missing=[ORIG])
        run = self.fetch()
        self.assertEqual(run.returncode, 1)
        self.assertIn("ERROR: jerasure %s: %s" % (VER, ORIG), run.stderr)
        self.assertIn("404 Not Found", run.stderr)

    def test_corrupt_tarball_is_an_error(self):
        self.publish(corrupt=[ORIG])
        run = self.fetch()
        self.assertEqual(run.returncode, 1)
        self.assertIn("does not match the SHA-256", run.stderr)

    def test_no_deb_src_lines_named(self):
        open(os.path.join(self.mirror, "no-deb-src"), "w").close()
        run = self.fetch()
        self.assertEqual(run.returncode, 1)
        self.assertIn("cannot fetch Debian's source package jerasure", run.stderr)
        self.assertIn("no deb-src", run.stderr)

    def test_complete_source_package_unpacked_by_dpkg_source(self):
        self.publish()
        run = self.fetch()
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertNotIn("WARNING", run.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.src, NAME + ".note")))
        with open(os.path.join(self.src, NAME + ".dir")) as f:
            tree = os.path.join(self.src, f.read().strip())
        self.assertTrue(os.path.isfile(os.path.join(tree, "src", "jerasure.c")))
        self.assertTrue(os.path.isfile(os.path.join(tree, "debian", "source", "format")))


if __name__ == "__main__":
    unittest.main()
