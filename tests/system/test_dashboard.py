"""The DC's admin API (token required) and its dashboard, in headless
Chromium: the POPs and gateways it shows match lab.json, a killed gateway
shows as lost, and screenshots are saved (MISTORE_SCREENSHOT_DIR, else the
lab's temp dir: keep it with MISTORE_KEEP_LAB=1).

RepairView (issue 8, on a lab whose POPs declare a silent gateway lost after
GRACE_S seconds): a fragment-holding gateway killed with SIGKILL shows in the
event log as suspected, lost, its repair started and finished; the region's
repair queue drains back to full redundancy; the dashboard's redundancy page
shows the region and the events."""

import json
import os
import sys
import time
import unittest

import labutil
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
            # The POP's failure detector suspects it at once (it is declared
            # lost only after the grace period: RepairView below).
            browser.wait_for("[...document.querySelectorAll('.events li')].some(li => "
                             f"li.dataset.kind === 'gateway_suspected' && li.textContent.includes('{gid}'))",
                             timeout=15, what="the gateway_suspected event listed")
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


GRACE_S = 3


class GraceLab(labutil.Lab):
    """A lab whose POPs declare silent gateways lost after GRACE_S seconds."""

    def lab_cmd(self, *args, **kw):
        if args and args[0] == "up":
            args = tuple(args) + ("--grace-seconds", str(GRACE_S))
        return super().lab_cmd(*args, **kw)


class RepairView(LabTestCase):
    LAB_OPTIONS = {"pops": 2, "gateways_per_pop": 5, "k": 2, "m": 1, "pop_cache_bytes": 0}
    REGION_POP = 1  # the client's entry POP (gw1001): primary of every object

    @classmethod
    def setUpClass(cls):
        real = labutil.Lab
        labutil.Lab = GraceLab
        try:
            super().setUpClass()
        finally:
            labutil.Lab = real

    def events(self, query):
        status, ev, _ = lab_admin_get(self.lab, "api/events?" + query)
        self.assertEqual(status, 200, ev)
        return ev["events"]

    def wait_api(self, path, pred, what, timeout=60.0):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            status, last, _ = lab_admin_get(self.lab, path)
            if status == 200 and pred(last):
                return last
            time.sleep(0.5)
        self.fail(f"{what} not seen in {timeout:g} s via /{path}; last: {json.dumps(last)[:2000]}")

    def test_lost_gateway_repair_in_the_event_log_and_the_dashboard(self):
        chromium = find_chromium()
        shots = os.environ.get("MISTORE_SCREENSHOT_DIR") or os.path.join(self.lab.dir, "screenshots")
        os.makedirs(shots, exist_ok=True)
        pop = self.REGION_POP
        self.wait_api(f"api/repairs/{pop}", lambda r: r["regions"][0]["reporting"],
                      f"POP {pop} reporting")
        holders = {}
        for i in range(4):
            name = f"repair-{i}"
            src = write_random_file(self.scratch(name), 200_000 + 37_000 * i)
            self.lab.put(src, name)
            for f in self.lab.wait_placed(name):
                if f["pop"] == pop:
                    holders[f["gateway"]] = holders.get(f["gateway"], 0) + 1
        holders.pop(1001, None)  # keep the client's own gateway
        self.assertTrue(holders, "no fragment on another gateway of the region")
        victim = max(holders, key=holders.get)
        rows = self.wait_api(f"api/repairs/{pop}",
                             lambda r: r["regions"][0]["redundancy"] == "full",
                             "full redundancy before the loss")["regions"]
        self.assertEqual(rows[0]["chunks_below_redundancy"], 0)

        browser = HeadlessChromium(self.lab.work, chromium) if chromium else None
        try:
            if browser:
                browser.start(lab_admin_url(self.lab) + "#token=" + lab_admin_token(self.lab))
                browser.wait_for("!!document.querySelector('[data-view=overview]')", timeout=30,
                                 what="the overview (token taken)")
                browser.evaluate("location.hash = '#/repairs'; 1")
                browser.wait_for(f"document.querySelector('[data-view=repairs] tr[data-pop-id=\"{pop}\"]')"
                                 "?.dataset.redundancy === 'full'", timeout=30, what="the region full")
            t_kill = time.time()
            self.lab.kill(f"gw{victim}", "KILL")
            # Suspected at once, lost after the grace period, then repaired.
            lost = self.wait_api(f"api/events?gateway={victim}&kind=gateway_lost",
                                 lambda e: e["events"], f"gateway {victim} lost", timeout=60)
            e = lost["events"][0]
            self.assertEqual((e["source"], e["pop"]), ("pop", pop), e)
            self.assertGreaterEqual(e["count"], holders[victim], e)  # the fragments it held
            self.assertGreaterEqual(e["t"] / 1000.0, t_kill + GRACE_S - 1.0, "lost before the grace")
            if browser:
                browser.screenshot(os.path.join(shots, "6-gateway-lost-repair.png"))
            done = self.wait_api(f"api/events?gateway={victim}&kind=repair_finished",
                                 lambda e: e["events"], f"repair of gateway {victim} finished",
                                 timeout=90)
            kinds = [x["kind"] for x in reversed(self.events(f"gateway={victim}"))]  # oldest first
            for k in ("gateway_suspected", "gateway_lost", "repair_started", "repair_finished"):
                self.assertIn(k, kinds)
            self.assertLess(kinds.index("gateway_suspected"), kinds.index("gateway_lost"), kinds)
            self.assertLess(kinds.index("repair_started"), kinds.index("repair_finished"), kinds)
            self.assertGreater(done["events"][0]["count"], 0, done)  # chunks repaired
            self.assertGreater(done["events"][0].get("bytes", 0), 0, done)
            # The queue drained: the region is back to full redundancy.
            row = self.wait_api(f"api/repairs/{pop}",
                                lambda r: r["regions"][0]["chunks_below_redundancy"] == 0
                                and r["regions"][0]["repair"]["queue_chunks"] == 0
                                and r["regions"][0]["repair"]["in_flight_chunks"] == 0,
                                "the repair queue drained", timeout=60)["regions"][0]
            self.assertEqual(row["repair"]["state"], "idle", row)
            self.assertGreater(row["repair"]["repaired_chunks_total"], 0, row)
            self.assertEqual(row["detector"]["lost"], 1, row)
            # Filters: kind and since (wall-clock ms), newest first.
            recent = self.events(f"since={int((t_kill - 1) * 1000)}&kind=gateway_lost,repair_finished")
            self.assertEqual({x["kind"] for x in recent}, {"gateway_lost", "repair_finished"})
            self.assertEqual(recent[0]["kind"], "repair_finished")
            self.assertEqual(self.events(f"since={int(time.time() * 1000) + 60000}"), [])
            self.assertEqual(lab_admin_get(self.lab, "api/events?kind=bogus")[0], 400)
            self.assertEqual(lab_admin_get(self.lab, "api/events", token=None)[0], 401)
            self.assertEqual(lab_admin_get(self.lab, f"api/repairs/{pop}", token=None)[0], 401)
            for f in range(4):  # every object still reads back
                out = self.scratch(f"repair-{f}.out")
                self.lab.get(f"repair-{f}", out)
                self.assertFilesEqual(self.scratch(f"repair-{f}"), out)
            if not browser:
                self.skipTest("chromium not installed: the dashboard part was not checked")
            browser.wait_for(f"document.querySelector('[data-view=repairs] tr[data-pop-id=\"{pop}\"]')"
                             "?.dataset.below === '0'", timeout=20, what="the region's row back to 0 below")
            browser.wait_for("[...document.querySelectorAll('[data-view=repairs] .events li')].some(li => "
                             f"li.dataset.kind === 'repair_finished' && li.textContent.includes('gateway {victim}'))",
                             timeout=20, what="the repair_finished event on the redundancy page")
            shown = browser.evaluate(f"document.querySelector('[data-view=repairs] tr[data-pop-id=\"{pop}\"]')"
                                     ".dataset.redundancy")
            self.assertIn(shown, ("full", "placing"))
            browser.screenshot(os.path.join(shots, "7-repairs.png"))
            browser.evaluate(f"location.hash = '#/events?gateway={victim}'; 1")
            browser.wait_for("[...document.querySelectorAll('[data-view=events] .events li')].map(li => "
                             "li.dataset.kind).slice(0, 4).join() === 'repair_finished,repair_started,gateway_lost,gateway_suspected'",
                             timeout=20, what="the gateway's events, newest first")
            browser.screenshot(os.path.join(shots, "8-events.png"))
            browser.evaluate("location.hash = '#/'; 1")
            browser.wait_for(f"document.querySelector('.pop[data-pop-id=\"{pop}\"] .repair')?.dataset.repairState"
                             " === 'idle'", timeout=20, what="the overview's repair line")
            browser.screenshot(os.path.join(shots, "9-overview-after-repair.png"))
            print(f"\n[screenshots in {shots}]", file=sys.stderr)
        finally:
            if browser:
                browser.close()


def stat_of(url, method):
    return http_get(url, method=method)[0]


if __name__ == "__main__":
    unittest.main()
