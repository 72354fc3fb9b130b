"""The contract between the deep view's reader (sources/deep.py: a short-lived container per node that runs
commands on the host and in each overlay sandbox) and its parser (sources/kernel.py: typed kernel views).

A node's raw reading is a mapping from a *section key* to a `Reading`. Keys name where and what was read:

- `host/<what>`: in the node's own (host) network namespace, e.g. `host/ip-link` (`ip -d -s -j link show`),
  `host/ip-addr` (`ip -j addr show`), `host/route-get/<peer address>` (`ip -j route get <peer address>`: the
  interface and source address VXLAN uses toward that peer), `host/ethtool-k/<ifname>`, `host/ethtool-i/<ifname>`,
  `host/iptables-legacy-save` / `host/iptables-nft-save` (`-c`, with counters), `host/nft-ruleset`
  (`nft -j list ruleset`), `host/xfrm-state` (`ip xfrm state`, text), `host/xfrm-policy` (`ip xfrm policy`),
  `host/proc-modules` (/proc/modules), `host/kernel-symbols` (`grep -wE 'esp_output|esp_input|esp6_output|
  ip_vs_conn_new' /proc/kallsyms`: exit 1 with no stderr means none; a built-in esp4 or ip_vs shows only here),
  `host/kernel-config` (`zcat /proc/config.gz`, where the kernel has it), `host/sys-module` (`ls /sys/module`),
  `host/uname` (`uname -r`), `host/ip_vs` (/proc/net/ip_vs), `host/conntrack-count`, `host/conntrack-max`
  (/proc/sys/net/netfilter/nf_conntrack_count and _max);
- `sbx/<sandbox>/<what>`: inside one overlay network sandbox (the engine's netns file named `<sandbox>`, e.g.
  `1-abcdef1234`), e.g. `sbx/1-abcdef1234/ip-link`, `.../fdb` (`bridge -j fdb show`), `.../neigh`
  (`ip -j neigh show`);
- `meta/<what>`: about the reading itself, e.g. `meta/netns-dir` (where the sandboxes were found), `meta/tools`
  (the tools the image has, one per line), `meta/sandboxes` (the sandbox names, one per line), `meta/error`
  (present when the node could not be read, or only in part: rc 1 and the reason as its err; the sections read
  before it are kept beside it, the rest are absent).

The frame builder takes the readings as `deep: Mapping[str, NodeRaw]`, keyed by the swarm node id (a hostname is
accepted where no node has that id).

A `Reading` says what happened, so the parser never guesses: a tool the image lacks is `missing`, a command that
failed keeps its exit code and stderr, and an absent key means it was not attempted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

MAX_OUTPUT = 4 * 1024 * 1024  # bytes kept per section: the reader truncates beyond this and says so


@dataclass(frozen=True, slots=True)
class Reading:
    rc: int  # the command's exit code (0: ok)
    out: str  # stdout (decoded with errors="replace"; at most MAX_OUTPUT)
    err: str = ""  # stderr, for the message when rc != 0
    missing: bool = False  # the tool is not in the image: the reading is unavailable, never a fault
    truncated: bool = False  # out was cut at MAX_OUTPUT

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.missing


NodeRaw = Mapping[str, Reading]  # section key -> reading, for one node
