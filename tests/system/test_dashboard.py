"""The DC's admin API (token required) and its dashboard, in headless
Chromium: the POPs and gateways it shows match lab.json, a killed gateway
shows as lost, and screenshots are saved (MISTORE_SCREENSHOT_DIR, else the
lab's temp dir: keep it with MISTORE_KEEP_LAB=1)."""

import json
import os
import sys
import time
import unittest

from labutil import (HeadlessChromium, LabTestCase, find_chromium, http_get, lab_admin_get,
                     lab_admin_token, lab_admin_url, write_random_file)

MIB = 1 << 20
VICTIM = "gw2004"  # not the client's gateway (gw1001)


class Dashboard(LabTestCase):
    LAB_OPTIONS = {"pops": 3, "gateways_per_pop": 4, "k": 2, "m": 1}

    def expected_hierarchy(self):
        """{pop id: (region, sorted gateway ids)} from lab.json."""
        out = {}
        pops = {n["id"]: n for n in self.lab.nodes("pop")}
        for nid, n in pops.items():
            out[int(nid[3:])] = (n["region"], [])
        for g in self.lab.nodes("gateway"):
            pop_id = int(g["region"][1:])  # the lab's region rN is POP N's
            out[pop_id][1].append(int(g["id"][2:]))
        return {p: (r, sorted(gws)) for p, (r, gws) in out.items()}

    def wait_overview(self, predicate, what, timeout=30.0):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            status, last, _ = lab_admin_get(self.lab, "api/overview")
            self.assertEqual(status, 200)
            if predicate(last):
                return last
            time.sleep(0.3)
        self.fail(f"admin API: {what} not seen within {timeout:g} s; last overview: {last}")

    def all_reporting(self, ov):
        return len(ov["pops"]) == self.lab.pops and all(
            p["reporting"] and p["gateway_counts"]["up"] == self.lab.gpp for p in ov["pops"])

    # Test names are ordered: the API checks run before the browser test
    # kills a gateway.
    def test_1_api_refuses_requests_without_the_token(self):
        for path in ("api/overview", "api/pops/1", "api/gateways/1001", "api/events",
                     "api/history", "api/subscribers", "api/repairs", "api/nothing", "api/",
                     "api/objects/" + "0" * 32):
            status, data, headers = lab_admin_get(self.lab, path, token=None)
            self.assertEqual(status, 401, f"{path} without a token")
            self.assertIn("Bearer", headers.get("www-authenticate", ""))
            self.assertNotIn(self.lab.subscriber, str(data))
            status, _, _ = lab_admin_get(self.lab, path, token="not-the-token-at-all-0123456789")
            self.assertEqual(status, 401, f"{path} with a wrong token")
        token = lab_admin_token(self.lab)
        status, _, _ = lab_admin_get(self.lab, "api/overview", token=token[:-1])
        self.assertEqual(status, 401, "a token that differs in its last character")
        status, _, _ = lab_admin_get(self.lab, "api/overview")
        self.assertEqual(status, 200)
        # The dashboard's files are public, and hold no data.
        status, headers, body = http_get(lab_admin_url(self.lab))
        self.assertEqual(status, 200)
        self.assertIn("text/html", headers["content-type"])
        self.assertIn("script-src 'self'", headers.get("content-security-policy", ""))
        self.assertNotIn(self.lab.subscriber.encode(), body)
        for asset in ("app.js", "app.css"):
            self.assertEqual(http_get(lab_admin_url(self.lab) + asset)[0], 200, asset)
        self.assertEqual(stat_of(lab_admin_url(self.lab) + "api/overview", method="POST"), 405)

    def test_2_api_shows_the_hierarchy_objects_and_usage(self):
        ov = self.wait_overview(self.all_reporting, "every POP reporting all its gateways")
        want = self.expected_hierarchy()
        got = {p["pop_id"]: (p["region"], sorted(g["id"] for g in p["gateways"])) for p in ov["pops"]}
        self.assertEqual(got, want)
        for p in ov["pops"]:
            self.assertEqual(p["health"], "ok", p)
            self.assertTrue(p["up"])
        self.assertEqual(ov["totals"]["gateways_up"], self.lab.pops * self.lab.gpp)

        src = write_random_file(self.scratch("admin-api"), 2 * MIB + 5)
        _, oid, version = self.lab.put(src, "admin-api")
        self.lab.wait_placed("admin-api")
        deadline = time.monotonic() + 15
        while True:
            status, obj, _ = lab_admin_get(self.lab, "api/objects/" + oid)
            if status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        self.assertEqual(status, 200, obj)
        self.assertEqual(obj["latest_version"], version)
        self.assertEqual(obj["subscriber"], self.lab.subscriber)
        self.assertEqual([r["role"] for r in obj["replicas"]], ["primary", "backup"])
        status, _, _ = lab_admin_get(self.lab, "api/objects/nothex")
        self.assertEqual(status, 400)
        deadline = time.monotonic() + 15
        while True:
            status, subs, _ = lab_admin_get(self.lab, "api/subscribers")
            if subs["subscribers"] or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        usage = {s["subscriber"]: s for s in subs["subscribers"]}
        self.assertIn(self.lab.subscriber, usage)
        self.assertGreaterEqual(usage[self.lab.subscriber]["bytes"], 2 * MIB)
        self.assertEqual(usage[self.lab.subscriber]["gateways"], self.lab.pops * self.lab.gpp)

        status, pop, _ = lab_admin_get(self.lab, "api/pops/1?state=up&limit=2")
        self.assertEqual(status, 200)
        self.assertEqual(len(pop["gateways"]), 2)
        self.assertEqual(pop["gateways_matched"], self.lab.gpp)
        self.assertEqual(lab_admin_get(self.lab, "api/pops/99")[0], 404)
        status, gw, _ = lab_admin_get(self.lab, "api/gateways/1002")
        self.assertEqual((status, gw["pop_id"], gw["state"]), (200, 1, "up"))
        deadline = time.monotonic() + 15  # the POP reports its gateways' work every second
        while True:
            stored = sum(g["fragments_stored"] for g in lab_admin_get(self.lab, "api/pops/1")[1]["gateways"])
            if stored > 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.assertGreater(stored, 0, "fragments stored on POP 1's gateways (the primary's region)")
        status, ev, _ = lab_admin_get(self.lab, "api/events")
        kinds = {e["kind"] for e in ev["events"]}
        self.assertTrue({"pop_joined", "pop_reporting"} <= kinds, kinds)
        status, hist, _ = lab_admin_get(self.lab, "api/history")
        self.assertEqual(status, 200)
        self.assertTrue(hist["samples"])
        status, rep, _ = lab_admin_get(self.lab, "api/repairs")
        self.assertEqual(len(rep["regions"]), self.lab.pops)

    def test_3_dashboard_in_headless_chromium(self):
        chromium = find_chromium()
        if not chromium:
            self.skipTest("chromium not installed (Debian package 'chromium'; "
                          "scripts/install-deps.sh installs it)")
        shots = os.environ.get("MISTORE_SCREENSHOT_DIR") or os.path.join(self.lab.dir, "screenshots")
        os.makedirs(shots, exist_ok=True)
        self.wait_overview(self.all_reporting, "every POP reporting all its gateways")
        want = self.expected_hierarchy()
        browser = HeadlessChromium(self.lab.work, chromium)
        try:
            url = lab_admin_url(self.lab)
            browser.start(url + "#token=" + lab_admin_token(self.lab))
            n_gw = self.lab.pops * self.lab.gpp
            browser.wait_for(f"document.querySelectorAll('.pop[data-pop-id]').length === {self.lab.pops}"
                             f" && document.querySelectorAll('.gw[data-state=\"up\"]').length === {n_gw}",
                             timeout=30, what="every POP and gateway shown up")
            shown = browser.evaluate("""JSON.stringify([...document.querySelectorAll('.pop[data-pop-id]')].map(p => ({
                pop: Number(p.dataset.popId), region: p.dataset.region, health: p.dataset.health,
                gateways: [...p.querySelectorAll('.gw')].map(g => [Number(g.dataset.gatewayId), g.dataset.state])})))""")
            shown = json.loads(shown)
            got = {p["pop"]: (p["region"], sorted(g for g, _ in p["gateways"])) for p in shown}
            self.assertEqual(got, want, "POPs and gateways on the page vs lab.json")
            self.assertTrue(all(p["health"] == "ok" for p in shown), shown)
            # Nothing came from anywhere but the DC (no CDN).
            origins = browser.evaluate(
                "JSON.stringify([...new Set(performance.getEntriesByType('resource').map(e => new URL(e.name).origin))])")
            self.assertEqual(set(json.loads(origins)) - {url.rstrip('/')}, set(), "resources from elsewhere")
            self.assertFalse(browser.evaluate("!!document.querySelector('[data-view=login]')"))
            browser.screenshot(os.path.join(shots, "1-overview.png"))

            self.lab.kill(VICTIM, "KILL")
            gid = VICTIM[2:]
            browser.wait_for(f"(document.querySelector('.gw[data-gateway-id=\"{gid}\"]') || {{}}).dataset"
                             f"?.state === 'lost'", timeout=30, what=f"{VICTIM} shown lost")
            pop_of_victim = int(self.lab.node(VICTIM)["region"][1:])
            browser.wait_for(f"document.querySelector('.pop[data-pop-id=\"{pop_of_victim}\"]').dataset.health"
                             f" === 'degraded'", timeout=10, what=f"POP {pop_of_victim} degraded")
            lost = json.loads(browser.evaluate(
                "JSON.stringify([...document.querySelectorAll('.gw[data-state=lost]')].map(g => g.dataset.gatewayId))"))
            self.assertEqual(lost, [gid])
            browser.wait_for("[...document.querySelectorAll('.events li')].some(li => "
                             f"li.dataset.kind === 'gateway_lost' && li.textContent.includes('{gid}'))",
                             timeout=10, what="the gateway_lost event listed")
            browser.screenshot(os.path.join(shots, "2-gateway-lost.png"))

            browser.evaluate(f"location.hash = '#/pop/{pop_of_victim}'")
            browser.wait_for(f"document.querySelector('[data-view=pop] tr[data-gateway-id=\"{gid}\"]')"
                             f"?.dataset.state === 'lost'", timeout=15, what="the POP page")
            browser.screenshot(os.path.join(shots, "3-pop.png"))
            browser.evaluate(f"location.hash = '#/gateway/{gid}'")
            browser.wait_for("document.querySelector('[data-view=gateway]')?.dataset.state === 'lost'",
                             timeout=15, what="the gateway page")
            browser.screenshot(os.path.join(shots, "4-gateway.png"))

            # Without the token the page shows its login form, and no data.
            browser.evaluate("sessionStorage.clear(); history.replaceState(null, '', '/#/'); 1")
            browser.reload()
            browser.wait_for("!!document.querySelector('[data-view=login]')", timeout=15,
                             what="the login form")
            self.assertFalse(browser.evaluate("!!document.querySelector('.pop')"))
            browser.screenshot(os.path.join(shots, "5-login.png"))
            print(f"\n[screenshots in {shots}]", file=sys.stderr)
        finally:
            browser.close()


def stat_of(url, method):
    return http_get(url, method=method)[0]


if __name__ == "__main__":
    unittest.main()
