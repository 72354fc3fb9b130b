"""Command-line flags shared by every command that talks to a cluster."""

from __future__ import annotations

import argparse
import math
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


def endpoints_from_args(args: argparse.Namespace) -> list[EndpointSpec] | None:
    """The engines the flags name, or None after printing the one-line reason they cannot be resolved."""
    try:
        return resolve_endpoints(hosts=args.host, context=args.context, lab=args.lab)
    except EndpointError as exc:
        print(f"overlaytui: {exc}", file=sys.stderr)
        return None


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

