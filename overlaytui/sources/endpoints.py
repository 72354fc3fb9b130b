"""Which Docker engines to talk to, chosen the way the docker CLI chooses them.

Precedence: --lab, then --host (repeatable), then --context, then DOCKER_HOST (with DOCKER_TLS_VERIFY and
DOCKER_CERT_PATH), then DOCKER_CONTEXT, then the current context of ~/.docker/config.json, then the default
socket. docker-py's from_env() ignores contexts, so contexts are read with docker.ContextAPI here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_HOST = "unix:///var/run/docker.sock"
SCHEMES = ("unix://", "tcp://", "ssh://", "npipe://", "http://", "https://")


class EndpointError(Exception):
    """The endpoints asked for cannot be resolved; the message is one line."""


@dataclass(frozen=True)
class EndpointSpec:
    url: str
    origin: str  # where it came from: "--host", "context NAME", "DOCKER_HOST", "lab node2", "default"
    tls: object | None = field(default=None, compare=False, repr=False)  # docker.tls.TLSConfig


def _check_url(url: str, origin: str) -> str:
    if not url.startswith(SCHEMES):
        raise EndpointError(f"{origin}: {url!r} is not a Docker host URL (unix://, tcp://, ssh://)")
    return url


def _tls_from_env(environ: Mapping[str, str]):
    """TLS settings from DOCKER_TLS_VERIFY / DOCKER_CERT_PATH, as the docker CLI applies them to tcp hosts."""
    if not environ.get("DOCKER_TLS_VERIFY") and not environ.get("DOCKER_CERT_PATH"):
        return None
    from docker.utils import kwargs_from_env

    try:
        return kwargs_from_env(environment=dict(environ)).get("tls")
    except Exception as exc:  # docker.errors.TLSParameterError and file errors
        raise EndpointError(f"TLS settings from DOCKER_CERT_PATH: {exc}") from None


def _context(name: str, config_dir: Path) -> EndpointSpec:
    if name == "default":
        return EndpointSpec(DEFAULT_HOST, "context default")
    from docker.context import ContextAPI

    try:
        ctx = ContextAPI.get_context(name)
    except Exception as exc:  # malformed context store
        raise EndpointError(f"context {name!r}: {exc}") from None
    if ctx is None:
        raise EndpointError(f"unknown docker context {name!r} (see `docker context ls`)")
    host = ctx.Host or DEFAULT_HOST
    return EndpointSpec(_check_url(host, f"context {name}"), f"context {name}", ctx.TLSConfig)


def _current_context(config_dir: Path) -> str | None:
    try:
        return json.loads((config_dir / "config.json").read_text()).get("currentContext") or None
    except (OSError, ValueError, AttributeError):
        return None


def resolve_endpoints(
    hosts: Sequence[str] = (),
    context: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[EndpointSpec]:
    """The engines chosen as the docker CLI chooses them (the lab's engines: `lab.lab.endpoints`)."""
    environ = os.environ if environ is None else environ
    config_dir = Path(environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    if hosts:
        if context:
            raise EndpointError("--host and --context exclude each other (as in the docker CLI)")
        tls = _tls_from_env(environ)
        return [
            EndpointSpec(_check_url(h, "--host"), "--host", tls if h.startswith("tcp://") else None) for h in hosts
        ]
    if context:
        return [_context(context, config_dir)]
    if environ.get("DOCKER_HOST"):
        host = environ["DOCKER_HOST"]
        return [EndpointSpec(_check_url(host, "DOCKER_HOST"), "DOCKER_HOST",
                             _tls_from_env(environ) if host.startswith("tcp://") else None)]
    name = environ.get("DOCKER_CONTEXT") or _current_context(config_dir)
    if name:
        return [_context(name, config_dir)]
    return [EndpointSpec(DEFAULT_HOST, "default")]
