"""The shape of the code: one-way layers, no import circles, modules and functions one can read in a sitting.

The folders of ``tinygan/`` are the layers, bottom to top. A module may import from its own layer or
below, never above; ``io`` (errors, safe files, array files, checkpoints, PNG) is the base every layer uses.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "tinygan"
LAYERS_BOTTOM_UP = [
    ["io"],
    ["backend"],
    ["engine"],
    ["models"],
    ["data", "training", "evaluation"],
    ["interfaces", "__init__", "__main__"],
]
LAYERS = {folder: level for level, folders in enumerate(LAYERS_BOTTOM_UP) for folder in folders}
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


def test_every_module_lives_in_a_layer_folder():
    missing = sorted({_top(m) for m in MODULES} - set(LAYERS))
    assert not missing, f"modules outside the layer folders (move them into one of {LAYERS_BOTTOM_UP}): {missing}"


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


def _layer_of(module: str) -> int | None:
    """The layer of a ``tinygan.…`` module name (``None`` outside the package)."""
    parts = module.split(".")
    if parts[0] != "tinygan":
        return None
    return LAYERS.get(parts[1] if len(parts) > 1 else "__init__")


def test_a_train_start_goes_down_the_layers_once(tmp_path, monkeypatch):
    """From ``tinygan train``'s arguments to the model's constructor, every call goes down or stays in its
    layer: none calls back up. The modules are listed in the order the start first enters them."""
    import sys

    from tinygan.interfaces import cli
    from tinygan.models.model import Model

    class Built(Exception):
        pass

    def stop(self, *args, **kwargs):
        raise Built

    monkeypatch.setattr(Model, "__init__", stop)
    upward, order = [], []

    def profile(frame, event, arg):
        if event != "call":
            return
        back = frame.f_back
        callee, caller = frame.f_globals.get("__name__", ""), back.f_globals.get("__name__", "") if back else ""
        low, high = _layer_of(callee), _layer_of(caller)
        if low is None:
            return
        if callee not in order:
            order.append(callee)
        if high is not None and low > high:
            upward.append(f"{caller} -> {callee}.{frame.f_code.co_name}")

    argv = ["train", "--dataset", "ring", "--steps", "1", "--g-hidden", "4", "--d-hidden", "4",
            "--out", str(tmp_path / "run"), "--no-eval"]
    sys.setprofile(profile)
    try:
        with pytest.raises(Built):
            cli.main(argv)
    finally:
        sys.setprofile(None)
    assert not upward, f"calls back up a layer: {upward}"
    assert order[:2] == ["tinygan.interfaces.cli", "tinygan.interfaces.options"] and "tinygan.models.gan" in order
    assert len(order) <= 20, f"a train start passes through {len(order)} modules: {order}"
