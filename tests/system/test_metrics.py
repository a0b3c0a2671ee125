"""Every daemon serves Prometheus metrics at lab.json's metrics_url: promtool
accepts them, no subscriber id appears in them, and the counters move when a
put and a get flow through the hierarchy."""

import time
import unittest

from labutil import (LabTestCase, http_get, metric_value, parse_metrics, promtool_check_metrics,
                     write_random_file, lab_metrics)

MIB = 1 << 20


class Metrics(LabTestCase):
    LAB_OPTIONS = {"pops": 2, "gateways_per_pop": 4, "k": 2, "m": 1}

    def samples(self, node_id):
        return parse_metrics(lab_metrics(self.lab, node_id))

    def test_every_node_has_a_metrics_url_and_the_dc_an_admin_url(self):
        for n in self.lab.nodes():
            self.assertTrue(n.get("metrics_url", "").startswith("http://127.0.0.1:"),
                            f"{n['id']}: metrics_url {n.get('metrics_url')!r}")
        self.assertTrue(self.lab.node("dc").get("admin_url", "").startswith("http://127.0.0.1:"))

    def test_promtool_accepts_every_daemon(self):
        texts = {n["id"]: lab_metrics(self.lab, n["id"]) for n in self.lab.nodes()}
        for node_id, text in texts.items():
            samples = parse_metrics(text)
            role = self.lab.node(node_id)["role"]
            daemon = {"dc": "dc", "pop": "pop", "gateway": "agent"}[role]
            self.assertEqual(metric_value(samples, "mistore_build_info", daemon=daemon), 1,
                             f"{node_id}: mistore_build_info")
            # Label sets are declared in the code: no subscriber ids, ever.
            self.assertNotIn(self.lab.subscriber, text, f"{node_id} exposes a subscriber id")
        result = promtool_check_metrics(next(iter(texts.values())))
        if result is None:
            self.skipTest("promtool not installed (Debian package 'prometheus'; "
                          "scripts/install-deps.sh installs it)")
        for node_id, text in texts.items():
            rc, out = promtool_check_metrics(text)
            self.assertEqual(rc, 0, f"promtool check metrics on {node_id}:\n{out}")

    def test_counters_move_when_traffic_flows(self):
        nodes = ["dc", "pop1", "pop2", "gw1001"]
        gateways = [n["id"] for n in self.lab.nodes("gateway")]
        before = {n: self.samples(n) for n in nodes + gateways}

        src = write_random_file(self.scratch("metrics-traffic"), 3 * MIB + 17)
        name, oid, _ = self.lab.put(src, "metrics-traffic")
        frags = self.lab.wait_placed(name)
        chunks = len({f["chunk"] for f in frags})
        self.assertGreater(chunks, 0)
        out = self.scratch("metrics-traffic.out")
        self.lab.get(name, out)
        self.assertFilesEqual(src, out, "get")

        def moved(node, name, **labels):
            b = metric_value(before[node], name, **labels) or 0
            a = metric_value(after[node], name, **labels) or 0
            return a - b

        # Both replicas place k+m fragments per chunk in their regions in the
        # background, and the DC samples its catalog every 2 s: wait for both.
        want = 2 * chunks * (self.lab.k + self.lab.m)
        deadline = time.monotonic() + 30
        while True:
            after = {n: self.samples(n) for n in nodes + gateways}
            placed = sum(moved(p, "mistore_pop_fragments_placed_total") for p in ("pop1", "pop2"))
            stored = sum(moved(g, "mistore_agent_fragments_stored_total") for g in gateways)
            if (placed >= want and stored == placed and
                    (metric_value(after["dc"], "mistore_dc_objects") or 0) >= 1):
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)

        # The client's agent relayed the put and the get.
        self.assertGreaterEqual(moved("gw1001", "mistore_requests_total", type="put_chunk", result="ok"), chunks)
        self.assertEqual(moved("gw1001", "mistore_requests_total", type="put_commit", result="ok"), 1)
        self.assertGreaterEqual(moved("gw1001", "mistore_requests_total", type="get_version", result="ok"), 1)
        self.assertGreaterEqual(moved("gw1001", "mistore_requests_total", type="get_chunk", result="ok"), chunks)
        self.assertGreaterEqual(moved("gw1001", "mistore_received_bytes_total"), 3 * MIB)
        self.assertGreaterEqual(moved("gw1001", "mistore_sent_bytes_total"), 3 * MIB)
        self.assertGreaterEqual(moved("gw1001", "mistore_read_requests_total"), 1)
        self.assertEqual(metric_value(after["gw1001"], "mistore_agent_pop_connected"), 1)

        # The entry POP (pop1) served it, timed it, and placed fragments.
        self.assertGreaterEqual(moved("pop1", "mistore_requests_total", type="put_chunk", result="ok"), chunks)
        self.assertGreaterEqual(
            moved("pop1", "mistore_request_duration_seconds_count", type="put_commit"), 1)
        self.assertGreaterEqual(placed, want, "fragments placed by the two replicas")
        calls = sum(moved(p, "mistore_calls_total", type="store_fragment", result="ok")
                    for p in ("pop1", "pop2"))
        self.assertEqual(calls, placed)
        self.assertGreaterEqual(moved("pop1", "mistore_calls_total", type="claim_name", result="ok") +
                                moved("pop1", "mistore_calls_total", type="lookup_name", result="ok"), 1)
        for p in ("pop1", "pop2"):
            self.assertEqual(metric_value(after[p], "mistore_pop_gateways", state="connected"),
                             self.lab.gpp, f"{p}: connected gateways")
            self.assertGreaterEqual(metric_value(after[p], "mistore_cluster_map_epoch"), 1)
            self.assertIsNotNone(metric_value(after[p], "mistore_pop_placement_queue_chunks"))
            self.assertIsNotNone(metric_value(after[p], "mistore_pop_lock_objects"))
        # Every chunk the get read went through pop1's cache accounting.
        self.assertGreaterEqual(moved("pop1", "mistore_pop_cache_hits_total") +
                                moved("pop1", "mistore_pop_cache_misses_total"), chunks)
        for p in ("pop1", "pop2"):
            for counter in ("mistore_pop_lease_expiries_total", "mistore_pop_fragments_bad_total",
                            "mistore_pop_epoch_refusals_total"):
                self.assertIsNotNone(metric_value(after[p], counter), f"{p}: {counter}")
        # Jobs ran on the worker pool and were timed there.
        self.assertGreaterEqual(sum(moved(p, "mistore_pop_job_duration_seconds_count")
                                    for p in ("pop1", "pop2")), chunks)

        # The gateways stored what the POPs placed.
        self.assertEqual(stored, placed)
        self.assertGreater(sum(moved(g, "mistore_agent_fragment_stored_bytes_total") for g in gateways), 0)

        # The DC: the name, the version report, the POPs' summaries, the catalog.
        self.assertGreaterEqual(moved("dc", "mistore_requests_total", type="claim_name", result="ok"), 1)
        self.assertGreaterEqual(moved("dc", "mistore_requests_total", type="report_version", result="ok"), 1)
        self.assertGreater(moved("dc", "mistore_requests_total", type="monitor_pop_summary", result="ok"), 0)
        self.assertGreaterEqual(metric_value(after["dc"], "mistore_dc_objects"), 1)
        self.assertEqual(metric_value(after["dc"], "mistore_dc_pops", state="up"), self.lab.pops)
        self.assertEqual(metric_value(after["dc"], "mistore_dc_gateways", state="connected"),
                         self.lab.pops * self.lab.gpp)

    def test_metrics_listener_serves_only_metrics(self):
        url = self.lab.node("pop1")["metrics_url"]
        base = url[:-len("/metrics")]
        status, headers, body = http_get(url)
        self.assertEqual(status, 200)
        self.assertIn("version=0.0.4", headers.get("content-type", ""))
        self.assertEqual(http_get(base + "/nothing-here")[0], 404)
        self.assertEqual(http_get(url, method="POST")[0], 405)
        status, _, body = http_get(url, method="HEAD")
        self.assertEqual((status, body), (200, b""))
        self.assertAllAlive()


if __name__ == "__main__":
    unittest.main()
