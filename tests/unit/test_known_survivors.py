"""Mutants that survived the suite before (docs/benchmarks.md, mutation testing): each test pins one boundary."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path

from overlaytui.analysis.findings import check_probes
from overlaytui.analysis.thresholds import LossThresholds, Verdict, judge_loss, loss_upper_bound_pct, packets_needed
from overlaytui.model import ClusterSnapshot, Network, Node, ProbeResult
from overlaytui.safe import PrintableStream, cell_for_cell, display, one_line, printable
from overlaytui.sources.parse import parse_network, parse_node
from overlaytui.sources.stats import cpu_percent, parse_stats_frame

FIXTURES = Path(__file__).parent.parent / "fixtures" / "lab"


def test_loss_exactly_at_the_thresholds():
    th = LossThresholds()
    assert judge_loss(1, 1000, th) is Verdict.BAD  # 0.1 % is "bad": bad >= 0.1 %
    assert judge_loss(0, 29956, th) is Verdict.GOOD and judge_loss(0, 29955, th) is Verdict.ACCEPTABLE
    assert packets_needed(th) == 29956 and packets_needed(th, "acceptable") == 2995
    assert judge_loss(0, 2995, th) is Verdict.ACCEPTABLE and judge_loss(0, 2994, th) is Verdict.INSUFFICIENT
    assert judge_loss(0, 0, th) is Verdict.UNKNOWN and judge_loss(5, 5, th) is Verdict.BAD
    assert loss_upper_bound_pct(0, 100) == 100.0 * (1 - 0.05 ** (1 / 100))
    assert 0.0 < loss_upper_bound_pct(1, 100000) - 0.001 < 0.004  # ~4.74e-3 %: a real interval, not the point


def _nodes():
    return tuple(Node(f"id{i}", f"node{i}", "manager" if i == 1 else "worker", "ready", "active", f"10.0.0.{i}")
                 for i in (1, 2, 3))


def _net(name, encrypted=False):
    return Network(name, name, "overlay", "swarm", "10.1.0.0/24", None, 4097, None, encrypted, False, False, False)


def _ping(net, src, dst, received, sent=100):
    return ProbeResult("ping", net, src, dst, 0.0, sent=sent, received=received, rtt_avg_ms=0.2 if received else None)


def test_blocked_needs_every_plain_overlay_silent_both_ways():
    snap = ClusterSnapshot(0.0, (), nodes=_nodes(), networks=(_net("a"), _net("b")))
    silent = [_ping("a", "node1", "node2", 0), _ping("a", "node2", "node1", 0), _ping("b", "node1", "node2", 0),
              _ping("b", "node2", "node1", 0)]
    assert [f.check for f in check_probes(snap, silent, LossThresholds())] == ["dataplane.blocked"]
    one_passes = silent[:3] + [_ping("b", "node2", "node1", 100)]
    found = [f for f in check_probes(snap, one_passes, LossThresholds()) if f.check != "loss.samples"]
    assert [f.check for f in found] == ["loss.bad"]  # one path, its three bad directed pairs as the details
    assert found[0].subject == "node1 <-> node2" and len(found[0].details) == 3


def test_loss_free_pairs_raise_no_acceptable_finding():
    snap = ClusterSnapshot(0.0, (), nodes=_nodes(), networks=(_net("a"),))
    clean = [_ping("a", "node1", "node2", 5000, 5000)]  # acceptable by sample size, but nothing lost
    assert [f.check for f in check_probes(snap, clean, LossThresholds())] == []
    lossy = [_ping("a", "node1", "node2", 9999, 10000)]
    assert [f.check for f in check_probes(snap, lossy, LossThresholds())] == ["loss.acceptable"]


def test_encrypted_silence_is_explained_by_esp_not_reported_as_loss():
    snap = ClusterSnapshot(0.0, (), nodes=_nodes(), networks=(_net("a"), _net("s", encrypted=True)))
    probes = [_ping("a", "node1", "node2", 100), _ping("s", "node1", "node2", 0)]
    assert [f.check for f in check_probes(snap, probes, LossThresholds())] == ["encryption.esp", "loss.samples"]


def test_dual_stack_ipam_shows_the_ipv4_subnet():
    raw = {"Id": "n1", "Name": "dual", "Driver": "overlay", "Scope": "swarm",
           "IPAM": {"Config": [{"Subnet": "fd00:1::/64", "Gateway": "fd00:1::1"},
                               {"Subnet": "10.9.0.0/24", "Gateway": "10.9.0.1"}]}}
    net = parse_network(raw)
    assert (net.subnet, net.gateway) == ("10.9.0.0/24", "10.9.0.1")
    only_v6 = parse_network(raw | {"IPAM": {"Config": [{"Subnet": "fd00:1::/64", "Gateway": "fd00:1::1"}]}})
    assert only_v6.subnet == "fd00:1::/64"


def test_several_managers_one_leader():
    nodes = json.loads((FIXTURES / "nodes.json").read_text())
    manager = next(n for n in nodes if n.get("ManagerStatus"))
    follower = copy.deepcopy(manager)
    follower["ID"] = "follower"
    follower["ManagerStatus"] = {"Reachability": "unreachable", "Addr": "10.231.0.9:2377"}
    parsed = [parse_node(manager), parse_node(follower)]
    assert [(n.role, n.leader, n.reachability) for n in parsed] == [
        ("manager", True, "reachable"), ("manager", False, "unreachable")]


def test_cpu_percent_with_a_real_delta():
    """The recorded lab frames all have a CPU delta of 0 (idle containers): this one does not."""
    frames = json.loads((FIXTURES / "node1-stats-stream.json").read_text())
    frame = copy.deepcopy(next(iter(frames.values()))[1])
    frame["precpu_stats"]["cpu_usage"]["total_usage"] = frame["cpu_stats"]["cpu_usage"]["total_usage"] - 20_000_000
    frame["precpu_stats"]["system_cpu_usage"] = frame["cpu_stats"]["system_cpu_usage"] - 1_000_000_000
    frame["cpu_stats"]["online_cpus"] = 2
    assert cpu_percent(parse_stats_frame(frame)) == 20_000_000 / 1_000_000_000 * 2 * 100.0  # 4 %
    del frame["cpu_stats"]["online_cpus"]
    frame["cpu_stats"]["cpu_usage"]["percpu_usage"] = [1, 2, 3, 4]  # cgroup v1: the count of CPUs listed
    assert cpu_percent(parse_stats_frame(frame)) == 8.0


def test_upper_bounds_pinned_and_the_binomial_edges():
    from overlaytui.analysis.thresholds import _binom_cdf

    assert loss_upper_bound_pct(0, 0) == 100.0 and loss_upper_bound_pct(7, 7) == 100.0
    assert loss_upper_bound_pct(9, 7) == 100.0
    for (lost, sent), expected in PINNED_BOUNDS.items():  # Clopper-Pearson, one-sided 95 %
        assert abs(loss_upper_bound_pct(lost, sent) - expected) < 1e-9, (lost, sent)
    assert _binom_cdf(3, 10, 0.0) == 1.0 and _binom_cdf(3, 10, 1.0) == 0.0 and _binom_cdf(10, 10, 1.0) == 1.0
    assert abs(_binom_cdf(1, 2, 0.5) - 0.75) < 1e-12 and abs(_binom_cdf(0, 3, 0.5) - 0.125) < 1e-12
    assert judge_loss(0, 1) is Verdict.INSUFFICIENT  # one packet that arrived proves nothing


def test_iperf_udp_and_unreadable_output():
    import json as _json

    from overlaytui.probes.iperf import iperf_command, parse_iperf

    tcp = _json.loads((Path(__file__).parent.parent / "fixtures" / "iperf3" / "tcp-ok.json").read_text())
    udp = copy.deepcopy(tcp)
    udp["start"]["test_start"]["protocol"] = "UDP"
    udp["end"] = {"cpu_utilization_percent": tcp["end"]["cpu_utilization_percent"],
                  "sum": {"bits_per_second": 1.5e6, "jitter_ms": 0.1, "lost_packets": 0, "lost_percent": 0.0,
                          "bytes": 1, "seconds": 3.0, "packets": 10, "start": 0, "end": 3}}
    result = parse_iperf(_json.dumps(udp))
    assert (result.bits_per_second, result.retransmits, result.error) == (1.5e6, None, "")
    no_sum = copy.deepcopy(udp)
    del no_sum["end"]["sum"]
    broken = parse_iperf(_json.dumps(no_sum))  # a UDP result without its sum: unreadable, not 0 bit/s
    assert broken.bits_per_second is None and broken.error.startswith("no iperf3 result (KeyError): {")
    garbage = parse_iperf("x" * 300 + "\nsecond line")
    assert garbage.error == "no iperf3 result (JSONDecodeError): " + "x" * 160
    assert parse_iperf("").error == "no iperf3 result (JSONDecodeError)"
    tcp["end"]["sum_sent"]["retransmits"] = "many"
    assert parse_iperf(_json.dumps(tcp)).retransmits is None
    assert iperf_command("10.0.0.5", 4, "50M", 5202) == [
        "iperf3", "-c", "10.0.0.5", "-p", "5202", "-J", "-t", "4", "-b", "50M", "--connect-timeout", "2000"]
    assert iperf_command("10.0.0.5")[7:10] == ["3", "-b", "200M"]


PINNED_BOUNDS = {(1, 100): 4.655981145353875, (3, 1000): 0.77352447184788, (10, 50): 31.55960614200149,
                 (1, 2): 97.46794344808964}


def _container(cid, node_id, service, interfaces, engine="unix:///e1"):
    from overlaytui.model import ContainerStats, InterfaceStats

    return ContainerStats(cid, cid, engine, node_id, None, service, 1.0, None, None, None,
                          tuple(InterfaceStats(name, net, net, True, 0, 0, rx, tx)
                                for name, net, rx, tx in interfaces))


def test_netio_sums_add_every_interface_container_and_node():
    from overlaytui.analysis.netio import sums
    from overlaytui.model import Engine, Health

    nodes = _nodes()
    snap = ClusterSnapshot(0.0, (Engine("unix:///e1", Health.OK, hostname="standalone"),), nodes=nodes, containers=(
        _container("a", "id1", "web", [("eth0", "front", 10.0, 1.0), ("eth1", "back", 20.0, 2.0)]),
        _container("b", "id1", "web", [("eth0", "front", 100.0, 10.0)]),
        _container("c", "id2", "db", [("eth0", "back", 1000.0, 100.0), ("eth1", None, 5.0, 5.0)]),
        _container("d", None, None, [("eth0", "front", 7.0, 3.0)]),  # not a swarm node: named by its engine
        _container("e", "id3", "db", [("eth0", "back", None, None), ("eth1", "front", 4.0, 4.0)]),  # half rated
        _container("f", "id3", "db", [("eth0", "back", None, None)]),  # no rate yet: left out
    ))
    result = sums(snap)
    by = {dim: {k: (v.rx, v.tx, v.containers) for k, v in table.items()} for dim, table in result.by.items()}
    assert by["node"] == {"node1": (130.0, 13.0, 2), "node2": (1005.0, 105.0, 1), "standalone": (7.0, 3.0, 1),
                          "node3": (4.0, 4.0, 1)}
    assert by["service"] == {"web": (130.0, 13.0, 2), "db": (1009.0, 109.0, 2)}
    assert by["network"] == {"front": (121.0, 18.0, 4), "back": (1020.0, 102.0, 2)}
    assert result.containers == {"a": (30.0, 3.0), "b": (100.0, 10.0), "c": (1005.0, 105.0), "d": (7.0, 3.0)}


def test_partial_totals_and_the_coverage_line():
    from overlaytui.analysis.netio import coverage_line, partial_totals
    from overlaytui.model import Engine, Health, Task, TaskAddress

    def task(tid, node, service, state="running", desired="running", net="back"):
        return Task(tid, service, service, 1, node, desired, state, "", "", 0.0, None, None, None,
                    (TaskAddress(net, net, "10.0.0.9/24"),))

    engines = (Engine("unix:///e1", Health.OK, node_id="id1"),
               Engine("ssh://n3", Health.ERROR, message="connection refused", node_id="id3"))
    tasks = (task("t1", "id1", "web", net="front"), task("t2", "id2", "db"), task("t3", "id3", "cache", net="c"),
             task("t4", "id2", "old", state="shutdown", desired="shutdown", net="gone"),
             task("t5", "id2", "starting", state="pending", net="p"))
    snap = ClusterSnapshot(0.0, engines, nodes=_nodes(), tasks=tasks)
    assert partial_totals(snap) == {"node": {"node2", "node3"}, "service": {"db", "cache"}, "network": {"back", "c"}}
    assert coverage_line(snap) == ("stats from 1 of 3 nodes (node3: its engine ssh://n3: connection refused; "
                                   "node2: no engine connection)")  # grouped by reason, in the reasons' order
    whole = ClusterSnapshot(0.0, engines[:1], nodes=_nodes()[:1], tasks=tasks)
    assert coverage_line(whole) == "" and partial_totals(whole) == {"node": set(), "service": set(), "network": set()}


def test_ping_parse_errors_and_counts_exactly():
    import pytest as _pytest

    from overlaytui.probes.ping import PingParseError, parse_ping, ping_command

    with _pytest.raises(PingParseError) as caught:
        parse_ping("  ping: connect: Network is unreachable  \nsecond line\n")
    assert str(caught.value) == "no ping summary in output: ping: connect: Network is unreachable  "
    with _pytest.raises(PingParseError) as caught:
        parse_ping("x" * 300)
    assert str(caught.value) == "no ping summary in output: " + "x" * 200
    with _pytest.raises(PingParseError) as caught:
        parse_ping("   \n")
    assert str(caught.value) == "no ping summary in output: (empty)"
    silent = parse_ping("5 packets transmitted, 0 received, 100% packet loss, time 4000ms\n")
    assert (silent.transmitted, silent.received, silent.errors, silent.rtt_avg_ms) == (5, 0, 0, None)
    ok = parse_ping("3 packets transmitted, 3 received, 0% packet loss\nrtt min/avg/max/mdev = 1/2/3/0.5 ms\n")
    assert (ok.transmitted, ok.errors) == (3, 0)
    errors = parse_ping("3 packets transmitted, 1 received, +2 errors, 66.6667% packet loss, time 2003ms\n")
    assert (errors.transmitted, errors.received, errors.errors) == (3, 1, 2)
    assert ping_command("10.0.0.2", 3, 0.2, deadline_s=0.5)[-3:-1] == ["-w", "1"]
    assert ping_command("10.0.0.2", 3, 0.2, payload=1422, dont_fragment=True) == [
        "ping", "-q", "-n", "-c", "3", "-i", "0.2", "-W", "1", "-s", "1422", "-M", "do", "10.0.0.2"]


def test_just_below_the_bad_threshold_is_judged_by_its_bound_not_as_bad():
    from overlaytui.probes.iperf import iperf_command

    assert judge_loss(1, 1010) is Verdict.INSUFFICIENT  # 0.099 % seen: not "bad", and too few packets for more
    assert iperf_command("10.0.0.5")[3:5] == ["-p", "5201"]  # the agents' iperf3 server port


def test_a_typical_loss_is_never_rounded_to_zero():
    from overlaytui.analysis.findings import _about

    assert [_about(v) for v in (25.4, 10.0, 9.96, 2.0, 1.0, 0.999, 0.25, 0.004)] == [
        "25", "10", "10.0", "2.0", "1.0", "1.00", "0.25", "0.00"]


def test_the_sanitiser_on_none_and_at_its_escape_boundary():
    """`one_line(None)` is empty like the others; U+FFFD stands alone for each unsafe character in a chart cell.
    `_visible`'s `code < 0x100` survives as `<= 0x100` / `< 257`: an equivalent mutant, U+0100 is never unsafe
    (this pins that it stays untouched, and the widest \\x and narrowest \\u escapes)."""
    assert one_line(None) == display(None) == printable(None) == ""
    assert cell_for_cell("a\x1bb\u202ec") == "a\ufffdb\ufffdc"
    assert display("\u0100\x9f\u200e") == "\u0100\\x9f\\u200e" and one_line("\xff\x7f") == "\xff\\x7f"


def test_the_printable_stream_writes_printable_text_and_is_the_stream_otherwise():
    raw = io.StringIO()
    stream = PrintableStream(raw)
    assert stream.write("a\x1b[2Jb\n") == 7  # what the caller wrote, as a stream returns it
    assert stream.getvalue() == raw.getvalue() == "a\\x1b[2Jb\n"  # other attributes are the raw stream's
    assert stream.closed is False


def test_odd_pings_and_removed_overlays_are_judged_without_a_crash():
    """A recording's ping that sent nothing yet got a reply, slow (its loss is not a number), and a blocked pair
    with a ping on an overlay no longer in the snapshot (removed while its results were still recent): both
    raised before (TypeError, KeyError)."""
    snap = ClusterSnapshot(0.0, (), nodes=_nodes(), networks=(_net("a"),))
    odd = ProbeResult("ping", "a", "node1", "node2", 0.0, sent=0, received=1, rtt_avg_ms=25.0)
    assert [f.check for f in check_probes(snap, [odd], LossThresholds())] == ["latency.high"]
    cut = [_ping("a", "node1", "node2", 0), _ping("a", "node2", "node1", 0), _ping("gone", "node1", "node2", 100)]
    found = check_probes(snap, cut, LossThresholds())
    assert found[0].check == "dataplane.blocked" and found[0].evidence.endswith("(a)")
