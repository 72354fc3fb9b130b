"""The probe runner against a real shell: watchdog deadlines without a `timeout` binary, the capability check,
exec failures as errors (never measurements), validated targets, discovery output of busybox and bind."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time

import pytest

from overlaytui.model import ClusterSnapshot, Coverage, Network, PairGap, ProbeResult
from overlaytui.probes import runner
from overlaytui.probes.agent import agent_tasks
from overlaytui.probes.capabilities import CHECK_SCRIPT, Capabilities, CapabilityError, parse_capabilities, unavailable
from overlaytui.probes.scheduler import ProbeJob, ProbeScheduler
from overlaytui.probes.targets import ip_address

DASH = shutil.which("dash") or "/bin/sh"


def sh(argv: list[str], timeout: float = 20) -> tuple[int, str, float]:
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started


def test_watchdog_kills_a_hung_command_without_a_timeout_binary():
    code, _, took = sh(runner.bounded(["sleep", "30"], 1))
    assert code == 137 and took < 5  # SIGKILL after 1 s
    code, out, took = sh(runner.bounded(["sh", "-c", "echo done; exit 3"], 10))
    assert (code, out.strip()) == (3, "done") and took < 2  # the exit code passes through, no waiting


def test_capability_check_in_a_shell_with_only_some_tools(tmp_path):
    """The real check script in dash, with a PATH holding sleep and a fake iputils ping, nothing else."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sleep").symlink_to(shutil.which("sleep"))
    ping = bin_dir / "ping"
    ping.write_text('#!/bin/sh\ncase "$1" in -V) echo "ping from iputils 20221126";; esac\nexit 0\n')
    ping.chmod(0o755)
    code, out, _ = sh(["env", "-i", f"PATH={bin_dir}", DASH, "-c", CHECK_SCRIPT])
    caps = parse_capabilities(out)
    assert caps.ping == str(ping) and caps.iputils and caps.dont_fragment
    assert caps.tools == frozenset({"sleep"})
    assert unavailable(("ping", "mtu", "iperf", "discovery"), caps, "img") == {
        "iperf": "not available in img: missing iperf3", "discovery": "not available in img: missing nslookup, nc"}


def test_capabilities_of_busybox_ping_plan_out_the_mtu_search():
    caps = parse_capabilities("OTCAP 1\nping /bin/ping\nflavour other\ntool sleep\ntool nslookup\ntool nc\n")
    assert caps.ping == "/bin/ping" and not caps.iputils and not caps.dont_fragment
    assert caps.missing_for("ping") == [] and caps.missing_for("discovery") == []
    assert "-M do" in caps.missing_for("mtu")[0]
    assert Capabilities().missing_for("ping") == ["ping"]


@pytest.mark.parametrize("output", ["", "OCI runtime exec failed: exec: \"sh\": executable file not found",
                                    "sh: 1: syntax error"])
def test_a_check_that_did_not_run_is_an_error(output):
    with pytest.raises(CapabilityError):
        parse_capabilities(output)


@pytest.mark.parametrize("bad", ["-f", "10.0.0.1; reboot", "$(id)", "node1", "", "10.0.0.256", "1.2.3.4 -s 9"])
def test_only_ip_addresses_reach_a_command_line(bad):
    with pytest.raises(ValueError):
        ip_address(bad)
    with pytest.raises(ValueError):
        runner.sweep_command([bad], 3, 0.2)
    with pytest.raises(ValueError):
        runner.tcp_script(None, bad)


def test_addresses_are_canonical_and_names_are_quoted():
    assert ip_address("10.240.0.5/24") == "10.240.0.5" and ip_address("fd00::0001") == "fd00::1"
    script = runner.lookup_script("x'; touch /tmp/pwned; '")
    assert "'\"'\"'" in script  # shell-quoted: the name stays one argument


BUSYBOX_LOOKUP = """=== NAME
Server:\t\t127.0.0.11
Address:\t127.0.0.11:53

Non-authoritative answer:
Name:\toverlaytui-probe-net
Address: 10.240.3.2

=== TASKS
Server:\t\t127.0.0.11
Address:\t127.0.0.11:53

Name:\ttasks.overlaytui-probe-net
Address: 10.240.3.5
Name:\ttasks.overlaytui-probe-net
Address: 10.240.3.4

=== END
"""
BIND_LOOKUP = """=== NAME
Server:\t\t127.0.0.11
Address:\t127.0.0.11#53

Non-authoritative answer:
Name:\tweb
Address: 10.0.1.2
=== TASKS
Server:\t\t127.0.0.11
Address:\t127.0.0.11#53

** server can't find tasks.web: NXDOMAIN

=== END
"""


def test_lookups_of_busybox_and_bind_nslookup():
    assert runner.parse_lookups(BUSYBOX_LOOKUP) == ("10.240.3.2", 2)
    assert runner.parse_lookups(BIND_LOOKUP) == ("10.0.1.2", 0)  # ran and found nothing: a real answer


@pytest.mark.parametrize("output", [
    "=== NAME\nsh: 1: nslookup: not found\n=== TASKS\nsh: 1: nslookup: not found\n=== END\n",
    "OCI runtime exec failed: exec failed: unable to start container process: exec: \"timeout\": executable "
    "file not found in $PATH: unknown",
    "=== NAME\nServer: 127.0.0.11\n",  # killed half way
])
def test_lookups_that_did_not_run_are_errors_not_dns_failures(output):
    with pytest.raises(runner.ExecFailed):
        runner.parse_lookups(output)


def test_tcp_check_output():
    assert runner.parse_tcp("VIPTCP fail\nTASKTCP ok\n") == {"vip_answers": False, "task_answers": True}
    assert runner.parse_tcp("sh: nc: not found\n") == {"vip_answers": None, "task_answers": None}


class FakeExecAPI:
    """The three exec calls docker-py makes, answering with a fixed exit code and output."""

    def __init__(self, code: int, output: str):
        self.code, self.output, self.commands = code, output, []

    def exec_create(self, container, cmd, **kwargs):
        self.commands.append(cmd)
        return {"Id": "e1"}

    def exec_start(self, exec_id):
        return self.output.encode()

    def exec_inspect(self, exec_id):
        return {"ExitCode": self.code}


def test_a_sweep_that_did_not_run_gives_errors_for_every_target():
    api = FakeExecAPI(127, 'OCI runtime exec failed: exec: "sh": executable file not found in $PATH')
    results = runner.ping_sweep(api, "c1", "net", "n1", {"n2": "10.0.0.2", "n3": "10.0.0.3"}, 3, 0.2)
    assert [r.dst_node for r in results] == ["n2", "n3"]
    assert all(not r.measured and "did not run" in r.error for r in results)


def test_a_discovery_whose_exec_fails_is_an_error_not_a_dns_finding():
    from overlaytui.analysis.findings import check_discovery

    api = FakeExecAPI(126, "OCI runtime exec failed: exec: \"timeout\": executable file not found in $PATH")
    result = runner.discovery(api, "c1", "net", "n1", "n2", "overlaytui-probe-net", "10.0.0.2")
    assert not result.measured and result.resolved_vip is None
    assert check_discovery({("net", "n1", "n2"): result}, {}) == []


def _task(node, state, err="", address="10.240.0.5/24", network="net", container="c"):
    return {"NodeID": node, "DesiredState": "running" if state == "running" else "shutdown",
            "Status": {"State": state, "Err": err, "Timestamp": f"2026-11-27T01:00:0{len(err) % 10}Z",
                       "ContainerStatus": {"ContainerID": container} if state == "running" else {}},
            "NetworksAttachments": [{"Network": {"Spec": {"Name": network}}, "Addresses": [address]}]}


def test_agent_tasks_report_failures_per_node_and_validate_addresses():
    tasks = [_task("a", "running"), _task("b", "rejected", "No such image: x:1"),
             _task("b", "rejected", "No such image: x:1"), _task("c", "running", address="-oops"),
             _task("d", "failed", "starting container failed"), _task("d", "running", container="d1")]
    running, failures = agent_tasks(tasks, "net")
    assert [(t.node_id, t.address) for t in running] == [("a", "10.240.0.5"), ("d", "10.240.0.5")]
    assert failures == {"b": (2, "No such image: x:1")}  # d runs again: not a failure


def test_scheduler_turns_a_crashing_job_into_error_results():
    async def boom():
        raise ConnectionError("engine went away")

    async def fine():
        return [ProbeResult("ping", "net", "a", "c", 0.0, sent=3, received=3)]

    jobs = [ProbeJob("ping", "net", boom, (("a", "b"),)), ProbeJob("ping", "net", fine, (("a", "c"),))]
    results = asyncio.run(ProbeScheduler(jitter=0).run(jobs, lambda r: None))
    by = {r.dst_node: r for r in results}
    assert by["b"].error.startswith("the ping probe failed") and "engine went away" in by["b"].error
    assert by["c"].measured


def test_outcome_never_says_fine_on_what_was_not_measured():
    from overlaytui.analysis.thresholds import LossThresholds
    from overlaytui.commands.probe import outcome

    net = Network("n", "net", "overlay", "swarm", "10.1.0.0/24", None, 4097, None, False, False, False, False)
    snap = ClusterSnapshot(0.0, (), networks=(net,))
    ok = [ProbeResult("ping", "net", "a", "b", 0, sent=100, received=100)]
    gap = PairGap("b", "a", "no probe agent on b: No such image: x")
    th = LossThresholds()
    assert outcome(ok, [Coverage("net", "ping", 2, 1, (gap,))], snap, th)[0] == 3
    assert outcome(ok[:1], [Coverage("net", "ping", 1, 1)], snap, th)[0] == 0
    code, line = outcome([], [Coverage("net", "ping", 2, 0, (gap, gap))], snap, th)
    assert code == 2 and "No such image: x" in line
    assert outcome([], [], snap, th)[0] == 2
    lossy = [ProbeResult("ping", "net", "a", "b", 0, sent=100, received=50)]
    assert outcome(lossy, [Coverage("net", "ping", 2, 1, (gap,))], snap, th)[0] == 1
    failed = [ProbeResult("ping", "net", "a", "b", 0, error="exec failed")]
    assert outcome(failed, [Coverage("net", "ping", 1, 0, (PairGap("a", "b", "exec failed"),))], snap, th)[0] == 2


def test_a_ping_that_sent_nothing_measured_nothing():
    from overlaytui.analysis.thresholds import LossThresholds, Verdict, judge
    from overlaytui.commands.probe import matrix_text

    net = Network("n", "net", "overlay", "swarm", "10.1.0.0/24", None, 4097, None, False, False, False, False)
    snap = ClusterSnapshot(0.0, (), networks=(net,))
    empty = runner.ping_result("net", "a", "b", "0 packets transmitted, 0 received, 100% packet loss")
    assert not empty.measured and judge(empty, snap.network(empty.network), LossThresholds()) is Verdict.UNKNOWN
    assert "no packet sent" in matrix_text([empty], snap)
