"""Test helpers shared by the suites: waiting on a condition with a deadline, and a handle on the lab."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from overlaytui.lab.layout import NodeLayout, node_by_name

LAB_NODES = 3


def lab_required() -> bool:
    return os.environ.get("OVERLAYTUI_REQUIRE_LAB") == "1" or os.environ.get("CI") == "true"


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.1):
    """Poll `predicate` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:g} s waiting for {what} (last value: {last!r})")


async def eventually(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.02,
                     pause: Callable[[float], Awaitable[object]] | None = None):
    """wait_for for async tests: the event loop (an app, a producer) runs meanwhile, `pause(interval)` between
    tries (asyncio.sleep, or a Pilot's pause); a deadline in seconds, not in steps, which a loaded machine ran out
    of."""
    deadline = time.monotonic() + timeout
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what} (last value: {last!r})")
        await (pause or asyncio.sleep)(interval)


@dataclass
class Lab:
    """Handle on the running lab for tests: the docker CLI per node, faults, rebuild."""

    nodes: int

    def layout(self, name: str) -> NodeLayout:
        return node_by_name(name)

    def docker(self, node: str, *args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
        cmd = ["docker", "-H", self.layout(node).docker_host, *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            pytest.fail(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")
        return proc

    def fault(self, node: str, kind: str, value: str | None = None) -> str:
        from overlaytui.lab import lab

        return lab.fault(node, kind, value)

    def node_states(self) -> dict[str, str]:
        """hostname -> Ready/Down as `docker node ls` on node1 shows them."""
        out = self.docker("node1", "node", "ls", "--format", "{{.Hostname}} {{.Status}}", check=False).stdout
        return dict(line.split() for line in out.splitlines() if line.strip())

    def rebuild(self) -> None:
        from overlaytui.lab import lab

        lab.down(log=lambda _m: None)
        lab.up(self.nodes, 1, log=lambda _m: None)


def required_binary(name: str, package: str) -> str:
    """The path of a tool the test needs; skipped with the reason where it is missing, failed where the lab's
    requirements are required (CI installs it)."""
    import shutil

    path = shutil.which(name)
    if path is None:
        message = f"{name} not installed (apt-get install {package})"
        if lab_required():
            pytest.fail(f"{message}: required here")
        pytest.skip(message)
    return path
