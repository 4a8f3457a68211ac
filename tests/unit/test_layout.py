"""The package's layout holds: the driver side never imports TensorFlow nor
the worker side, no import cycle, modules of a readable size."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import tlbench

PACKAGE = Path(tlbench.__file__).parent
TENSORFLOW = ("tensorflow", "tensorflow_hub", "tf_keras", "keras")


def _modules() -> dict[str, Path]:
    names = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


MODULES = _modules()
WORKER_SIDE = {name for name in MODULES if name.startswith("tlbench.worker")}


def _imports(path: Path, top_level_only: bool) -> set[str]:
    """Modules `path` imports (absolute names), at its top level or anywhere."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def _package_imports(name: str, top_level_only: bool) -> set[str]:
    return {other for other in _imports(MODULES[name], top_level_only) if other in MODULES and other != name}


def test_no_import_cycle():
    graph = {name: _package_imports(name, top_level_only=True) for name in MODULES}
    # Packages import nothing of their own at the top: a cycle through __init__ is not one.
    done, path = set(), []

    def visit(name):
        if name in path:
            raise AssertionError("import cycle: " + " -> ".join(path[path.index(name) :] + [name]))
        if name in done:
            return
        path.append(name)
        for other in sorted(graph[name]):
            visit(other)
        path.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)


@pytest.mark.parametrize("name", sorted(set(MODULES) - WORKER_SIDE))
def test_driver_side_modules_never_import_tensorflow_or_the_worker_side(name):
    imported = _imports(MODULES[name], top_level_only=False)
    assert not {m for m in imported if m.split(".")[0] in TENSORFLOW}, f"{name} imports TensorFlow"
    assert not {m for m in imported if m in WORKER_SIDE}, f"{name} imports the worker side"


def test_importing_every_driver_side_module_loads_no_tensorflow():
    """At run time too: what the driver process imports brings no TensorFlow in."""
    driver = sorted(set(MODULES) - WORKER_SIDE - {"tlbench.__main__"})
    code = (
        f"import sys\nfor name in {driver!r}: __import__(name)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {TENSORFLOW!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def test_modules_are_of_a_readable_size():
    lines = {name: len(path.read_text().splitlines()) for name, path in MODULES.items()}
    assert lines["tlbench.cli"] < 250, lines["tlbench.cli"]
    assert max(lines.values()) <= 400, {name: n for name, n in lines.items() if n > 400}
    # The reports analyse once and render one document: what they need, at most (2,400 lines until the
    # sections on what was searched where, how long the decision took and where the time went).
    reports = {name: n for name, n in lines.items() if name.startswith("tlbench.reports")}
    assert sum(reports.values()) <= 2650, reports
