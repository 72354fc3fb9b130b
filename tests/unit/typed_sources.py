"""Checked by mypy (tests/unit/test_typing.py), not run: every source is a ClusterSource, structurally."""

from __future__ import annotations

from overlaytui.sources.base import ClusterSource
from overlaytui.sources.demo import DemoSource
from overlaytui.sources.replay import ReplaySource
from overlaytui.sources.swarm import DockerSwarmSource


def real(source: DockerSwarmSource) -> ClusterSource:
    return source


def demo(source: DemoSource) -> ClusterSource:
    return source


def replay(source: ReplaySource) -> ClusterSource:
    return source
