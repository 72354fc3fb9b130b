"""Command-line flags shared by every command that talks to a cluster."""

from __future__ import annotations

import argparse
import math
import signal
import sys
from collections.abc import Callable

from ..sources.endpoints import EndpointError, EndpointSpec, resolve_endpoints


def add_endpoint_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "endpoints", "which engines to use, chosen as the docker CLI chooses: --host, else --context, else "
        "DOCKER_HOST, else DOCKER_CONTEXT, else the current context, else the local socket. Give one manager "
        "for the swarm view and every node's engine for per-node stats and network views.")
    group.add_argument("-H", "--host", action="append", default=[], metavar="URL",
                       help="an engine (unix://, tcp:// with DOCKER_TLS_VERIFY/DOCKER_CERT_PATH, ssh://); repeatable")
    group.add_argument("--context", metavar="NAME", help="a docker context (see `docker context ls`)")
    group.add_argument("--lab", action="store_true", help="every engine of the local lab (`overlaytui lab up`)")
    group.add_argument("--ssh-nodes", action="store_true",
                       help="from one ssh endpoint (-H ssh://user@host[:port] or an ssh context), reach every "
                       "node's engine over ssh at its swarm address with the same user and port (config: "
                       "ssh_nodes = true; a [nodes] table maps hostnames to other endpoints)")


def endpoints_from_args(args: argparse.Namespace) -> list[EndpointSpec] | None:
    """The engines the flags name, or None after printing the one-line reason they cannot be resolved."""
    try:
        endpoints = resolve_endpoints(hosts=args.host, context=args.context, lab=args.lab)
    except EndpointError as exc:
        print(f"overlaytui: {exc}", file=sys.stderr)
        return None
    options = source_options(args, endpoints)
    if options is None:
        return None
    args.source_options = options  # for DockerSwarmSource(endpoints, **args.source_options)
    return endpoints


def source_options(args: argparse.Namespace, endpoints: list[EndpointSpec]) -> dict | None:
    """--ssh-nodes and the config's [nodes] for DockerSwarmSource, or None after saying why they cannot work."""
    from ..config import load_config

    config, _problem = load_config()
    ssh_nodes = bool(getattr(args, "ssh_nodes", False)) or config.ssh_nodes
    if ssh_nodes and not any(e.url.startswith("ssh://") for e in endpoints) and not config.nodes:
        print("overlaytui: --ssh-nodes needs an ssh endpoint (-H ssh://user@manager, or a context whose host is "
              "ssh://)", file=sys.stderr)
        return None
    return {"ssh_nodes": ssh_nodes, "node_endpoints": dict(config.nodes)}


def bounded(kind: type, low: float, high: float, unit: str = "") -> Callable[[str], float]:
    """An argparse type: a finite number of `kind` in [low, high] (nan, inf, 0 or negative where they make no
    sense are refused with one line, before anything connects)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not math.isfinite(value) or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low:g} and {high:g}{unit} (got {text})")
        return value
    return parse



def add_probe_flags(parser: argparse.ArgumentParser, kinds: str, count: int, image_help: str) -> None:
    """What the probing commands share: kinds, overlays, pings per pair and their interval, the agents' image,
    and each engine call's timeout."""
    from ..probes.session import KINDS

    parser.add_argument("--kind", default=kinds, help=f"what to measure: any of {','.join(KINDS)} (default {kinds})")
    parser.add_argument("--network", action="append", default=[], metavar="NAME",
                        help="an overlay to probe (repeatable; default: every overlay but the ingress)")
    parser.add_argument("--count", type=bounded(int, 1, 100000), default=count,
                        help=f"pings per pair per round (default {count})")
    parser.add_argument("--interval", type=bounded(float, 0.002, 10, " s"), default=0.2, metavar="S",
                        help="seconds between pings (0.2)")
    parser.add_argument("--probe-image", metavar="IMAGE", help=image_help)
    parser.add_argument("--timeout", type=bounded(float, 0.1, 600, " s"), default=10.0, metavar="S",
                        help="timeout of each engine call")


def kinds_from_args(args: argparse.Namespace, prog: str) -> tuple[str, ...] | None:
    """--kind as a tuple, or None after saying what it takes."""
    from ..probes.session import KINDS

    kinds = tuple(k.strip() for k in args.kind.split(",") if k.strip())
    if not kinds or any(k not in KINDS for k in kinds):
        print(f"overlaytui {prog}: --kind takes {','.join(KINDS)}", file=sys.stderr)
        return None
    return kinds


def probe_image(args: argparse.Namespace) -> str:
    from ..probes import agent

    return args.probe_image or (agent.LAB_IMAGE if args.lab else agent.DEFAULT_IMAGE)


def interrupt_on_sigterm() -> None:
    """SIGTERM (cron, CI timeouts, a service manager) takes the KeyboardInterrupt path: the agents are removed."""
    signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
