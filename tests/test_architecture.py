"""The import graph of the apps (docs/architecture.md): no module cycle, arrows between apps one way.

Read from the source with `ast`, function-level imports included, so a lazy import cannot hide a
cycle. Layers, base first: portal (people) <- inference <- scans <- alerts. An import against the
layers must be listed below with its reason.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["portal", "inference", "scans", "alerts"]

# The project's wiring lives in portal/ (house style) and sees every app: the root URLconf, the
# ASGI router, the home page and health check, the Celery app that discovers their tasks.
WIRING = {"portal.urls", "portal.asgi", "portal.views", "portal.celery", "portal.settings"}

# Imports that run against the layers on purpose (importer, imported): why.
AGAINST_THE_LAYERS = {
    ("scans.analysis", "alerts.events"): "a scan's status reaches its uploader through the one fan-out point",
    ("scans.analysis", "alerts.services"): "a result that needs a clinician raises its alert in the same "
    "transaction, so neither exists without the other",
    ("scans.views", "alerts.selectors"): "a patient's page lists the patient's open alerts",
}


def modules() -> dict[str, Path]:
    found = {}
    for app in LAYERS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def import_graph() -> dict[str, set[str]]:
    known = modules()

    def resolve(name: str) -> str | None:
        while name:
            if name in known:
                return name
            name = name.rpartition(".")[0]
        return None

    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                targets = [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                module = resolve(target)
                if module and module != name:
                    edges[name].add(module)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in list(edges):
        if node not in index:
            visit(node)
    return found


def app_of(module: str) -> str:
    return module.partition(".")[0]


def test_no_module_imports_one_that_imports_it_back():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_imports_between_apps_point_down_the_layers_or_say_why():
    against = []
    for importer, imported in import_graph().items():
        for module in imported:
            low, high = app_of(module), app_of(importer)
            if low == high or importer in WIRING:
                continue
            if LAYERS.index(low) > LAYERS.index(high) and (importer, module) not in AGAINST_THE_LAYERS:
                against.append(f"{importer} -> {module}")
    assert sorted(against) == []


def test_every_listed_exception_is_still_needed():
    edges = import_graph()
    assert [pair for pair in AGAINST_THE_LAYERS if pair[1] not in edges.get(pair[0], set())] == []


def test_the_engine_is_a_pure_library():
    """inference/engine imports neither Django nor any app outside itself."""
    offenders = []
    for path in (ROOT / "inference" / "engine").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else ([node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            )
            for name in names:
                top = name.partition(".")[0]
                if top == "django" or (top in LAYERS and not name.startswith("inference.engine")):
                    offenders.append(f"{path.name}: {name}")
    assert offenders == []
