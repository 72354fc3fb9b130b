"""Running probes inside agent tasks with `docker exec` (blocking: call from a worker thread).

A ping sweep is one exec per (source node, overlay): it pings every destination at once inside the task, each
ping writing to its own file, then prints them in order — N destinations cost one exec and one ping duration.
Every probe ends by itself inside the container (ping's `-w` deadline, `timeout` around iperf3) and is bounded
by the client's socket timeout too, so a probe that hangs ends on both sides.

busybox-static prefers its own applets: `timeout ping` or `ping` inside a busybox `sh` runs busybox's ping,
which has no `-M do`. So ping is never started through `timeout`, and the sweep script resolves the binary with
`which` (a PATH search).
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Sequence

import docker

from ..model import ProbeResult
from ..sources.errors import ENGINE_ERRORS, describe_error
from .iperf import iperf_command, parse_iperf
from .mtu import payload_for
from .ping import PingParseError, parse_ping, ping_command

_SECTION = re.compile(r"^=== (\S+)$", re.MULTILINE)


def exec_run(api: docker.APIClient, container: str, command: Sequence[str], seconds: float | None = None
             ) -> tuple[int, str]:
    """Run a command in a container (killed after `seconds` inside it when given); returns (exit code, output)."""
    wrapped = ["timeout", "-s", "KILL", str(max(1, int(seconds + 0.999))), *command] if seconds else list(command)
    exec_id = api.exec_create(container, wrapped, stdout=True, stderr=True)["Id"]
    output = api.exec_start(exec_id)
    code = api.exec_inspect(exec_id).get("ExitCode")
    return (code if isinstance(code, int) else -1), output.decode(errors="replace")


def sweep_script(targets: Sequence[str], count: int, interval: float) -> str:
    """Shell: ping every target in parallel, each into its own file, then print them in order."""
    lines = ["P=$(which ping)"]
    deadline = count * interval + 3
    for index, target in enumerate(targets):
        cmd = shlex.join(ping_command(target, count, interval, deadline_s=deadline)[1:])
        lines.append(f'"$P" {cmd} > /tmp/otp.{index} 2>&1 &')
    lines.append("wait")
    for index, target in enumerate(targets):
        lines.append(f"echo '=== {target}'; cat /tmp/otp.{index}; rm -f /tmp/otp.{index}")
    return "\n".join(lines)


def split_sweep(output: str) -> dict[str, str]:
    """target -> that ping's output, from a sweep's output."""
    parts = _SECTION.split(output)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def ping_sweep(api: docker.APIClient, container: str, network: str, src: str, targets: dict[str, str],
               count: int, interval: float) -> list[ProbeResult]:
    """Ping every target (hostname -> overlay IP) from one agent task; one ProbeResult per target."""
    now = time.time()
    try:
        _, output = exec_run(api, container, ["sh", "-c", sweep_script(list(targets.values()), count, interval)])
    except ENGINE_ERRORS as exc:
        error = f"exec on {src}: {describe_error(exc)}"
        return [ProbeResult("ping", network, src, dst, now, error=error) for dst in targets]
    sections = split_sweep(output)
    return [ping_result(network, src, dst, sections.get(address, ""), now) for dst, address in targets.items()]


def ping_result(network: str, src: str, dst: str, text: str, at: float | None = None) -> ProbeResult:
    """A ping's output as a ProbeResult (an error result when it has no summary)."""
    at = time.time() if at is None else at
    try:
        stats = parse_ping(text)
    except PingParseError as exc:
        return ProbeResult("ping", network, src, dst, at, error=str(exc)[:200])
    return ProbeResult("ping", network, src, dst, at, sent=stats.transmitted, received=stats.received,
                       rtt_min_ms=stats.rtt_min_ms, rtt_avg_ms=stats.rtt_avg_ms, rtt_max_ms=stats.rtt_max_ms,
                       rtt_mdev_ms=stats.rtt_mdev_ms)


DISCOVERY_PORT = 5201  # the agents' iperf3 server: something that answers TCP on every task
_LOOKUP = "nslookup {name} 2>/dev/null | awk '/^Address/ && $NF !~ /#/ && $NF !~ /^127\\./ {{print $NF}}'"


def discovery_script(service: str, task_address: str) -> str:
    """Shell: resolve the service and tasks.<service> through Docker's DNS, then try TCP to the VIP and to a task."""
    return "\n".join([
        f"vip=$({_LOOKUP.format(name=service)} | head -n 1)",
        f"tasks=$({_LOOKUP.format(name='tasks.' + service)} | wc -l)",
        'echo "VIP ${vip:-none}"',
        'echo "TASKS $tasks"',
        f'if [ -n "$vip" ]; then nc -w 2 "$vip" {DISCOVERY_PORT} </dev/null >/dev/null 2>&1 && echo "VIPTCP ok" '
        '|| echo "VIPTCP fail"; fi',
        f'nc -w 2 {task_address} {DISCOVERY_PORT} </dev/null >/dev/null 2>&1 && echo "TASKTCP ok" '
        '|| echo "TASKTCP fail"',
    ])


def parse_discovery(output: str) -> dict[str, object]:
    fields = dict(line.split(" ", 1) for line in output.splitlines() if " " in line)
    vip = fields.get("VIP", "none").strip()
    tasks = fields.get("TASKS", "").strip()
    return {
        "resolved_vip": None if vip == "none" else vip,
        "resolved_tasks": int(tasks) if tasks.isdigit() else None,
        "vip_answers": {"ok": True, "fail": False}.get(fields.get("VIPTCP", "").strip()),
        "task_answers": {"ok": True, "fail": False}.get(fields.get("TASKTCP", "").strip()),
    }


def discovery(api: docker.APIClient, container: str, network: str, src: str, dst: str, service: str,
              task_address: str) -> ProbeResult:
    now = time.time()
    try:
        _, output = exec_run(api, container, ["sh", "-c", discovery_script(service, task_address)], 15)
    except ENGINE_ERRORS as exc:
        return ProbeResult("discovery", network, src, dst, now, error=f"exec on {src}: {describe_error(exc)}")
    return ProbeResult("discovery", network, src, dst, now, **parse_discovery(output))


def df_ping_passes(api: docker.APIClient, container: str, target: str, packet_size: int) -> bool:
    """Does a packet of this IP size, DF bit set, reach the target (any of 3 tries)?"""
    cmd = ping_command(target, 3, 0.2, payload=payload_for(packet_size), dont_fragment=True, wait_s=1,
                       deadline_s=3)
    _, output = exec_run(api, container, cmd)
    try:
        return parse_ping(output).received > 0
    except PingParseError:
        return False


def throughput(api: docker.APIClient, container: str, network: str, src: str, dst: str, address: str,
               seconds: int) -> ProbeResult:
    now = time.time()
    try:
        _, output = exec_run(api, container, iperf_command(address, seconds), seconds + 10)
    except ENGINE_ERRORS as exc:
        return ProbeResult("iperf", network, src, dst, now, error=f"exec on {src}: {describe_error(exc)}")
    result = parse_iperf(output)
    return ProbeResult("iperf", network, src, dst, now, bits_per_second=result.bits_per_second,
                       retransmits=result.retransmits, error=result.error)
