"""The exporter's metrics (overlaytui/exporter.py) and the alert rules (contrib/prometheus), checked with the real
`promtool` (Debian's prometheus package; .ci/run installs it)."""

from __future__ import annotations

import asyncio
import subprocess
from dataclasses import replace
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from overlaytui.analysis.findings import diagnose
from overlaytui.analysis.netio import aggregate
from overlaytui.commands.exporter import landing_page, parse_listen, wsgi_app
from overlaytui.exporter import ExportState, OverlayCollector
from overlaytui.model import Coverage, PairGap
from overlaytui.sources.demo import DemoSource
from tests.helpers import required_binary

RULES = Path(__file__).parent.parent.parent / "contrib" / "prometheus"
T = 1_800_000_000.0


def promtool() -> str:
    return required_binary("promtool", "prometheus")


def demo_state(scenario: str = "loss", **changes) -> ExportState:
    source = DemoSource(scenario, seed=7, clock=lambda: T)
    asyncio.run(source.poll())
    snap = source.snapshot()
    results = tuple(r for r in source.probe_results("frontend"))
    totals = {(r.network, r.src_node, r.dst_node): (r.sent, r.received) for r in results if r.kind == "ping"}
    state = ExportState(snapshot=snap, up=True, results=results, totals=totals, findings=tuple(diagnose(snap,
                        results)), netio=aggregate(snap), rounds=3, last_round_at=T, collected_at=T)
    return replace(state, **changes)


def scrape(state: ExportState, openmetrics: bool = False) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(OverlayCollector(lambda: state))
    return (generate_openmetrics if openmetrics else generate_latest)(registry).decode()


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for family in text_string_to_metric_families(text)
            for s in family.samples}


def value(found, name, **labels):
    return found.get((name, tuple(sorted(labels.items()))))


def test_the_metrics_of_a_lossy_demo_cluster():
    found = samples(scrape(demo_state()))
    assert value(found, "overlaytui_up") == 1.0
    assert value(found, "overlaytui_engine_up", node="node4") == 1.0
    assert value(found, "overlaytui_node_ready", node="node1", role="manager") == 1.0
    assert value(found, "overlaytui_network_mtu_bytes", network="backend") == 1350.0
    assert value(found, "overlaytui_network_encrypted", network="payments-secure") == 1.0
    pair = {"network": "frontend", "src_node": "node1", "dst_node": "node4"}
    sent = value(found, "overlaytui_pair_packets_sent_total", **pair)
    lost = value(found, "overlaytui_pair_packets_lost_total", **pair)
    assert sent > 30000 and 0.015 <= lost / sent <= 0.025  # node4 drops ~2 %
    assert value(found, "overlaytui_pair_packets_lost_total", network="frontend", src_node="node1",
                 dst_node="node2") == 0.0
    assert value(found, "overlaytui_pair_up", **pair) == 1.0
    assert 0.0001 < value(found, "overlaytui_pair_rtt_seconds", **pair) < 0.01
    assert value(found, "overlaytui_pair_path_mtu_bytes", **pair) == 1450.0
    assert value(found, "overlaytui_node_packets_lost_total", network="frontend", node="node4", direction="in") > 0
    assert value(found, "overlaytui_finding", check="loss.bad", severity="error", subject="node4") == 1.0
    assert value(found, "overlaytui_pair_series_limited") == 0.0
    assert value(found, "overlaytui_service_receive_bytes_per_second", service="web") > 0


def test_a_pair_that_cannot_be_measured_has_no_stale_values():
    state = demo_state("healthy")
    failed = tuple(replace(r, sent=0, received=0, rtt_avg_ms=None, error="exec on node2: EOF")
                   if (r.kind, r.src_node) == ("ping", "node2") else r for r in state.results)
    coverage = (Coverage("frontend", "ping", 20, 16, tuple(PairGap("node2", d, "exec on node2: EOF")
                                                          for d in ("node1", "node3", "node4", "node5"))),)
    found = samples(scrape(replace(state, results=failed, coverage=coverage)))
    pair = {"network": "frontend", "src_node": "node2", "dst_node": "node3"}
    assert value(found, "overlaytui_pair_up", **pair) == 0.0
    assert value(found, "overlaytui_pair_rtt_seconds", **pair) is None
    assert value(found, "overlaytui_pair_path_mtu_bytes", **pair) is None
    assert value(found, "overlaytui_pair_packets_sent_total", **pair) > 0  # counters keep what was measured
    assert value(found, "overlaytui_pairs_measured", network="frontend", kind="ping") == 16.0
    assert value(found, "overlaytui_pair_up", network="frontend", src_node="node3", dst_node="node2") == 1.0


def test_beyond_max_pairs_only_per_node_series():
    state = demo_state(max_pairs=10)
    found = samples(scrape(state))
    assert value(found, "overlaytui_pair_series_limited") == 1.0
    assert not [k for k in found if k[0].startswith("overlaytui_pair_") and k[0] != "overlaytui_pair_series_limited"]
    assert value(found, "overlaytui_node_packets_sent_total", network="frontend", node="node4", direction="out") > 0


def test_nothing_collected_yet_is_down_not_an_error():
    found = samples(scrape(ExportState()))
    assert value(found, "overlaytui_up") == 0.0 and value(found, "overlaytui_probe_rounds_total") == 0.0


def test_hostile_names_are_escaped_label_values():
    state = demo_state()
    evil = 'n"1\\\n{x="y"}'
    snap = replace(state.snapshot, nodes=tuple(replace(n, hostname=evil) if n.hostname == "node1" else n
                                               for n in state.snapshot.nodes))
    text = scrape(replace(state, snapshot=snap))
    assert value(samples(text), "overlaytui_node_ready", node=evil, role="manager") == 1.0


def test_promtool_accepts_a_scrape(tmp_path):
    path = tmp_path / "scrape.txt"
    path.write_text(scrape(demo_state()))
    result = subprocess.run([promtool(), "check", "metrics"], stdin=path.open(), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), result


def test_the_openmetrics_scrape_parses_the_same():
    """Prometheus negotiates OpenMetrics when it can (promtool 2.42 lints only the text format)."""
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families

    state = demo_state()
    text = scrape(state, openmetrics=True)
    assert text.endswith("# EOF\n")
    found = {(s.name, tuple(sorted(s.labels.items()))): s.value for family in openmetrics_families(text)
             for s in family.samples}
    assert found == samples(scrape(state))


def test_promtool_checks_and_unit_tests_the_alert_rules():
    check = subprocess.run([promtool(), "check", "rules", str(RULES / "alerts.yml")], capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0 and "SUCCESS: 6 rules found" in check.stdout, check
    test = subprocess.run([promtool(), "test", "rules", str(RULES / "alerts_test.yml")], capture_output=True,
                          text=True, timeout=120)
    assert test.returncode == 0 and "SUCCESS" in test.stdout, test.stdout + test.stderr


def test_listen_addresses_and_the_landing_page():
    assert parse_listen("127.0.0.1:9476") == ("127.0.0.1", 9476)
    assert parse_listen(":9476") == ("0.0.0.0", 9476)
    assert parse_listen("[::1]:9476") == ("::1", 9476)
    assert [parse_listen(v) for v in ("9476", "host:", "host:0", "host:70000", "host:x")] == [None] * 5
    state = demo_state()
    page = landing_page(lambda: replace(state, probe_problem="<b>no image</b>")).decode()
    assert "5 nodes" in page and "&lt;b&gt;no image&lt;/b&gt;" in page and "/metrics" in page
    registry = CollectorRegistry(auto_describe=False)
    registry.register(OverlayCollector(lambda: state))
    app = wsgi_app(registry, lambda: state)
    seen = {}

    def start_response(status, headers):
        seen["status"], seen["headers"] = status, dict(headers)
    body = b"".join(app({"PATH_INFO": "/metrics", "REQUEST_METHOD": "GET", "QUERY_STRING": ""}, start_response))
    assert seen["status"].startswith("200") and b"overlaytui_pair_up" in body


def test_a_state_that_cannot_be_formatted_still_answers_the_scrape(capsys):
    class Broken(ExportState):
        @property
        def node_sums(self):
            raise KeyError("a malformed pair")

    registry = CollectorRegistry(auto_describe=False)
    registry.register(OverlayCollector(lambda: Broken(up=True)))
    found = samples(generate_latest(registry).decode())
    assert found == {("overlaytui_up", ()): 0.0}
    assert "building the metrics failed: KeyError" in capsys.readouterr().err
