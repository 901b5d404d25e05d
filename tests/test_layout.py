"""The shape of the code: one-way layers, no import circles, modules and functions one can read in a sitting.

Layers, bottom to top: files and errors (0), backend (1), engine (2), model (3), training (4),
interfaces (5). A module may import modules of its own layer or below, never above.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "tinygan"
LAYERS = {
    "errors": 0, "files": 0, "memory": 0, "arrayfile": 0, "checkpoint": 0, "images": 0,
    "backend": 1, "cuda": 1,
    "layers": 2, "losses": 2, "optim": 2, "network": 2, "objectives": 2, "spectral": 2, "double_backward": 2,
    "elbo": 2,
    "config": 3, "averaging": 3, "model": 3, "gan": 3, "critic": 3, "vae_config": 3, "vae": 3,
    "classes": 3, "conditioning": 3,
    "data": 4, "trainer": 4, "guard": 4, "rundir": 4, "runs": 4, "metrics": 4, "evaluate": 4, "reconstructions": 4,
    "sampling": 4, "pictures": 4,
    "api": 5, "console": 5, "options": 5, "train_command": 5, "cli": 5, "families": 5, "__init__": 5, "__main__": 5,
    "sample_command": 5,
}
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 350, 50


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name relative to it (``data.idx``, ``gan``, ...)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        found[".".join(parts[:-1]) if parts[-1] == "__init__" and len(parts) > 1 else ".".join(parts)] = path
    return found


def _top(name: str) -> str:
    return name.split(".")[0]


def _imports(name: str, path: Path) -> set[str]:
    """The package modules that ``name`` imports (relative or absolute ``tinygan.`` imports)."""
    package = name.split(".")[:-1] if path.name != "__init__.py" else name.split(".")
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)]
            target = ".".join([*base, node.module] if node.module else base)
            out.add(target or "__init__")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tinygan."):
            out.add(node.module.split(".", 1)[1])
        elif isinstance(node, ast.Import):
            out.update(a.name.split(".", 1)[1] for a in node.names if a.name.startswith("tinygan."))
    return {t for t in out if t}


MODULES = _modules()


def test_every_module_has_a_layer():
    missing = sorted({_top(m) for m in MODULES} - set(LAYERS))
    assert not missing, f"modules with no layer in the map (add them to LAYERS and the README): {missing}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_point_down(name):
    mine = LAYERS[_top(name)]
    upward = sorted(t for t in _imports(name, MODULES[name]) if LAYERS.get(_top(t), -1) > mine)
    assert not upward, f"{name} (layer {mine}) imports from a higher layer: {upward}"


def test_no_import_circles():
    graph = {m: {t for t in _imports(m, p) if t in MODULES and t != m} for m, p in MODULES.items()}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError(f"import circle: {' -> '.join([*trail, node, nxt])}")
            if nxt not in state:
                visit(nxt, [*trail, node])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_and_functions_stay_small(name):
    source = MODULES[name].read_text()
    assert source.count("\n") <= MAX_MODULE_LINES, f"{name} has {source.count(chr(10))} lines"
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"functions in {name} longer than {MAX_FUNCTION_LINES} lines: {long}"
