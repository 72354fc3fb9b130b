"""Running probes inside agent tasks with `docker exec` (blocking: call from a worker thread).

A ping sweep is one exec per (source node, overlay): it pings every destination at once inside the task, each
ping writing to its own file, then prints them in order — N destinations cost one exec and one ping duration.

Every probe ends by itself inside the container — ping's own `-w` deadline, and a shell watchdog (`sleep N; kill
-9`) around everything else — and is bounded by the client's socket timeout too. The watchdog needs only `sh`,
`sleep` and `kill` (a builtin): images without a `timeout` executable (busybox has it only as an applet, which
`docker exec` cannot start) work the same.

A probe whose exec fails (the engine refuses, exit 126/127, output that is not the probe's) is an error result
with its reason: never a measurement. Everything that goes into a command line is either a validated IP address
or shell-quoted (`targets.py`).

busybox-static prefers its own applets: `ping` inside a busybox `sh` runs busybox's ping, which has no `-M do`.
So the sweep runs the ping binary by the path the capability check found (`capabilities.py`).
"""

from __future__ import annotations

import math
import re
import shlex
import time
from collections.abc import Sequence

import docker

from ..model import ProbeResult
from ..sources.errors import ENGINE_ERRORS, describe_error
from .capabilities import CHECK_SCRIPT, Capabilities, CapabilityError, parse_capabilities
from .iperf import iperf_command, parse_iperf
from .mtu import IP6_ICMP_HEADERS, IP_ICMP_HEADERS, MIN_MTU
from .ping import PingParseError, parse_ping, ping_command
from .targets import ip_address

_SECTION = re.compile(r"^=== (\S+)$", re.MULTILINE)
NOT_RUN = (126, 127)  # the shell could not run the command: not executable / not found


class ExecFailed(Exception):
    """The probe's command did not run (as opposed to: it ran and measured a failure)."""


def bounded(command: Sequence[str], seconds: float) -> list[str]:
    """The command under a shell watchdog that kills it after `seconds` (no `timeout` binary needed). The
    watchdog's output goes to /dev/null, else its `sleep` would hold the exec's stream open until it ends."""
    limit = max(1, int(seconds + 0.999))
    script = (f'"$@" & p=$!; (sleep {limit}; kill -9 $p) >/dev/null 2>&1 & w=$!; '
              'wait $p; r=$?; kill $w 2>/dev/null; exit $r')
    return ["sh", "-c", script, "sh", *command]


def exec_run(api: docker.APIClient, container: str, command: Sequence[str], seconds: float | None = None
             ) -> tuple[int, str]:
    """Run a command in a container (killed after `seconds` inside it when given); returns (exit code, output)."""
    wrapped = bounded(command, seconds) if seconds else list(command)
    exec_id = api.exec_create(container, wrapped, stdout=True, stderr=True)["Id"]
    output = api.exec_start(exec_id)
    code = api.exec_inspect(exec_id).get("ExitCode")
    return (code if isinstance(code, int) else -1), output.decode(errors="replace")


def _first_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[0][:200] if lines else "(no output)"


def check_capabilities(api: docker.APIClient, container: str) -> Capabilities:
    """What this agent's image can run (one exec). Raises ExecFailed when the check itself could not run."""
    code, output = exec_run(api, container, ["sh", "-c", CHECK_SCRIPT], 20)
    try:
        return parse_capabilities(output)
    except CapabilityError as exc:
        raise ExecFailed(f"{exc} (exit {code})") from None


def with_targets(script: str, targets: Sequence[str]) -> list[str]:
    """`sh -c script` with the targets (validated IP addresses) as its arguments ("$@"). Not in the script: one
    argument may hold 128 KiB at most (Linux's MAX_ARG_STRLEN), which a line per destination outgrew at ~900
    destinations; arguments share the far larger ARG_MAX (2 MiB by default: ~45,000 IPv6 addresses, more IPv4)."""
    return ["sh", "-c", script, "sh", *(ip_address(t) for t in targets)]


# Each target's output back in order, a section `=== ADDRESS` each, read with builtins only (no `cat`)
_PRINT_SECTIONS = ('i=0; for t in "$@"; do echo "=== $t"; while IFS= read -r l; do echo "$l"; done < {files}$i; '
                   'i=$((i + 1)); done')


def sweep_command(targets: Sequence[str], count: int, interval: float, ping: str = "ping", iputils: bool = True
                  ) -> list[str]:
    """Shell: ping every target in parallel, each into its own file, then print them in order. Builtins only
    besides ping."""
    deadline = count * interval + 3
    flags = shlex.join(ping_command("", count, interval, deadline_s=deadline, iputils=iputils)[1:-1])
    script = "\n".join([f"P={shlex.quote(ping)}",
                        f'i=0; for t in "$@"; do "$P" {flags} "$t" > /tmp/otp.$i 2>&1 & i=$((i + 1)); done',
                        "wait", _PRINT_SECTIONS.format(files="/tmp/otp.")])
    return with_targets(script, targets)


def split_sweep(output: str) -> dict[str, str]:
    """target -> that ping's output, from a sweep's output."""
    parts = _SECTION.split(output)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def ping_sweep(api: docker.APIClient, container: str, network: str, src: str, targets: dict[str, str],
               count: int, interval: float, caps: Capabilities | None = None) -> list[ProbeResult]:
    """Ping every target (hostname -> overlay IP) from one agent task; one ProbeResult per target."""
    now = time.time()
    caps = caps or Capabilities(ping="ping", iputils=True)
    try:
        command = sweep_command(list(targets.values()), count, interval, caps.ping or "ping", caps.iputils)
    except ValueError as exc:
        return [ProbeResult("ping", network, src, dst, now, error=str(exc)) for dst in targets]
    try:
        code, output = exec_run(api, container, command, count * interval + 15)
    except ENGINE_ERRORS as exc:
        error = f"exec on {src}: {describe_error(exc)}"
        return [ProbeResult("ping", network, src, dst, now, error=error) for dst in targets]
    if code in NOT_RUN or not _SECTION.search(output):
        error = f"the ping sweep did not run on {src} (exit {code}): {_first_line(output)}"
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


def lookup_script(service: str) -> str:
    """Shell: ask Docker's DNS (127.0.0.11) for the service and tasks.<service>; parsed in Python, so the image
    needs nslookup and nothing else (no awk, head or wc)."""
    name = shlex.quote(service)
    tasks = shlex.quote("tasks." + service)
    return f"echo '=== NAME'; nslookup {name} 2>&1; echo '=== TASKS'; nslookup {tasks} 2>&1; echo '=== END'"


def tcp_script(vip: str | None, task_address: str) -> str:
    """Shell: a TCP connect to the VIP (when there is one) and to another node's task, on the agents' port."""
    lines = []
    if vip:
        lines.append(f"nc -w 2 {ip_address(vip)} {DISCOVERY_PORT} </dev/null >/dev/null 2>&1 && echo 'VIPTCP ok' "
                     "|| echo 'VIPTCP fail'")
    lines.append(f"nc -w 2 {ip_address(task_address)} {DISCOVERY_PORT} </dev/null >/dev/null 2>&1 "
                 "&& echo 'TASKTCP ok' || echo 'TASKTCP fail'")
    return "\n".join(lines)


_ADDRESS = re.compile(r"^Address(?:\s+\d+)?:?\s+(\S+)", re.MULTILINE)


def nslookup_addresses(text: str) -> list[str]:
    """The answer's addresses in nslookup output (busybox or bind): not the server's (`127.0.0.11#53`)."""
    found = []
    for match in _ADDRESS.finditer(text):
        address = match.group(1)
        if "#" in address or address.startswith("127."):
            continue
        try:
            found.append(ip_address(address))
        except ValueError:
            continue
    return found


def parse_lookups(output: str) -> tuple[str | None, int]:
    """(the service name's first address, how many addresses tasks.<service> has) from `lookup_script` output.
    Raises ExecFailed when nslookup did not run (a resolver that answers "not found" did run)."""
    sections = split_sweep(output)
    if "END" not in sections:
        raise ExecFailed(f"the lookup did not complete: {_first_line(output)}")
    for key in ("NAME", "TASKS"):
        if "Server" not in sections.get(key, ""):
            raise ExecFailed(f"nslookup did not run: {_first_line(sections.get(key, '') or output)}")
    names = nslookup_addresses(sections["NAME"])
    return (names[0] if names else None), len(nslookup_addresses(sections["TASKS"]))


def parse_tcp(output: str) -> dict[str, bool | None]:
    fields = dict(line.split(" ", 1) for line in output.splitlines() if " " in line)
    return {
        "vip_answers": {"ok": True, "fail": False}.get(fields.get("VIPTCP", "").strip()),
        "task_answers": {"ok": True, "fail": False}.get(fields.get("TASKTCP", "").strip()),
    }


def discovery(api: docker.APIClient, container: str, network: str, src: str, dst: str, service: str,
              task_address: str) -> ProbeResult:
    """Resolve the service and tasks.<service> through Docker's DNS from inside the agent, then try TCP to the
    VIP and to a task on another node. Any step that did not run makes the whole result an error."""
    now = time.time()
    try:
        _, output = exec_run(api, container, ["sh", "-c", lookup_script(service)], 15)
        vip, tasks = parse_lookups(output)
        code, output = exec_run(api, container, ["sh", "-c", tcp_script(vip, task_address)], 10)
        tcp = parse_tcp(output)
        if code in NOT_RUN or tcp["task_answers"] is None:
            raise ExecFailed(f"the TCP check did not run (exit {code}): {_first_line(output)}")
    except ENGINE_ERRORS as exc:
        return ProbeResult("discovery", network, src, dst, now, error=f"exec on {src}: {describe_error(exc)}")
    except ExecFailed as exc:
        return ProbeResult("discovery", network, src, dst, now, error=f"on {src}: {exc}")
    return ProbeResult("discovery", network, src, dst, now, resolved_vip=vip, resolved_tasks=tasks, **tcp)


# The path-MTU search (mtu.py's find_path_mtu, step for step) in the agent's shell: every destination of a source
# searched in one exec, by MTU_WORKERS searches at a time. Done from here with an exec per step, a healthy pair cost 2
# execs (~3 HTTP calls each) and a black hole ~12; at 36 nodes a source's 35 searches through the engine did not end
# within 105 s on the lab (issue 26). A few workers, each taking its share of the destinations one after another, keep
# a node's probing to MTU_WORKERS DF pings in flight whatever the cluster's size (every search at once was tried
# first: 199 at 200 nodes; on the lab the two lost about as many pairs in a first round, 44 and 40 of 552, so the
# bound on a node's load is the reason, not a measured gain). A step is one DF ping of 3 packets (any reply passes);
# "message too long" (larger than the local interface) does not pass; anything else without a summary is ping not
# running: an error, never a smaller path MTU. Before searching, the smallest size is tried up to 3 times, 1 s and 2 s
# apart: the first packets between new tasks can be lost while the overlay learns its neighbours. Builtins only
# besides ping and sleep; each search writes its own file (emptied first), read back in order. A watchdog stops the
# workers still running at the bound: their unfinished searches say so, the finished ones keep their result.
MTU_WORKERS = 16
MTU_STEP_S = 3  # a step at worst: ping's -w 3 deadline
_MTU_FUNCTIONS = r"""ot_pass() {
  ot_out=$("$P" $F -s $(($1 - I)) "$2" 2>&1)
  case "$ot_out" in
    *" 0 received"*|*"essage too long"*) return 1;;
    *" received"*) return 0;;
  esac
  return 2
}
ot_search() {
  case "$1" in *:*) I=$I6;; *) I=$I4;; esac
  for ot_w in 1 2 0; do
    ot_pass $L "$1"; ot_r=$?
    [ $ot_r -ne 1 ] && break
    [ $ot_w -gt 0 ] && sleep $ot_w 2>/dev/null
  done
  [ $ot_r -eq 2 ] && { echo "ERR $ot_out"; return; }
  ot_pass $H "$1"; ot_r=$?
  [ $ot_r -eq 0 ] && { echo "MTU $H"; return; }
  [ $ot_r -eq 2 ] && { echo "ERR $ot_out"; return; }
  ot_pass $L "$1"; ot_r=$?
  [ $ot_r -eq 1 ] && { echo "NONE"; return; }
  [ $ot_r -eq 2 ] && { echo "ERR $ot_out"; return; }
  ot_g=$L; ot_b=$H
  while [ $((ot_b - ot_g)) -gt 1 ]; do
    ot_m=$(((ot_g + ot_b) / 2))
    ot_pass $ot_m "$1"; ot_r=$?
    if [ $ot_r -eq 0 ]; then ot_g=$ot_m; elif [ $ot_r -eq 1 ]; then ot_b=$ot_m; else echo "ERR $ot_out"; return; fi
  done
  echo "MTU $ot_g"
}
ot_worker() {
  ot_me=$1; shift; ot_k=0
  for ot_t in "$@"; do
    [ $((ot_k % W)) -eq $ot_me ] && ot_search "$ot_t" > /tmp/otm.$ot_k 2>&1
    ot_k=$((ot_k + 1))
  done
}
ot_wait() {
  (sleep $B; kill $ot_pids) >/dev/null 2>&1 & ot_wd=$!
  for ot_p in $ot_pids; do wait $ot_p; done
  kill $ot_wd 2>/dev/null
}"""


def mtu_search_seconds(high: int, low: int = MIN_MTU) -> int:
    """One search's bound: every step at its worst (3 warm-up steps, the largest and the smallest size, then the
    halving of [low, high]), the warm-up's pauses and a margin."""
    return MTU_STEP_S * (5 + math.ceil(math.log2(max(high - low, 2)))) + 3 + 2


def mtu_seconds(destinations: int, high: int = 1450) -> int:
    """A source's search of `destinations` at worst: each worker's share of them, one after another."""
    return mtu_search_seconds(high) * max(1, math.ceil(destinations / MTU_WORKERS))


def mtu_command(targets: Sequence[str], high: int, ping: str = "ping", iputils: bool = True, low: int = MIN_MTU
                ) -> list[str]:
    """Shell: the path-MTU search to every target (validated IP addresses), each printed as a section
    `=== ADDRESS` with `MTU SIZE`, `NONE` (no size arrives), `ERR <ping's output>` (ping did not run) or nothing
    (stopped at the bound). Worker w searches the targets w, w + W, w + 2W, ... one after another."""
    flags = shlex.join(ping_command("", 3, 0.2, dont_fragment=True, wait_s=1, deadline_s=MTU_STEP_S,
                                    iputils=iputils)[1:-1])
    lines = [f"P={shlex.quote(ping)}", f"F={shlex.quote(flags)}", f"H={int(high)}", f"L={int(low)}",
             f"I4={IP_ICMP_HEADERS}", f"I6={IP6_ICMP_HEADERS}", f"B={mtu_seconds(len(targets), int(high))}",
             f"W={MTU_WORKERS}", "ot_pids=",
             _MTU_FUNCTIONS,
             'n=0; for t in "$@"; do : > /tmp/otm.$n; n=$((n + 1)); done',  # never the last round's results
             'w=0; while [ $w -lt $W ] && [ $w -lt $n ]; do',
             '  ot_worker $w "$@" & ot_pids="$ot_pids $!"; w=$((w + 1))',
             'done',
             "ot_wait", _PRINT_SECTIONS.format(files="/tmp/otm.")]
    return with_targets("\n".join(lines), targets)


def mtu_result(network: str, src: str, dst: str, text: str, high: int, at: float, bound: float = 0) -> ProbeResult:
    """One destination's section of a path-MTU search as a ProbeResult (an error when it did not measure). Its
    first line that is the search's own (a shell's stray complaint before it is skipped)."""
    lines = [line for line in text.splitlines() if line.startswith(("MTU ", "NONE", "ERR "))]
    word, _, rest = lines[0].partition(" ") if lines else ("", "", "")
    if word == "MTU" and rest.strip().isdigit() and MIN_MTU <= int(rest) <= high:
        return ProbeResult("mtu", network, src, dst, at, path_mtu=int(rest))
    if word == "NONE":
        return ProbeResult("mtu", network, src, dst, at, error="no packet of any size arrives")
    if word == "ERR":
        return ProbeResult("mtu", network, src, dst, at,
                           error=f"on {src}: the DF ping did not run: {rest[:200] or '(no output)'}")
    if not text.strip():
        return ProbeResult("mtu", network, src, dst, at,
                           error=f"on {src}: the path-MTU search did not finish within {bound:g} s")
    return ProbeResult("mtu", network, src, dst, at,
                       error=f"on {src}: the path-MTU search gave no result: {_first_line(text)}")


def mtu_sweep(api: docker.APIClient, container: str, network: str, src: str, targets: dict[str, str], high: int,
              caps: Capabilities | None = None) -> list[ProbeResult]:
    """The path MTU from one agent task to every target (hostname -> overlay IP), one exec; one ProbeResult per
    target. Bounded inside the container by the script's watchdog (mtu_seconds()) and a margin beyond it."""
    caps = caps or Capabilities(ping="ping", iputils=True, dont_fragment=True)
    try:
        command = mtu_command(list(targets.values()), high, caps.ping or "ping", caps.iputils)
    except ValueError as exc:
        return [ProbeResult("mtu", network, src, dst, time.time(), error=str(exc)) for dst in targets]
    limit = mtu_seconds(len(targets), high) + 5
    try:
        code, output = exec_run(api, container, command, limit)
    except ENGINE_ERRORS as exc:
        error = f"exec on {src}: {describe_error(exc)}"
        return [ProbeResult("mtu", network, src, dst, time.time(), error=error) for dst in targets]
    now = time.time()
    if code in NOT_RUN or not _SECTION.search(output):
        error = (f"the path-MTU search on {src} was stopped after {limit} s" if code == 137 else
                 f"the path-MTU search did not run on {src} (exit {code}): {_first_line(output)}")
        return [ProbeResult("mtu", network, src, dst, now, error=error) for dst in targets]
    sections = split_sweep(output)
    bound = mtu_seconds(len(targets), high)
    return [mtu_result(network, src, dst, sections.get(address, ""), high, now, bound)
            for dst, address in targets.items()]


def throughput(api: docker.APIClient, container: str, network: str, src: str, dst: str, address: str,
               seconds: int) -> ProbeResult:
    now = time.time()
    try:
        _, output = exec_run(api, container, iperf_command(ip_address(address), seconds), seconds + 10)
    except ENGINE_ERRORS as exc:
        return ProbeResult("iperf", network, src, dst, now, error=f"exec on {src}: {describe_error(exc)}")
    result = parse_iperf(output)
    return ProbeResult("iperf", network, src, dst, now, bits_per_second=result.bits_per_second,
                       retransmits=result.retransmits, error=result.error)
