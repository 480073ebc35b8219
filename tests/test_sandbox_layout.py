"""The sandbox's layout rules: moto-like product folders, no module over 400 lines, no import cycles (imports
inside functions count), and nothing of flexops imported but its exceptions and task expressions."""
import ast
from pathlib import Path

import pytest

SANDBOX = Path(__file__).resolve().parents[1] / "flexops" / "sandbox"
ALLOWED_OUTSIDE = {"flexops.exceptions", "flexops.task_expressions"}


def module_name(path):
    parts = path.relative_to(SANDBOX.parents[1]).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path):
    """Every flexops module `path` imports, at any depth of the file (function-level imports included)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("flexops")}
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = f"{base}.{node.module}" if node.level and node.module else (node.module or base)
            if not target.startswith("flexops"):
                continue
            for alias in node.names:  # `from . import x` imports the module x when there is one
                candidate = f"{target}.{alias.name}"
                found.add(candidate if module_path(candidate) else target)
    return found


def module_path(name):
    base = SANDBOX.parents[1].joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def graph():
    return {module_name(p): imports_of(p) for p in SANDBOX.rglob("*.py")}


def test_each_product_has_models_responses_and_urls():
    for product in ("conversations", "studio", "api", "taskrouter", "flex", "monitor"):
        for part in ("models", "responses", "urls"):
            assert (SANDBOX / product / f"{part}.py").is_file(), f"{product}/{part}.py"


@pytest.mark.parametrize("path", sorted(SANDBOX.rglob("*.py")), ids=lambda p: str(p.relative_to(SANDBOX)))
def test_no_module_is_over_400_lines(path):
    assert len(path.read_text().splitlines()) <= 400


def test_models_know_nothing_of_http():
    for path in SANDBOX.glob("*/models.py"):
        text = path.read_text()
        assert "werkzeug" not in text and "request.form" not in text, path


def test_the_sandbox_imports_nothing_of_flexops_but_exceptions_and_task_expressions():
    outside = {(module, target) for module, targets in graph().items() for target in targets
               if not target.startswith("flexops.sandbox") and target not in ALLOWED_OUTSIDE}
    assert not outside, sorted(outside)


def test_there_are_no_import_cycles():
    edges = {module: {t for t in targets if t.startswith("flexops.sandbox")} for module, targets in graph().items()}
    state, cycles = {}, []

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(trail[trail.index(nxt):] + [nxt] if nxt in trail else [node, nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert not cycles, cycles
