"""`overlaytui doctor`: every check, one line per finding with its evidence and the fix.

Exit 0 when nothing is above info, 1 with warnings, 2 with errors, when no engine could be reached, or when
probing was asked for and no pair could be measured (never "all clear" on nothing measured).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict

from ..analysis.findings import Finding, Severity, counts_text, details_text, plural, worst
from ..frame import Frame
from ..model import ClusterSnapshot, Health
from ..probes.session import ProbeError, ProbeSettings
from ..producer import Producer
from ..safe import one_line
from ..sources.base import ClusterSource
from .common import (
    add_deep_flags,
    add_demo_flags,
    add_endpoint_flags,
    add_probe_flags,
    add_replay_flags,
    interrupt_on_sigterm,
    kinds_from_args,
    recorded_frame,
    say_on_stderr,
    settings_from_args,
    source_from_args,
    underlay_reader,
)
from .probe import coverage_dict, outcome, probe_cycle

EXIT = {Severity.OK: 0, Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "doctor", help="find what is wrong with the swarm's overlays, with the evidence and the fix",
        description="Collect the cluster, probe every pair of nodes on every overlay (loss, path MTU), and run every "
        "check: swarm and quorum, nodes, tasks and replicas, peers, underlay MTU, loss and latency, MTU black "
        "holes, blocked VXLAN, encrypted overlays without ESP. Exit 0: nothing above info; 1: warnings; "
        "2: errors, no connection, or nothing could be measured.")
    parser.add_argument("--no-probe", action="store_true", help="skip the probes (no agents are deployed)")
    add_probe_flags(parser, "ping,mtu,discovery", 100, "image of the probe agents (see `probe --help`)")
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    add_deep_flags(parser, "once: the findings name causes (a firewall rule, a stale FDB entry, no IPVS or ESP in "
                   "the kernel)")
    parser.add_argument("--verbose", action="store_true",
                        help="under each root-cause finding, the per-pair findings it explains")
    add_endpoint_flags(parser)
    add_demo_flags(parser)
    add_replay_flags(parser, "with --replay: what the doctor would have said at T, from the recorded cluster and "
                     "probe results (default: the recording's last frame).")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    if settings_from_args(args, "doctor") is None:
        return 2
    if args.replay:
        return _replay(args)
    if args.at:
        print("overlaytui doctor: --at needs --replay FILE", file=sys.stderr)
        return 2
    args.kinds = kinds_from_args(args, "doctor")
    if args.kinds is None:
        return 2
    source = source_from_args(args, stats=False, events=False)
    if source is None:
        return 2
    interrupt_on_sigterm()
    try:
        return asyncio.run(_run(source, args))
    except KeyboardInterrupt:
        print("overlaytui doctor: interrupted (agents removed)", file=sys.stderr)
        return 130


def _replay(args: argparse.Namespace) -> int:
    """The doctor on a recorded frame: its findings, and whether the overlays were measured then."""
    frame = recorded_frame(args, "doctor")
    if frame is None:
        return 2
    not_measured = ""
    if not args.no_probe:
        code, verdict = outcome(list(frame.probes.results()), frame.probes.coverage, frame.snapshot,
                                args.settings.thresholds)
        if code == 2 or not frame.probes.results():
            not_measured = "the recording holds no probe result at that time" if not frame.probes.results() \
                else verdict
    return _report(frame, not_measured, args)


async def _run(source: ClusterSource, args) -> int:
    user = args.settings
    producer = Producer(source, thresholds=user.thresholds, underlay=underlay_reader(args), interval=None,
                        probe=ProbeSettings(
        networks=tuple(args.network), image=user.probe_image, count=args.count, interval=args.interval,
        kinds=args.kinds, window_s=user.window_s), call_timeout=args.timeout, say=say_on_stderr("doctor"),
                        deep=user.deep_settings())
    not_measured = ""  # why probing measured nothing (when it was asked for)
    try:
        if not await producer.start():
            print(f"overlaytui doctor: {producer.failure}", file=sys.stderr)
            return 2
        frame = (await producer.frame_now()).frame
        manager = any(e.role == "manager" and e.health is Health.OK for e in frame.snapshot.engines)
        if not args.no_probe and manager:
            try:
                results = await probe_cycle(producer)  # every pair once: as many rounds as the plan takes
                frame = (await producer.refresh()).frame  # the cluster as the probes saw it, before the agents go
                code, verdict = outcome(results, frame.probes.coverage, frame.snapshot, user.thresholds)
                if code == 2:
                    not_measured = verdict
                elif code == 3:
                    print(f"overlaytui doctor: probes {verdict}", file=sys.stderr)
            except ProbeError as exc:
                not_measured = f"not probing: {exc}"
        else:
            frame = (await producer.refresh()).frame
    finally:
        await producer.close()
    return _report(frame, not_measured, args)


def _report(frame: Frame, not_measured: str, args: argparse.Namespace) -> int:
    findings = list(frame.findings)
    if args.json:
        json.dump({"findings": [finding_dict(f) for f in findings],
                   "worst": str(worst(findings)), "coverage": [coverage_dict(c) for c in frame.probes.coverage],
                   "not_measured": not_measured or None}, sys.stdout, indent=1)
        print()
    else:
        print(report_text(findings, frame.snapshot, measured=not not_measured, verbose=args.verbose))
    if not_measured:
        print(f"overlaytui doctor: {not_measured}", file=sys.stderr)
        return 2
    return EXIT[worst(findings)]


def finding_dict(finding: Finding) -> dict:
    return asdict(finding) | {"severity": str(finding.severity),
                              "details": [finding_dict(d) for d in finding.details]}


def report_text(findings: list[Finding], snapshot: ClusterSnapshot, measured: bool = True,
                verbose: bool = False) -> str:
    if not findings:
        if not measured:
            return (f"no findings from the cluster's state ({plural(len(snapshot.nodes), 'node')}, "
                    f"{plural(len(snapshot.services), 'service')}); the overlays' data plane was NOT measured")
        return (f"no findings: {plural(len(snapshot.nodes), 'node')}, {plural(len(snapshot.services), 'service')}, "
                "all checks pass")
    lines = []
    for f in findings:
        lines.append(f"{str(f.severity).upper():7} {f.check:20} {f.subject}: {f.summary}")
        lines.append(f"{'':8}evidence: {f.evidence}")
        lines.append(f"{'':8}fix: {f.remedy}")
        if f.details:
            if verbose:
                lines += [f"{'':8}- {d.subject}: {d.summary} ({d.evidence})" for d in f.details]
            else:
                lines.append(f"{'':8}({details_text(f)} behind this one: --verbose)")
    lines.append(counts_text(findings))
    return "\n".join(one_line(line) for line in lines)  # a name holding a newline stays inside its line
