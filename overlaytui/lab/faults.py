"""The lab's real faults as the dashboard's presenter controls (`sources.base.Faults`): `f` and the palette on the
lab (`--lab`, as root) run what `overlaytui lab fault NODE ...` runs, on the node under the cursor. Only what the
lab can do on a node is offered: loss, an MTU black hole, a partition, the engine stopped; clearing a node's
faults is `lab fault NODE clear`. No overlay, pair, node power-off or service update here."""

from __future__ import annotations

import asyncio

from ..model import Fault
from ..sources.base import FaultError
from .host import LabError, LabUnavailable

LAB_FAULTS = {"loss": ("node",), "mtu": ("node",), "partition": ("node",), "engine-down": ("node",)}
KIND = {"loss": "loss", "mtu": "mtu", "partition": "partition", "engine-down": "engine-stop"}
FAULT_WAIT = 90.0  # seconds a fault may take (clearing starts a stopped engine: up to 60 s)


class LabFaults:
    offers = LAB_FAULTS

    def __init__(self, apply=None, nodes=None) -> None:
        from . import lab

        self._apply = apply or lab.fault  # (node, kind, value) -> one line; LabError
        self._nodes = nodes or (lambda: [layout.name for layout in (lab.read_state() or _NoLab()).layouts])

    async def inject(self, fault: Fault) -> str:
        if fault.kind not in LAB_FAULTS or fault.target not in LAB_FAULTS[fault.kind]:
            raise FaultError(f"the lab cannot make {fault.describe()}: it offers "
                             + ", ".join(f"{kind} on a node" for kind in LAB_FAULTS))
        value = None
        if fault.kind == "loss":
            value = f"{fault.value:g}"
        elif fault.kind == "mtu":
            value = str(int(fault.value))
        return await self._run(fault.node, KIND[fault.kind], value)

    async def clear(self, target: Fault) -> str:
        """A node's faults (all of them: `lab fault NODE clear`), or every node's."""
        if target.target not in ("node", ""):
            raise FaultError(f"the lab clears a node's faults (or every node's), not {target.subject()}'s")
        if target.target == "node":
            return await self._run(target.node, "clear", None)
        nodes = await asyncio.to_thread(self._nodes)
        if not nodes:
            raise FaultError("no lab is running")
        said = [await self._run(node, "clear", None) for node in nodes]
        return f"every lab node's faults cleared ({len(said)} nodes)"

    async def _run(self, node: str, kind: str, value: str | None) -> str:
        try:
            return await asyncio.wait_for(asyncio.to_thread(self._apply, node, kind, value), FAULT_WAIT)
        except TimeoutError:
            raise FaultError(f"lab fault {node} {kind} did not finish within {FAULT_WAIT:g} s") from None
        except (LabError, LabUnavailable) as exc:
            raise FaultError(f"lab fault {node} {kind}: {exc}") from None


class _NoLab:
    layouts: list = []
