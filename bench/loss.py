"""The Loss pane beyond its matrix: the demo's bad-node scenario at 200 nodes (39,800 pairs per overlay); baseline:
the pane's matrix update at 5 nodes and at 30 nodes (its limit), measured the same way in the same process.

    .venv/bin/python -m bench loss

- the pane's update on the UI loop: rendering a computed overview (heat map, 200 node rows, 250 pair rows) plus
  a full layout and render of the screen by Textual's compositor; for the matrix baselines, the pane's `show`
  (which judges and renders its cells on the UI loop) plus the same layout and render;
- the analysis off the UI loop: indexing one overlay's 79,600 results and `lossmap.overview` (in a thread worker
  in the app), median per run;
- results -> overview on screen: the whole path through the worker, for reference;
- where the faulty node lands: its row index in the node list (0 = first).
"""

from __future__ import annotations

import asyncio
import statistics
import time

from overlaytui.analysis.lossmap import index_results, overview
from overlaytui.app import OverlayApp
from overlaytui.panes.loss import HEAT_LINES, MORE_PAIRS, WORST_PAIRS, LossPane
from overlaytui.sources.demo import DemoSource

LARGE = (200, 300, 5000)


async def measure(scale, rounds: int) -> dict:
    now = [1_800_000_000.0]
    source = DemoSource("bad-node", seed=1, scale=scale, clock=lambda: now[0])
    app = OverlayApp(source, interval=None, clock=lambda: now[0], persist_config=False, freeze_gc=True)
    result: dict = {}
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        app.action_show_tab("loss")
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        pane = app.query_one(LossPane)
        view = app.view()

        def draw() -> None:
            app.screen._refresh_layout(app.size)
            app.screen._compositor.render_update(full=True)

        net = view.snapshot.network(pane.network)
        raw, windows = view.probes(pane.network), view.windows(pane.network)
        coverage = tuple(view.coverage(pane.network))
        updates, analysis, whole = [], [], []
        for _ in range(rounds):
            start = time.perf_counter()
            indexed = index_results(raw, coverage)
            found = overview(indexed.hosts, indexed.pings, indexed.mtus, windows, indexed.ping_gaps(),
                             net.effective_mtu, view.thresholds, limit=WORST_PAIRS + MORE_PAIRS,
                             max_rows=2 * HEAT_LINES, max_cols=pane._heat_columns())
            analysis.append(time.perf_counter() - start)
            if len(indexed.hosts) > 30:
                start = time.perf_counter()
                pane.show_overview(found, view, indexed, windows, net.effective_mtu)
                draw()
                updates.append(time.perf_counter() - start)
                await pilot.pause()
                pane._guard = type(pane._guard)()  # the same results again: the pane must not skip them
                start = time.perf_counter()
                pane.show(view)
                await app.workers.wait_for_complete()
                await pilot.pause()
                draw()
                whole.append(time.perf_counter() - start)
            else:
                pane._guard = type(pane._guard)()
                start = time.perf_counter()
                pane.show(view)
                draw()
                updates.append(time.perf_counter() - start)
                await pilot.pause()
        table = pane.query_one("DataTable")
        first = [str(table.get_row_at(i)[0]) for i in range(min(5, table.row_count))]
        result.update(
            nodes=len(indexed.hosts), pairs=len(indexed.hosts) * (len(indexed.hosts) - 1), results=len(raw),
            pane_update_ms=statistics.median(updates) * 1000, analysis_ms=statistics.median(analysis) * 1000,
            first_rows=first, faulty_node=source.bad_node,
            faulty_node_row=first.index(source.bad_node) if source.bad_node in first else None)
        if whole:
            result["results_to_screen_ms"] = statistics.median(whole) * 1000
    return result


def main(runs: int = 5) -> dict:
    rounds = max(3 * runs, 15)
    small = asyncio.run(measure(None, rounds))
    limit = asyncio.run(measure((30, 60, 600), rounds))
    large = asyncio.run(measure(LARGE, rounds))
    print(f"Loss pane update on the UI loop at {large['nodes']} nodes ({large['pairs']:,} pairs, overview): "
          f"{large['pane_update_ms']:.1f} ms vs the matrix at 5 nodes {small['pane_update_ms']:.1f} ms (ratio "
          f"{large['pane_update_ms'] / small['pane_update_ms']:.1f}) and at 30 nodes {limit['pane_update_ms']:.1f} ms "
          f"(ratio {large['pane_update_ms'] / limit['pane_update_ms']:.1f})")
    print(f"analysis off the UI loop (index {large['results']:,} results + overview): {large['analysis_ms']:.0f} ms; "
          f"results -> overview on screen through the worker: {large['results_to_screen_ms']:.0f} ms")
    print(f"faulty node {large['faulty_node']}: row {large['faulty_node_row']} of the node list "
          f"(first rows: {', '.join(large['first_rows'])})")
    return {"large": large, "limit": limit, "small": small, "scale": LARGE}
