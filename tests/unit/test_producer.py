"""The producer, the one loop every command consumes: frames on its interval and on a poll asked for, the newest
frame to a slow consumer (nothing queues), probing's lifecycle (agents opened once, kept before each round, a
failed round said and retried, removed on close), a source that cannot start, a replay's jump."""

from __future__ import annotations

import asyncio

import pytest

from overlaytui import producer as producer_module
from overlaytui.model import ProbeData
from overlaytui.probes.session import ProbeError, ProbeSettings
from overlaytui.producer import Producer
from overlaytui.sources.demo import DemoSource
from tests.helpers import eventually
from tests.ui.helpers import Clock


class EngineSource(DemoSource):
    """The demo cluster presented as engines (so the producer probes it with a session)."""

    endpoints = ("unix:///fake.sock",)  # type: ignore[assignment]

    def probes(self):
        return None


class ScriptedSession:
    """A probe session whose rounds are scripted: results from the demo, failures on demand."""

    made: list[ScriptedSession] = []
    fail_start = ""
    fail_rounds: set[int] = set()

    def __init__(self, snapshot_of, settings, endpoints, call_timeout) -> None:
        self.snapshot_of, self.closed, self.rounds, self.kept = snapshot_of, False, 0, 0
        self.removed_leftovers = ["overlaytui-probe-old"]
        self._problems = ["ping only: a tool is missing"]
        ScriptedSession.made.append(self)

    async def start(self) -> None:
        if self.fail_start:
            raise ProbeError(self.fail_start)

    async def keep_agents(self) -> list[str]:
        self.kept += 1
        return ["backend"] if self.kept == 2 else []

    async def run_round(self):
        self.rounds += 1
        if self.rounds in self.fail_rounds:
            raise RuntimeError("the manager went away")
        assert self.snapshot_of().nodes  # planned on the latest frame's cluster
        return []

    def new_problems(self) -> list[str]:
        taken, self._problems = self._problems, []
        return taken

    def state(self):
        return self

    def data(self, problem: str = "") -> ProbeData:
        return ProbeData(rounds=self.rounds, problem=problem)

    async def close(self) -> None:
        self.closed = True


@pytest.fixture
def scripted(monkeypatch):
    monkeypatch.setattr(producer_module, "ProbeSession", ScriptedSession)
    ScriptedSession.made, ScriptedSession.fail_start, ScriptedSession.fail_rounds = [], "", set()
    return ScriptedSession


def _producer(source, **options) -> tuple[Producer, list[tuple[str, str]]]:
    said: list[tuple[str, str]] = []
    return Producer(source, underlay=lambda addresses: {}, say=lambda sev, text: said.append((sev, text)),
                    **options), said


async def test_frames_on_the_interval_and_a_poll_asked_for():
    clock = Clock()
    producer, _said = _producer(DemoSource("healthy", seed=1, clock=clock), interval=0.05)
    loop = asyncio.ensure_future(producer.run())
    try:
        seen = []
        async for update in producer.updates():
            seen.append(update.version)
            if len(seen) == 3:
                break
        assert seen == sorted(seen) and len(set(seen)) == 3
        follower = producer.updates()
        current = await follower.__anext__()  # a new consumer gets the current frame at once
        assert current is producer.latest
        producer.poll_now()  # r: a poll and a frame at once
        assert (await follower.__anext__()).version > current.version
    finally:
        loop.cancel()
        await producer.close()


async def test_a_slow_consumer_gets_the_newest_frame_and_nothing_queues():
    producer, _said = _producer(DemoSource("healthy", seed=1), interval=None)
    await producer.start()
    updates = producer.updates()
    for _ in range(5):
        await producer.refresh()  # five frames while the consumer is busy
    first = await updates.__anext__()
    assert first.version == 5 and first is producer.latest  # the newest only
    await producer.refresh()
    assert (await updates.__anext__()).version == 6
    await producer.close()


async def test_a_source_that_cannot_start_ends_the_stream_with_one_line():
    class Broken(DemoSource):
        async def start(self) -> None:
            raise OSError("permission denied on /var/run/docker.sock\nmore detail")

    producer, _said = _producer(Broken("healthy", seed=1))
    await producer.run()
    assert producer.failure == "cannot collect: permission denied on /var/run/docker.sock"
    assert [u async for u in producer.updates()] == []
    await producer.close()


async def test_probing_opens_once_keeps_the_agents_and_retries_a_failed_round(scripted):
    producer, said = _producer(EngineSource("healthy", seed=1), interval=None,
                               probe=ProbeSettings(), probe_every=0.01)
    scripted.fail_rounds = {2}
    await producer.refresh()
    producer.start_probing()
    await eventually(lambda: scripted.made and scripted.made[0].rounds >= 4, 30, "four probing rounds")
    session = scripted.made[0]
    assert len(scripted.made) == 1 and session.rounds >= 4 and session.kept == session.rounds
    assert ("information", "removed probe agents left by an earlier run: overlaytui-probe-old") in said
    assert ("warning", "ping only: a tool is missing") in said  # said once, when known
    assert ("warning", "the probe agent on backend was removed: deployed again") in said
    assert ("error", "a probe round failed: RuntimeError: the manager went away") in said
    assert producer.probe_problem == ""  # the next round worked: the problem is gone
    assert await producer.close() is True and session.closed and producer.session is None


async def test_probing_that_cannot_start_is_said_and_stays_shown(scripted):
    producer, said = _producer(EngineSource("healthy", seed=1), interval=None, probe=ProbeSettings())
    scripted.fail_start = "no probe agent could start (busybox): no such image"
    await producer.refresh()
    await producer.start_probing()
    assert producer.probe_problem == scripted.fail_start and producer.session is None
    assert said[-1] == ("error", f"cannot probe: {scripted.fail_start}")
    update = await producer.frame_now()
    assert update.frame.probes.problem == scripted.fail_start  # the panes show why
    assert scripted.made[0].closed  # a half-started session's agents are removed too
    await producer.close()


async def test_a_source_with_its_own_probe_results_is_read_not_probed(scripted):
    producer, _said = _producer(DemoSource("loss", seed=1), interval=None, probe=ProbeSettings())
    await producer.refresh()
    assert producer.start_probing() is None and not producer.can_probe
    results = await producer.probe_round()
    assert results and scripted.made == []  # no agents for a demo
    lossy = [(r.src_node, r.dst_node) for r in results if r.kind == "ping" and r.loss_pct and r.loss_pct > 1]
    assert lossy and all("node4" in pair for pair in lossy)  # the scenario's node, both ways
    await producer.close()


async def test_a_sink_sees_every_frame_in_the_frame_thread():
    import threading

    producer, _said = _producer(DemoSource("healthy", seed=1), interval=None)
    threads = []
    producer.add_sink(lambda frame: threads.append(threading.current_thread().name))
    await producer.start()
    for _ in range(3):
        await producer.refresh()
    assert len(threads) == 3 and all(name.startswith("overlaytui-frame") for name in threads)
    await producer.close()


async def test_a_source_whose_wait_fails_does_not_make_the_loop_spin():
    class Failing(DemoSource):
        async def wait_for_change(self, timeout: float) -> bool:
            raise RuntimeError("the event stream broke")

    producer, _said = _producer(Failing("healthy", seed=1), interval=0.2)
    loop = asyncio.ensure_future(producer.run())
    await asyncio.sleep(1.0)
    loop.cancel()
    await asyncio.gather(loop, return_exceptions=True)
    assert 2 <= producer.latest.version <= 7  # a frame every interval, not thousands
    await producer.close()


async def test_a_new_probe_round_gives_the_freed_memory_back(monkeypatch):
    """Once per round, not per frame: a round's checks churn (~25 MB at 200 nodes), a frame's do not."""
    trims = []
    monkeypatch.setattr(producer_module.memory, "trim_soon", lambda: trims.append(1))
    clock = Clock()
    producer, _said = _producer(DemoSource("healthy", seed=1, clock=clock), interval=None)
    await producer.start()
    await producer.refresh()
    first = len(trims)
    for _ in range(3):
        clock.now += 1.0
        await producer.refresh()
    assert first == 1 and len(trims) == 1  # the same round
    clock.now += 10.0  # the demo's next round (PROBE_ROUND)
    await producer.refresh()
    assert len(trims) == 2
    await producer.close()
