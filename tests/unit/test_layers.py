"""The layer map: data flows one way (sources and probes -> analysis -> frame -> producer -> consumers), and no
import runs back up. Each module belongs to the layer of its package (or its own name at the top level); a module
may import its own layer and the layers before it, never one after it."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "overlaytui"

LAYERS = [
    {"model", "safe", "units", "themes", "flags", "memory", "__init__"},  # the model, text helpers, the CLI's words
    {"recording"},  # the recording format: model in, JSON out
    {"sources"},  # engines, the demo, a recording played back
    {"probes"},  # the probe agents and their parsers (engine errors from sources)
    {"analysis"},  # pure judging: model in, findings out
    {"config", "settings"},  # the user's settings (thresholds are analysis' type)
    {"frame", "history", "export", "exporter", "httpd"},  # one frame, what is derived from it, and serving it
    {"producer", "feed"},  # the one loop (and its frames handed to `serve`'s viewers)
    {"panes"},
    {"app", "viewer"},  # the dashboard (a viewer: the dashboard of a browser tab on serve's frames)
    {"lab"},  # a real swarm on this machine: uses the sources and the producer's consumers' flags, never the reverse
    {"commands"},
    {"cli", "__main__"},
]


def layer_of(parts: tuple[str, ...]) -> int:
    name = parts[0] if parts else "__init__"
    for index, layer in enumerate(LAYERS):
        if name in layer:
            return index
    raise AssertionError(f"overlaytui.{'.'.join(parts)} belongs to no layer: add it to LAYERS")


def imports(path: Path) -> list[tuple[int, tuple[str, ...]]]:
    """(line, the imported module as parts below overlaytui) for each import of our own modules."""
    module = path.relative_to(PACKAGE).with_suffix("").parts
    package = module[:-1] if path.name != "__init__.py" else module[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)] if node.level > 1 else package
                target = (*base, *(node.module.split(".") if node.module else ()))
                if not node.module:  # `from . import x`: x is a module of that package, or a name in it
                    for alias in node.names:
                        sub = PACKAGE.joinpath(*target, alias.name)
                        is_module = sub.is_dir() or sub.with_suffix(".py").exists()
                        found.append((node.lineno, (*target, alias.name) if is_module else target))
                    continue
                found.append((node.lineno, target))
            elif node.module and node.module.startswith("overlaytui"):
                found.append((node.lineno, tuple(node.module.split(".")[1:])))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, tuple(a.name.split(".")[1:])) for a in node.names
                      if a.name.startswith("overlaytui.")]
    return found


def test_no_import_runs_back_up_the_layers():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        own = layer_of(parts)
        for line, target in imports(path):
            if target and target != ("__init__",) and layer_of(target) > own:
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports overlaytui.{'.'.join(target)}")
    assert upward == []


def test_the_check_sees_an_upward_import(tmp_path):
    """The check has teeth: a source importing the lab (as sources/underlay.py once did) is caught."""
    assert layer_of(("lab", "lab")) > layer_of(("sources", "underlay"))
    assert layer_of(("analysis", "findings")) > layer_of(("probes", "mtu"))
    assert layer_of(("commands", "common")) > layer_of(("app",))
