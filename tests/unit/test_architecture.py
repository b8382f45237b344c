"""The layer rules of docs/architecture.md, enforced on the source tree (AST only: nothing is imported).

* the pure core imports no tool and no outer layer;
* each tool is imported only by its adapter (Prefect also by the flow wiring, FastAPI by the webhook receiver);
* adapters know nothing of steps, flow, CLI or receiver; steps know nothing of flow, CLI or receiver;
* no private name is imported from another module, no import cycle between modules at import time;
* no module over 300 lines, no function over 60, and the flow fits on one screen.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PKG = "ctpipeline"

# tool -> the module prefixes allowed to import it
TOOLS = {
    "mlflow": ("ctpipeline.adapters.mlflow",),
    "great_expectations": ("ctpipeline.adapters.gx",),
    "evidently": ("ctpipeline.adapters.evidently",),
    "prefect": ("ctpipeline.adapters.prefect", "ctpipeline.flow"),
    "fastapi": ("ctpipeline.webhook",),
    "starlette": ("ctpipeline.webhook",),
    "uvicorn": ("ctpipeline.webhook",),
    "apprise": ("ctpipeline.adapters.notify",),
    "pyspark": ("ctpipeline.adapters.spark",),
    "py4j": ("ctpipeline.adapters.spark",),
}
# tool submodules with a rule of their own (the package itself is allowed elsewhere: core imports xgboost)
TOOL_SUBMODULES = {"xgboost.spark": ("ctpipeline.adapters.spark",)}
# layer -> ctpipeline packages it must not import (short names, under ctpipeline.)
_OUTER = "steps cli webhook flow"
_BANNED = {
    "core": f"adapters store env plots {_OUTER}",
    "config": f"adapters store {_OUTER}",
    "adapters": _OUTER,
    "store": f"adapters {_OUTER}",
    "steps": "cli webhook flow",
    "webhook": "cli flow steps",
    "stack": _OUTER,
}
FORBIDDEN = {f"{PKG}.{layer}": tuple(f"{PKG}.{m}" for m in banned.split()) for layer, banned in _BANNED.items()}
CORE_ALSO_FORBIDDEN = ("matplotlib",)
MAX_MODULE_LINES, MAX_FUNCTION_LINES, MAX_FLOW_LINES = 300, 60, 80


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted((SRC / PKG).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, tree: ast.Module, top_level_only: bool = False) -> list[tuple[str, list[str], int]]:
    """(module imported, names taken from it, line) for every import in `tree`."""
    is_pkg = MODULES[name].name == "__init__.py"
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = []
    for node in nodes:
        if top_level_only and isinstance(node, ast.If):  # `if TYPE_CHECKING:` blocks do not run
            continue
        if isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([mod] if mod else []))
            found.append((mod, [a.name for a in node.names], node.lineno))
    return found


def _tree(name: str) -> ast.Module:
    return ast.parse(MODULES[name].read_text(encoding="utf-8"))


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


@pytest.mark.parametrize("name", sorted(MODULES))
def test_layer_rules(name):
    problems = []
    for mod, _, line in _imports(name, _tree(name)):
        root = mod.split(".")[0]
        if root in TOOLS and not any(_under(name, p) for p in TOOLS[root]):
            problems.append(f"line {line}: imports {mod} (only {', '.join(TOOLS[root])} may)")
        for sub, allowed in TOOL_SUBMODULES.items():
            if _under(mod, sub) and not any(_under(name, p) for p in allowed):
                problems.append(f"line {line}: imports {mod} (only {', '.join(allowed)} may)")
        if _under(name, "ctpipeline.core") and root in CORE_ALSO_FORBIDDEN:
            problems.append(f"line {line}: the pure core imports {mod}")
        for layer, banned in FORBIDDEN.items():
            if _under(name, layer):
                problems += [f"line {line}: {layer} imports {mod}" for b in banned if _under(mod, b)]
    assert not problems, f"{name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_private_import_from_another_module(name):
    bad = [
        f"line {line}: from {mod} import {n}"
        for mod, names, line in _imports(name, _tree(name))
        if _under(mod, PKG) and mod != name
        for n in names
        if n.startswith("_")
    ]
    assert not bad, f"{name}:\n" + "\n".join(bad)


def test_no_import_cycle():
    graph = {}
    for name in MODULES:
        deps = set()
        for mod, names, _ in _imports(name, _tree(name), top_level_only=True):
            for cand in [f"{mod}.{n}" for n in names] + [mod]:
                if cand in MODULES and cand != name:
                    deps.add(cand)
                    break
        graph[name] = deps - {name}
    # a package's __init__ importing its own submodules is not a cycle with them
    state: dict[str, int] = {}
    cycles = []

    def visit(n, stack):
        state[n] = 1
        for d in graph[n]:
            if _under(n, d) or _under(d, n) and MODULES[n].name == "__init__.py":
                continue
            if state.get(d) == 1:
                cycles.append(" -> ".join(stack[stack.index(d) :] + [d]))
            elif d not in state:
                visit(d, stack + [d])
        state[n] = 2

    for n in graph:
        if n not in state:
            visit(n, [n])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_and_function_size(name):
    text = MODULES[name].read_text(encoding="utf-8")
    lines = len(text.splitlines())
    limit = MAX_FLOW_LINES if name == "ctpipeline.flow" else MAX_MODULE_LINES
    assert lines <= limit, f"{name}: {lines} lines (at most {limit})"
    long = [
        f"{node.name} (line {node.lineno}): {node.end_lineno - node.lineno + 1} lines"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"{name}: functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)


def test_top_level_flows_folder_is_only_an_entry_point():
    entry = SRC.parent / "flows" / "continuous_training.py"
    assert len(entry.read_text(encoding="utf-8").splitlines()) <= 15
    assert not (SRC.parent / "flows" / "__init__.py").exists()  # not a package installed into site-packages


@pytest.mark.parametrize(
    ("module", "heavy"),
    [
        ("ctpipeline.adapters.gx", ("great_expectations", "prefect", "mlflow")),
        ("ctpipeline.adapters.evidently", ("evidently", "prefect", "mlflow")),
        ("ctpipeline.adapters.mlflow", ("mlflow", "prefect")),
        ("ctpipeline.core.triggers", ("prefect", "mlflow", "evidently")),
        ("ctpipeline.config", ("prefect", "mlflow", "evidently", "great_expectations")),
    ],
)
def test_importing_loads_no_tool_until_used(module, heavy):
    """No work at import time: the tools are imported on first use, inside functions."""
    import subprocess
    import sys

    code = f"import sys, {module}; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
