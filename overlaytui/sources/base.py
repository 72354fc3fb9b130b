"""What a cluster source is: the real engines (`swarm.DockerSwarmSource`), the simulated cluster
(`demo.DemoSource`) and a recording played back (`replay.ReplaySource`). The app, the commands and the frame
producer know sources only through this protocol (mypy checks it in the suite: tests/unit/test_typing.py)."""

from __future__ import annotations

from typing import Protocol

from ..model import ClusterSnapshot, ProbeData
from .endpoints import EndpointSpec


class ClusterSource(Protocol):
    @property
    def name(self) -> str:
        """What it is called, for the header: the engine's URL, "3 engines", "demo: loss", "replay: FILE"."""
        ...

    @property
    def endpoints(self) -> tuple[EndpointSpec, ...]:
        """The engines it talks to; none for the demo and a replay (there is nothing to deploy probes on)."""
        ...

    async def start(self) -> None:
        """Connect and take the first poll (raises when it cannot start at all)."""

    async def poll(self) -> None:
        """Read the cluster again (bounded: an engine that stalls is marked stale, not waited for)."""

    async def wait_for_change(self, timeout: float) -> bool:
        """Until something changed (True: poll now) or `timeout` seconds passed (False)."""
        ...

    def snapshot(self) -> ClusterSnapshot:
        """The latest data as one immutable snapshot (no engine calls; may run in a worker thread)."""
        ...

    def probes(self) -> ProbeData | None:
        """Probe results the source carries itself (simulated, recorded); None: measure them (a ProbeSession)."""
        ...

    async def close(self) -> None:
        """Stop the streams and threads (bounded)."""
