"""What a cluster source is: the real engines (`swarm.DockerSwarmSource`), the simulated cluster
(`demo.DemoSource`) and a recording played back (`replay.ReplaySource`). The app, the commands and the frame
producer know sources only through this protocol (mypy checks it in the suite: tests/unit/test_typing.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..model import ClusterSnapshot, Fault, Moment, NodeKernel, ProbeData
from .endpoints import EndpointSpec


class Playback(Protocol):
    """A source that plays a recording back: its position is the recording's time, moved by the clock while
    playing and by hand (pause, step, seek). The dashboard's replay keys use only this."""

    @property
    def position(self) -> float: ...

    @property
    def playing(self) -> bool: ...

    @property
    def speed(self) -> float: ...

    @property
    def start_t(self) -> float: ...

    @property
    def end_t(self) -> float: ...

    @property
    def moments(self) -> Sequence[Moment]:
        """Every moment of the recording (the Timeline shows them all)."""
        ...

    def toggle(self) -> bool:
        """Pause or play; True when playing now."""
        ...

    def pause(self) -> None: ...

    def seek(self, t: float) -> None: ...

    def step(self, frames: int) -> None: ...

    def take_jump(self) -> bool:
        """True once after the position jumped (loaded, seek, step): the next frame is not "one after" the
        previous one."""
        ...

    def underlay_mtus(self) -> dict[str, int]:
        """The recorded underlay MTUs of the current frame (this host's NICs say nothing of that cluster)."""
        ...

    def kernels(self) -> tuple[NodeKernel, ...]:
        """The recorded kernel views of the current frame (`--deep`; () when none were recorded)."""
        ...

    def snapshots_before(self, t: float, seconds: float, budget: float) -> list[ClusterSnapshot]:
        """The recorded snapshots of the `seconds` before `t` (older first), fewer when rebuilding them all would
        take more than `budget` seconds beyond reaching `t` itself."""
        ...


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
        """Until something changed (True: poll now) or `timeout` seconds passed (False: a frame, no poll). A live
        source also returns False early, once, when its stats first can show every rate (the first complete frame
        is built then, not at the next interval)."""
        ...

    def snapshot(self) -> ClusterSnapshot:
        """The latest data as one immutable snapshot (no engine calls; may run in a worker thread)."""
        ...

    def probes(self) -> ProbeData | None:
        """Probe results the source carries itself (simulated, recorded); None: measure them (a ProbeSession)."""
        ...

    @property
    def playback(self) -> Playback | None:
        """The playback controls of a recording played back; None for a live (or simulated) cluster."""
        ...

    async def close(self) -> None:
        """Stop the streams and threads (bounded)."""


class FaultError(Exception):
    """A fault that cannot be injected or cleared here: one line saying why."""


class Faults(Protocol):
    """Faults a presenter injects and clears while the dashboard runs: the demo simulates them (`DemoSource.faults`),
    the lab makes them real (`lab.faults.LabFaults`), a viewer of `serve --presenter` asks the serve process
    (`sources.relay.RelayFaults`). The command layer hands one to the app; the app knows nothing else of them."""

    @property
    def offers(self) -> dict[str, tuple[str, ...]]:
        """Fault kind (model.FAULTS) -> the targets it takes here (node, network, pair, service)."""
        ...

    async def inject(self, fault: Fault) -> str:
        """Inject it; one line of what was done (FaultError: why not)."""
        ...

    async def clear(self, target: Fault) -> str:
        """Clear the faults `target` covers (`Fault.on`: its kind or any, its subject or every one); one line."""
        ...
