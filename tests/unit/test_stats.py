"""Stats frames, docker-stats-equal CPU and memory, rates and their edge cases, interface -> network mapping."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from overlaytui.sources.parse import PayloadError
from overlaytui.sources.stats import (
    Attachment,
    InterfaceNetwork,
    container_stats,
    cpu_percent,
    map_interfaces,
    memory_used,
    parse_stats_frame,
    rate,
    read_local_macs,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "lab"


@pytest.fixture(scope="module")
def frames():
    streams = json.loads((FIXTURES / "node1-stats-stream.json").read_text())
    return next(iter(streams.values()))  # two consecutive frames of one container's stream


def test_first_frame_has_no_cpu_yet(frames):
    first = parse_stats_frame(frames[0])
    assert cpu_percent(first) is None
    assert first.networks and all(rx >= 0 and tx >= 0 for rx, tx in first.networks.values())


def test_second_frame_cpu_as_docker_stats(frames):
    second = parse_stats_frame(frames[1])
    raw = frames[1]
    cpu_delta = raw["cpu_stats"]["cpu_usage"]["total_usage"] - raw["precpu_stats"]["cpu_usage"]["total_usage"]
    sys_delta = raw["cpu_stats"]["system_cpu_usage"] - raw["precpu_stats"]["system_cpu_usage"]
    expected = cpu_delta / sys_delta * raw["cpu_stats"]["online_cpus"] * 100 if cpu_delta > 0 else 0.0
    assert cpu_percent(second) == pytest.approx(expected)


def test_memory_excludes_inactive_file_cache_on_cgroup_v1(frames):
    raw = frames[1]
    sample = parse_stats_frame(raw)
    assert memory_used(sample) == raw["memory_stats"]["usage"] - raw["memory_stats"]["stats"]["total_inactive_file"]


def test_memory_cgroup_v2_and_missing():
    base = {"read": "2026-11-26T07:00:00Z"}
    v2 = parse_stats_frame({**base, "memory_stats": {"usage": 1000, "limit": 5000, "stats": {"inactive_file": 300}}})
    assert memory_used(v2) == 700 and v2.mem_limit == 5000
    bigger_cache = parse_stats_frame({**base, "memory_stats": {"usage": 100, "stats": {"inactive_file": 300}}})
    assert memory_used(bigger_cache) == 100
    assert memory_used(parse_stats_frame(base)) is None


def test_stopped_container_frame_is_a_payload_error():
    # a stopped container's stream sends frames with Go's zero time
    with pytest.raises(PayloadError, match="read"):
        parse_stats_frame({"read": "0001-01-01T00:00:00Z", "networks": {}})


@pytest.mark.parametrize(("previous", "current", "seconds", "expected"), [
    (None, 500, 1.0, None),  # first sample
    (1000, 3000, 2.0, 1000.0),
    (5000, 100, 1.0, None),  # counter reset: container restarted
    (1000, 1000, 1.0, 0.0),
    (1000, 2000, 0.0, None),  # no time elapsed
])
def test_rate(previous, current, seconds, expected):
    assert rate(previous, current, seconds) == expected


def test_container_stats_rates_per_interface_and_network(frames):
    first, second = parse_stats_frame(frames[0]), parse_stats_frame(frames[1])
    second = replace(second, networks={k: (rx + 2000, tx + 1000) for k, (rx, tx) in first.networks.items()})
    elapsed = second.read_at - first.read_at
    mapping = {"eth0": InterfaceNetwork("n1", "backend", True), "eth1": InterfaceNetwork("gw", "docker_gwbridge", True)}
    stats = container_stats(container_id="c", name="agent.x", engine="e", node_id="n", task_id="t",
                            service_name="agent", previous=first, current=second, networks=mapping)
    assert [i.name for i in stats.interfaces] == sorted(first.networks)
    assert stats.rx_rate == pytest.approx(2000 * len(first.networks) / elapsed)
    assert stats.network_rates()["backend"] == pytest.approx((2000 / elapsed, 1000 / elapsed))
    first_only = container_stats(container_id="c", name="n", engine="e", node_id=None, task_id=None,
                                 service_name=None, previous=None, current=first, networks={})
    assert first_only.rx_rate is None and first_only.interfaces[0].network_name is None


# Ground truth read from the containers' /sys in the lab (api.2 on node1, web.1 on node1).
API2 = [Attachment("B", "backend", "02:42:0a:f0:02:03"), Attachment("F", "frontend", "02:42:0a:f0:01:08")]
API2_MACS = {"eth0": "02:42:0a:f0:02:03", "eth1": "02:42:0a:f0:01:08", "eth2": "02:42:ac:12:00:04"}
WEB1 = [Attachment("I", "ingress", "02:42:0a:f0:00:08"), Attachment("F", "frontend", "02:42:0a:f0:01:05")]
WEB1_MACS = {"eth0": "02:42:0a:f0:01:05", "eth1": "02:42:0a:f0:00:08", "eth2": "02:42:ac:12:00:05"}
GW = ("G", "docker_gwbridge")


@pytest.mark.parametrize(("attached", "macs"), [(API2, API2_MACS), (WEB1, WEB1_MACS)])
def test_exact_and_inferred_mapping_agree_on_lab_containers(attached, macs):
    exact = map_interfaces(list(macs), attached, macs, GW)
    inferred = map_interfaces(list(macs), attached, None, GW)
    assert all(m.exact for m in exact.values()) and not any(m.exact for m in inferred.values())
    assert {k: v.network_name for k, v in exact.items()} == {k: v.network_name for k, v in inferred.items()}
    assert exact["eth2"].network_name == "docker_gwbridge"


def test_inferred_order_follows_libnetwork():
    attached = [Attachment("o", "zeta-overlay", ""), Attachment("i", "alpha-internal", "", internal=True),
                Attachment("b", "mybridge", "", has_gateway=True)]
    mapping = map_interfaces(["eth2", "eth0", "eth1", "eth3"], attached, None, None)
    assert [mapping[f"eth{i}"].network_name for i in range(4)] == ["mybridge", "zeta-overlay", "alpha-internal", None]


def test_interface_with_unknown_mac_and_no_gateway_stays_unmapped():
    mapping = map_interfaces(["eth0", "eth1"], API2[:1], {"eth0": API2_MACS["eth0"], "eth1": "02:00:00:00:00:99"}, None)
    assert mapping["eth0"].network_name == "backend" and mapping["eth1"].network_id is None


def test_read_local_macs_checks_the_cgroup(tmp_path):
    pid_dir = tmp_path / "42"
    (pid_dir / "root/sys/class/net/eth0").mkdir(parents=True)
    (pid_dir / "root/sys/class/net/lo").mkdir(parents=True)
    (pid_dir / "root/sys/class/net/eth0/address").write_text("02:42:0A:F0:02:03\n")
    (pid_dir / "cgroup").write_text("4:memory:/otlab-node1/abc123\n")
    assert read_local_macs(42, "abc123", proc=str(tmp_path)) == {"eth0": "02:42:0a:f0:02:03"}
    assert read_local_macs(42, "other", proc=str(tmp_path)) is None  # pid reused by another container
    assert read_local_macs(43, "abc123", proc=str(tmp_path)) is None
    assert read_local_macs(None, "abc123", proc=str(tmp_path)) is None


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["read", "cpu_stats", "precpu_stats", "memory_stats", "networks"]),
                       st.none() | st.integers() | st.text(max_size=30) | st.dictionaries(
                           st.text(max_size=10), st.none() | st.integers() | st.dictionaries(
                               st.text(max_size=10), st.integers() | st.text(max_size=5), max_size=3), max_size=4),
                       max_size=5))
def test_malformed_frames_parse_or_raise_payload_error(raw):
    try:
        sample = parse_stats_frame(raw)
    except PayloadError:
        return
    cpu_percent(sample)
    memory_used(sample)
