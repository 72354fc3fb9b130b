"""The `overlaytui` command line."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
from collections.abc import Sequence

from . import __version__
from .commands import dashboard, doctor, exporter, probe, record, serve, snapshot
from .lab import cli as lab_cli
from .safe import PrintableStream


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="overlaytui",
        description="Make Docker Swarm overlay networks visible and testable at a glance. Without a command: "
        "the dashboard (on the engines chosen as the docker CLI chooses them, or --demo).",
    )
    parser.add_argument("--version", action="version", version=f"overlaytui {__version__}")
    dashboard.add_flags(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    snapshot.add_parser(subparsers)
    probe.add_parser(subparsers)
    doctor.add_parser(subparsers)
    exporter.add_parser(subparsers)
    record.add_parser(subparsers)
    serve.add_parser(subparsers)
    lab_cli.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", dashboard.main)
    if handler is not dashboard.main:  # the dashboard's terminal belongs to Textual, which gets safe text only
        sys.stdout, sys.stderr = PrintableStream(sys.stdout), PrintableStream(sys.stderr)
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("overlaytui: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `overlaytui probe --watch | head`: the reader left (cleanup ran on the way out)
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.__stdout__.fileno())
        return 141


def run() -> None:
    """The console script: `main`, then an exit that never waits for a thread stuck in an engine call (docker-py's
    timeout is per read: an engine that sends a byte every few seconds holds a thread for as long as it likes,
    and Python joins every worker thread at exit)."""
    code = main()
    exit_now(code)


def exit_now(code: int) -> None:
    stuck = [t for t in threading.enumerate() if t is not threading.main_thread() and t.is_alive() and not t.daemon]
    if not stuck:
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    from .sources import ssh

    ssh.remove()  # os._exit skips atexit: the ssh wrapper's directory goes here
    os._exit(code)


if __name__ == "__main__":
    run()
