"""`overlaytui snapshot` with its phases marked: run as a script in place of `python -m overlaytui`

    python bench/snapshot_phases.py snapshot --lab --json

prints the command's own output, and on stderr one line `PHASES {json}`: wall-clock times (time.time()) of the
interpreter's start, the command line loaded, the source's start, its first stats streams opened, the first poll
of every engine, the producer's modules loaded, two stats samples of every container, and the output printed.
The marks are put on the classes as they are imported (an import hook), so the command loads its modules in its
own order, whichever revision of overlaytui is first on the path (bench/startup.py runs this tree's and a
baseline's, interleaved, beside the docker CLI).
"""

from __future__ import annotations

import json
import sys
import time

MARKS = {"interpreter up": time.time()}

import importlib.abc  # noqa: E402 - after the first mark
import importlib.machinery  # noqa: E402


def mark(name: str) -> None:
    MARKS.setdefault(name, time.time())


def _on_swarm(module) -> None:
    cls = module.DockerSwarmSource
    start_name = "_start" if hasattr(cls, "_start") else "start"  # revisions before start() could be awaited twice
    start, sync, ready = getattr(cls, start_name), cls._sync_streams, cls.wait_for_stats

    async def started(self):
        mark("source start")
        await start(self)
        mark("first poll of every engine")

    def synced(self, state, containers):
        mark("first stats streams opened")
        return sync(self, state, containers)

    async def waited(self, timeout):
        result = await ready(self, timeout)
        mark("two samples of every container")
        return result
    setattr(cls, start_name, started)
    cls._sync_streams, cls.wait_for_stats = synced, waited


def _on_producer(_module) -> None:
    mark("producer loaded")


class _Marker(importlib.abc.MetaPathFinder):
    after = {"overlaytui.sources.swarm": _on_swarm, "overlaytui.producer": _on_producer}

    def find_spec(self, name, path, target=None):
        if name not in self.after:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        loader, then = spec.loader, self.after[name]
        execute = loader.exec_module

        def exec_module(module):
            execute(module)
            then(module)
        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def main() -> None:
    """As `python -m overlaytui` runs (cli.run: its exit, which does not wait for stuck threads)."""
    sys.meta_path.insert(0, _Marker())
    from overlaytui import cli

    mark("command line loaded")
    code = 1
    try:
        code = cli.main(sys.argv[1:])
    finally:
        mark("printed")
        sys.stderr.write("PHASES " + json.dumps(MARKS) + "\n")
        sys.stderr.flush()
    getattr(cli, "exit_now", sys.exit)(code)


if __name__ == "__main__":
    main()
