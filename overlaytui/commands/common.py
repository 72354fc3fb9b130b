"""Command-line flags shared by every command that talks to a cluster."""

from __future__ import annotations

import argparse
import math
import os
import re
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..flags import LIMITS_HELP, SCENARIOS, add_threshold_flags

if TYPE_CHECKING:  # the parsers are built without these (a command imports what it uses when it runs)
    from ..settings import Settings
    from ..sources.endpoints import EndpointSpec


def settings_from_args(args: argparse.Namespace, prog: str) -> Settings | None:
    """The user's settings for this command (flags > environment > config file > defaults), kept as
    `args.settings`; what could not be used from the file or the environment is said once; None after one line
    when they cannot be used at all."""
    from ..settings import SettingsError, resolve

    try:
        settings = resolve(args)
    except SettingsError as exc:
        print(f"overlaytui{' ' + prog if prog else ''}: {exc}", file=sys.stderr)
        return None
    for problem in settings.problems:
        print(f"overlaytui{' ' + prog if prog else ''}: {problem}", file=sys.stderr)
    args.settings = settings
    return settings


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
                       "node's engine over ssh at its swarm address with the same user and port (env "
                       "OVERLAYTUI_SSH_NODES=1; config: ssh_nodes = true; a [nodes] table maps hostnames to other "
                       "endpoints)")


def endpoints_from_args(args: argparse.Namespace) -> list[EndpointSpec] | None:
    """The engines the flags name, or None after printing the one-line reason they cannot be resolved (the
    settings first, when the command has not resolved them)."""
    if getattr(args, "settings", None) is None and settings_from_args(args, "") is None:
        return None
    from ..sources.endpoints import EndpointError, resolve_endpoints

    try:
        if args.lab:
            from ..lab.lab import endpoints as lab_endpoints

            endpoints = lab_endpoints()
        else:
            endpoints = resolve_endpoints(hosts=args.host, context=args.context)
    except EndpointError as exc:
        print(f"overlaytui: {exc}", file=sys.stderr)
        return None
    options = source_options(args, endpoints)
    if options is None:
        return None
    args.source_options = options  # for DockerSwarmSource(endpoints, **args.source_options)
    return endpoints


def source_options(args: argparse.Namespace, endpoints: list[EndpointSpec]) -> dict | None:
    """--ssh-nodes and the config's [nodes] (from the settings) for DockerSwarmSource, or None after saying why
    they cannot work."""
    settings: Settings = args.settings
    if settings.ssh_nodes and not any(e.url.startswith("ssh://") for e in endpoints) and not settings.nodes:
        print("overlaytui: --ssh-nodes needs an ssh endpoint (-H ssh://user@manager, or a context whose host is "
              "ssh://)", file=sys.stderr)
        return None
    return {"ssh_nodes": settings.ssh_nodes, "node_endpoints": dict(settings.nodes)}


MAX_DEMO = (1000, 5000, 50000)  # beyond this one core cannot build a snapshot per second (the UI would starve)


def add_demo_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--demo [SCENARIO], --demo-scale, --seed: the simulated cluster instead of engines (every command)."""
    parser.add_argument("--demo", nargs="?", const="healthy", choices=list(SCENARIOS), metavar="SCENARIO",
                        help="the embedded simulated cluster instead of engines; scenarios: "
                        + "; ".join(f"{k}: {v}" for k, v in SCENARIOS.items()).replace("%", "%%"))
    parser.add_argument("--demo-scale", metavar="NODES,SERVICES,TASKS", type=_scale,
                        help="a larger simulated cluster, e.g. 200,300,5000 (implies --demo)")
    parser.add_argument("--seed", type=bounded(int, 0, 2**31, ""), default=1,
                        help="the demo's random seed (default 1)")


def _scale(value: str) -> tuple[int, int, int]:
    try:
        nodes, services, tasks = (int(v) for v in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("expected NODES,SERVICES,TASKS, e.g. 200,300,5000") from None
    if not (1 <= nodes <= MAX_DEMO[0] and 1 <= services <= MAX_DEMO[1] and 0 <= tasks <= MAX_DEMO[2]):
        raise argparse.ArgumentTypeError("NODES 1..{}, SERVICES 1..{}, TASKS 0..{}".format(*MAX_DEMO))
    return nodes, services, tasks


def demo_source(args: argparse.Namespace):
    """The simulated cluster the flags ask for, or None (--demo, or --demo-scale alone)."""
    if not (getattr(args, "demo", None) or getattr(args, "demo_scale", None)):
        return None
    from ..sources.demo import DemoSource

    return DemoSource(args.demo or "healthy", seed=args.seed, scale=args.demo_scale)


def underlay_reader(args: argparse.Namespace):
    """How the frames learn the nodes' underlay MTUs: this host's NICs, and with --lab the lab's node links
    (None: the frame builder's default, this host's NICs)."""
    if not getattr(args, "lab", False):
        return None
    from ..lab.lab import underlay_mtus

    return underlay_mtus


def faults_from_args(args: argparse.Namespace, source):
    """The presenter's controls for this source (`f`, the palette): the demo's simulated faults; with --lab as
    root the lab's real ones (`lab fault`); none on other engines or a replay."""
    from ..sources.demo import DemoSource

    if isinstance(source, DemoSource):
        return source.faults
    if getattr(args, "lab", False) and os.geteuid() == 0:
        from ..lab.faults import LabFaults

        return LabFaults()
    return None


def source_from_args(args: argparse.Namespace, **options):
    """The cluster source the flags name: the demo, else the engines (DockerSwarmSource with these options and
    the settings' ssh nodes); None after the one-line reason the engines cannot be resolved."""
    demo = demo_source(args)
    if demo is not None:
        return demo
    endpoints = endpoints_from_args(args)
    if endpoints is None:
        return None
    from ..sources.swarm import DockerSwarmSource

    return DockerSwarmSource(endpoints, call_timeout=args.timeout, **options, **args.source_options)


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



def add_probe_flags(parser: argparse.ArgumentParser, kinds: str, count: int, image_help: str,
                    window_flags: tuple[str, ...] = ("--probe-window",)) -> None:
    """What the probing commands share: kinds, overlays, pings per pair and their interval, the agents' image,
    the recent window, the loss thresholds and each engine call's timeout."""
    from ..probes.session import KINDS

    parser.add_argument("--kind", default=kinds, help=f"what to measure: any of {','.join(KINDS)} (default {kinds})")
    parser.add_argument("--network", action="append", default=[], metavar="NAME",
                        help="an overlay to probe (repeatable; default: every overlay but the ingress)")
    parser.add_argument("--count", type=bounded(int, 1, 100000), default=count,
                        help=f"pings per pair per round (default {count})")
    parser.add_argument("--interval", type=bounded(float, 0.002, 10, " s"), default=0.2, metavar="S",
                        help="seconds between pings (0.2)")
    parser.add_argument("--probe-image", metavar="IMAGE",
                        help=image_help + " (env OVERLAYTUI_PROBE_IMAGE; config probe_image)")
    add_window_flag(parser, *window_flags)
    add_threshold_flags(parser)
    parser.add_argument("--timeout", type=bounded(float, 0.1, 600, " s"), default=10.0, metavar="S",
                        help="timeout of each engine call")


def add_deep_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup, every: str = "") -> None:
    """--deep and --deep-image (dashboard, snapshot, doctor, exporter, record)."""
    parser.add_argument("--deep", action="store_true", default=None,
                        help="also read each node's kernel below the overlay (VXLAN devices and counters, FDB and "
                        "neighbours, firewall rules on swarm's ports, xfrm, IPVS, conntrack, the underlay's "
                        "route, MTU and offloads): one short-lived container per node through its engine" +
                        (f", {every}" if every else "") + " — host network, only NET_ADMIN, NET_RAW and "
                        "SYS_ADMIN (not privileged), the engine's netns directory read-only, removed after "
                        "each round (env OVERLAYTUI_DEEP=1; config deep = true)")
    parser.add_argument("--deep-image", metavar="IMAGE",
                        help="the deep view's image: a POSIX shell, iproute2, iptables and nsenter (default "
                        "nicolaka/netshoot; the lab's overlaytui/deep:lab with --lab; env OVERLAYTUI_DEEP_IMAGE; "
                        "config deep_image)")


def add_window_flag(parser: argparse.ArgumentParser | argparse._ArgumentGroup, *names: str) -> None:
    parser.add_argument(*names, dest="probe_window", type=bounded(float, 0.1, 1440, " min"), metavar="MIN",
                        help="the recent window each pair's loss is judged over, in minutes (default 5; env "
                        "OVERLAYTUI_PROBE_WINDOW_MIN; config probe_window_min), beside the last round and "
                        "everything since probing started")


def kinds_from_args(args: argparse.Namespace, prog: str) -> tuple[str, ...] | None:
    """--kind as a tuple, or None after saying what it takes."""
    from ..probes.session import KINDS

    kinds = tuple(k.strip() for k in args.kind.split(",") if k.strip())
    if not kinds or any(k not in KINDS for k in kinds):
        print(f"overlaytui {prog}: --kind takes {','.join(KINDS)}", file=sys.stderr)
        return None
    return kinds


def say_on_stderr(prog: str):
    """The producer's lines for a command: on stderr, one line each, after the command's name."""
    def say(severity: str, text: str) -> None:
        print(f"overlaytui {prog}: {text}", file=sys.stderr, flush=True)
    return say


def interrupt_on_sigterm() -> None:
    """SIGTERM (cron, CI timeouts, a service manager) takes the KeyboardInterrupt path: the agents are removed."""
    signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def add_replay_flags(parser: argparse.ArgumentParser, at_help: str) -> None:
    group = parser.add_argument_group("replay", "read a recording (`overlaytui record`, R in the dashboard) "
                                      "instead of a cluster")
    group.add_argument("--replay", metavar="FILE", help="a recording (.jsonl, .jsonl.gz or .jsonl.zst)")
    group.add_argument("--at", metavar="T", help=at_help + " T is an offset from the start (90, 90s, 5m, 1h30m), "
                       "from the end (-30s), a local time of day (14:03:10) or an ISO time "
                       "(2026-11-27T14:03:10, with or without a zone)")
    group.add_argument("--recording-limits", metavar="NAME=N,...", type=recording_limits, help=LIMITS_HELP)


def recording_limits(text: str):
    """The type of --recording-limits: recording.limits_flag, the recording module read only when it is given."""
    from ..recording import limits_flag

    return limits_flag(text)


_OFFSET = re.compile(r"^([+-]?)((?:\d+(?:\.\d+)?[hms]?)+)$")
_PART = re.compile(r"(\d+(?:\.\d+)?)([hms]?)")


def parse_at(text: str, start: float, end: float) -> float:
    """--at T as a recording time (Unix seconds) within [start, end]; ValueError says why not."""
    from datetime import datetime, timedelta

    text = text.strip()
    offset = _OFFSET.match(text)
    if offset:
        seconds = sum(float(n) * {"h": 3600, "m": 60, "s": 1, "": 1}[unit] for n, unit in _PART.findall(offset[2]))
        at = end - seconds if offset[1] == "-" else start + seconds
    else:
        try:
            if re.fullmatch(r"\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?", text):
                day = datetime.fromtimestamp(start).date()
                clock = datetime.strptime(text.split(".")[0], "%H:%M:%S" if text.count(":") == 2 else "%H:%M")
                moment = datetime.combine(day, clock.time())
                at = moment.timestamp()
                if at < start - 1:  # a recording across midnight: the next day's time
                    at = (moment + timedelta(days=1)).timestamp()
            else:
                at = datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise ValueError(f"--at {text!r}: not an offset (90s, 5m, -30s), a time of day (14:03:10) or an ISO "
                             "time") from None
    if not start - 1 <= at <= end + 1:
        raise ValueError(f"--at {text!r} is outside the recording ({_clock(start)} to {_clock(end)}, "
                         f"{end - start:.0f} s)")
    return min(max(at, start), end)


def _clock(t: float) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S")


def recorded_frame(args: argparse.Namespace, prog: str):
    """The frame of `--replay FILE` at `--at T` (default: its last), findings derived from the recorded snapshot,
    probe results and underlay MTUs as they were; None after saying why it cannot be read."""
    from ..frame import FrameBuilder
    from ..recording import RecordingError, load

    try:
        recording = load(args.replay)
        at = parse_at(args.at, recording.start, recording.end) if args.at else recording.end
        recorded = recording.frame(recording.index_at(at))
    except (RecordingError, ValueError) as exc:
        print(f"overlaytui {prog}: {exc}", file=sys.stderr)
        return None
    settings = getattr(args, "settings", None)
    builder = FrameBuilder(settings.thresholds if settings is not None else None,
                           underlay=lambda addresses: recorded.underlay_mtus)
    return builder.build(recorded.snapshot, recorded.probes, kernels=recorded.kernels)
