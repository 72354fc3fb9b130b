"""What a probe agent's image can run, checked once per agent with one `docker exec`, and the probe kinds that
follows from it.

The image is the user's choice (`--probe-image`): netshoot, busybox, or just a shell, ping and sleep. A kind the
image cannot run is reported once ("not available in IMAGE: missing X") and yields no results: a missing tool
must never read as a network fault.

The check uses shell builtins only. busybox's `sh` prefers its own applets (its `ping` has no `-M do`), so ping
is looked up on PATH as a file (`ot_find`), not with `command -v`; the other tools are tried by running them:
exit 127 means "not there" in every shell, applets included.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

CHECK_SCRIPT = r"""ot_find() { _ifs=$IFS; IFS=:; for _d in $PATH; do if [ -x "$_d/$1" ] && [ ! -d "$_d/$1" ]; then
IFS=$_ifs; echo "$_d/$1"; return 0; fi; done; IFS=$_ifs; return 1; }
ot_have() { "$@" </dev/null >/dev/null 2>&1; [ $? -ne 127 ]; }
echo "OTCAP 1"
if P=$(ot_find ping); then
  echo "ping $P"
  case "$("$P" -V 2>&1)" in *iputils*) echo "flavour iputils";; *) echo "flavour other";; esac
  "$P" -c 1 -W 1 -M do -s 16 127.0.0.1 >/dev/null 2>&1 && echo "df yes"
fi
ot_have sleep 0 && echo "tool sleep"
ot_have iperf3 --version && echo "tool iperf3"
ot_have nslookup --help && echo "tool nslookup"
ot_have nc -h && echo "tool nc"
"""


@dataclass(frozen=True)
class Capabilities:
    """Tools found in an agent's image."""

    ping: str | None = None  # the ping binary's path (a file on PATH, never busybox's applet by accident)
    iputils: bool = False  # iputils ping: `-n` and the options we use exist
    dont_fragment: bool = False  # `ping -M do` works (DF bit: path-MTU search)
    tools: frozenset[str] = frozenset()  # sleep, iperf3, nslookup, nc

    def missing_for(self, kind: str) -> list[str]:
        """What the image lacks to run this probe kind ([] when it can)."""
        if kind == "ping":
            return [] if self.ping else ["ping"]
        if kind == "mtu":
            if not self.ping:
                return ["ping"]
            return [] if self.dont_fragment else ["a ping with -M do (DF bit), e.g. iputils-ping"]
        if kind == "iperf":
            return [] if "iperf3" in self.tools else ["iperf3"]
        if kind == "discovery":
            return [tool for tool in ("nslookup", "nc") if tool not in self.tools]
        return []


class CapabilityError(ValueError):
    """The check's output is not what the check script prints (the exec did not run it)."""


def parse_capabilities(output: str) -> Capabilities:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if "OTCAP 1" not in lines:
        first = lines[0][:200] if lines else "(no output)"
        raise CapabilityError(f"the image's shell did not run the tool check: {first}")
    ping, iputils, df, tools = None, False, False, set()
    for line in lines:
        key, _, value = line.partition(" ")
        if key == "ping" and value.startswith("/"):
            ping = value
        elif key == "flavour":
            iputils = value == "iputils"
        elif key == "df":
            df = value == "yes"
        elif key == "tool" and value:
            tools.add(value)
    return Capabilities(ping, iputils and ping is not None, df and ping is not None, frozenset(tools))


def unavailable(kinds: Iterable[str], caps: Capabilities, image: str) -> dict[str, str]:
    """kind -> why it cannot run with this image, for each requested kind the image cannot run."""
    reasons = {}
    for kind in kinds:
        missing = caps.missing_for(kind)
        if missing:
            reasons[kind] = f"not available in {image}: missing {', '.join(missing)}"
    return reasons
