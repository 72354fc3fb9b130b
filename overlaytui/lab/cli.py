"""`overlaytui lab ...`: build, inspect, break and remove the local multi-node swarm."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from .host import LabError, LabUnavailable, missing_requirements
from .lab import FAULT_KINDS
from .layout import MAX_NODES, NODE_MEMORY_MB, PROBE_IMAGE, node, node_by_name

DESCRIPTION = f"""\
A real Docker Swarm on this Linux machine (root): one dockerd per network namespace (node1..nodeN, their own
hostnames, sockets under /run/overlaytui-lab), joined by the bridge otlab0 on 10.231.0.0/24. Overlays get
subnets from 10.240.0.0/16. Every node has the probe image {PROBE_IMAGE} (busybox, iputils ping, iperf3) and
the deep view's overlaytui/deep:lab (iproute2, iptables-save, nsenter, ethtool, nft).
"""

FAULT_HELP = """\
faults (lab fault NODE KIND [VALUE]):
  loss PCT       drop PCT % of incoming VXLAN packets (udp/4789) inside the node
  mtu BYTES      set the node's underlay link MTU (an MTU black hole below 1500)
  partition      cut the node off the lab bridge
  engine-stop    stop the node's dockerd;  engine-start  starts it again
  hostname NAME  restart the node's engine with this hostname (any bytes: markup, escapes); its name restores
  ssh-stop       stop the node's sshd (lab up --ssh) and its sessions;  ssh-start  starts it again
  firewall       a rule in the node's INPUT chain dropping VXLAN (udp/4789), commented overlaytui-lab-firewall
  stale-fdb [NETWORK]  in an overlay's sandbox on the node (NETWORK, else the first with one), point a peer
                 task's MAC at a VTEP that is no node (192.0.2.1): a stale FDB entry (`clear` restores it)
  clear          remove every fault of the node (and start its engine)
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    lab = subparsers.add_parser(
        "lab", help="build a real multi-node swarm on this machine (root)", description=DESCRIPTION,
        epilog=FAULT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = lab.add_subparsers(dest="lab_command", required=True, metavar="{up,status,env,fault,down}")
    p_up = sub.add_parser("up", help="start the lab (reports the running lab if there is one)")
    p_up.add_argument("--nodes", type=int, default=3, help=f"number of nodes, 1..{MAX_NODES} (default 3; "
                      f"as many as fit in the available memory, ~{NODE_MEMORY_MB} MB each)")
    p_up.add_argument("--managers", type=int, default=1, help="how many of them are managers (default 1)")
    p_up.add_argument("--ssh", action="store_true", help="also an sshd in every node: its engine as "
                      "ssh://root@10.231.0.N (a key and configs are generated; `lab env --ssh` says how to use them)")
    p_status = sub.add_parser("status", help="nodes, sockets, engine state and the faults in force")
    p_status.add_argument("--json", action="store_true", help="print JSON")
    p_env = sub.add_parser("env", help="print `export DOCKER_HOST=...` for a node (default node1)")
    p_env.add_argument("node", nargs="?", default="node1")
    p_env.add_argument("--ssh", action="store_true", help="the node's engine over ssh (after `lab up --ssh`), with "
                       "the ssh options that reach it")
    p_fault = sub.add_parser("fault", help="inject or clear a fault", epilog=FAULT_HELP,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    p_fault.add_argument("node", help="node1..nodeN")
    p_fault.add_argument("kind", choices=list(FAULT_KINDS))
    p_fault.add_argument("value", nargs="?", help="PCT for loss, BYTES for mtu, NAME for hostname, NETWORK for "
                         "stale-fdb")
    sub.add_parser("down", help="stop the engines and remove everything the lab created (safe to repeat)")
    lab.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    if args.lab_command == "env":  # needs no root: it only prints
        try:
            layout = node_by_name(args.node)
        except ValueError as exc:
            return _fail(str(exc))
        if not args.ssh:
            print(f"export DOCKER_HOST={layout.docker_host}")
            return 0
        from . import sshd

        if not sshd.enabled():
            return _fail("the lab has no sshd: `overlaytui lab up --ssh` starts them")
        print(f"export DOCKER_HOST={sshd.node_url(layout)}")
        print(f"export OVERLAYTUI_SSH_CONFIG={sshd.client_config()}  # overlaytui's ssh uses it (ssh -F)")
        print(f"# the docker CLI reads ~/.ssh/config: add the lab's block with `cat {sshd.client_config()} >> "
              "~/.ssh/config`")
        return 0
    problem = missing_requirements(with_image_tools=args.lab_command == "up")
    if problem:
        return _fail(problem)
    from . import lab  # imported late: `lab env` and `--help` need none of it

    try:
        if args.lab_command == "up":
            state, created = lab.up(args.nodes, args.managers, log=_info, ssh=args.ssh)
            if not created:
                _info(f"a lab with {state.nodes} nodes is already running (`overlaytui lab down` removes it)")
            _print_status(*lab.status())
            _print_usage(state.nodes)
        elif args.lab_command == "status":
            state, nodes = lab.status()
            if args.json:
                print(json.dumps({"running": state is not None, "nodes": [asdict(n) for n in nodes]}, indent=2))
            elif state is None:
                print("no lab is running (start one with `overlaytui lab up`)")
            else:
                _print_status(state, nodes)
        elif args.lab_command == "fault":
            print(lab.fault(args.node, args.kind, args.value))
        elif args.lab_command == "down":
            lab.down(log=_info)
    except LabUnavailable as exc:
        return _fail(str(exc))
    except LabError as exc:
        return _fail(str(exc), code=1)
    return 0


def _info(message: str) -> None:
    print(message, file=sys.stderr)


def _fail(message: str, code: int = 2) -> int:
    print(f"overlaytui lab: {message}", file=sys.stderr)
    return code


def _print_status(state, nodes) -> None:
    if state is None:
        return
    print(f"{'NODE':7} {'ROLE':8} {'SWARM':8} {'ENGINE':14} {'ADDRESS':12} FAULTS")
    for n in nodes:
        print(f"{n.name:7} {n.role:8} {n.swarm_state:8} {n.engine:14} {n.address:12} {', '.join(n.faults) or '-'}")


def _print_usage(count: int) -> None:
    print("\nPoint the docker CLI at a node:")
    for i in range(1, count + 1):
        print(f"  {node(i).name}: export DOCKER_HOST={node(i).docker_host}")
    print('  or: eval "$(overlaytui lab env node1)" && docker node ls')
