"""The stats streams' bookkeeping of which containers are still awaited for their first pair of samples (the
source wakes its consumer once when none is): a container that stops or goes before its second sample is no
longer awaited — it would otherwise hold the first complete frame back until the consumer's interval."""

from __future__ import annotations

import threading

from docker.errors import NotFound

from overlaytui.sources.streams import StatsStreams
from tests.helpers import wait_for


class _Gone:
    """A client whose container is gone (the engine's 404 for its stats)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def stats(self, cid, decode, stream):
        raise NotFound(f"No such container: {cid}")


class _Stopped(_Gone):
    """A stopped container's stream: frames without a read time."""

    def stats(self, cid, decode, stream):
        yield {"read": "0001-01-01T00:00:00Z", "preread": "0001-01-01T00:00:00Z"}
        threading.Event().wait(30)


def test_a_container_gone_before_its_second_sample_is_no_longer_awaited():
    woken = threading.Event()
    streams = StatsStreams(lambda _timeout: _Gone(), on_pair=woken.set)
    streams.sync(["a" * 64])
    assert woken.wait(5), "the consumer was not woken"
    assert streams.all_paired()
    assert streams.errors() == {"a" * 64: "container gone"}


def test_a_stopped_containers_stream_is_no_longer_awaited():
    streams = StatsStreams(lambda _timeout: _Stopped())
    try:
        streams.sync(["b" * 64])
        wait_for(streams.all_paired, 5, "the stopped container no longer awaited")
        assert streams.samples() == {}  # no rates invented for it
    finally:
        streams.close()
