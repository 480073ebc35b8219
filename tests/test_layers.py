"""The package's layers, written down once (docs/architecture.md explains them), and checked on every run.

A module imports only from its own layer or below; the import graph, function-level imports included, has no cycle;
no module is longer than MAX_LINES. `flexops.sandbox` and all its submodules are one layer that may import from the
rest of flexops only SANDBOX_MAY_IMPORT. A new module must be placed in a layer here before the tests pass.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "flexops"

# From the bottom. A listed module that does not exist yet (trace, repairs, ...) is where it will go.
LAYERS = [
    ("errors and coercions", {"exceptions", "coerce", "atomic", "task_expressions", "twilio_errors", "progress"}),
    ("sandbox", {"sandbox"}),  # flexops.sandbox and every submodule of it
    ("settings, retry, audit, lock", {"settings", "retry", "seen_state", "audit", "lock", "run_folder",
                                         "evidence_store"}),
    ("the client", {"client"}),
    ("the domain", {"studio", "address_spec", "addresses", "evidence", "evidence_scan", "silence",
                    "first_message", "path_checks", "checks", "trace_hops",
                    "trace_collect", "trace", "trace_many", "inventory", "fleet", "desired", "plan", "repairs",
                    "legacy", "routing", "rollback", "janitor", "twin", "twin_fleet",
                    "repair_trace"}),
    ("presentation for runbooks", {"charts", "notebook", "widgets", "params", "ui", "trace_view", "janitor_view",
                                   "report_io", "reports"}),
    ("runs", {"run_parameters", "runs", "run_index", "notify", "runs_dashboard", "demo"}),
    ("the CLI", {"cli_accounts", "cli_notify", "cli_changes", "cli_trace", "cli_janitor", "cli_twin", "cli_repairs",
                 "cli", "__init__"}),  # __init__: the public API, re-exported
]
SANDBOX_MAY_IMPORT = {"flexops.exceptions", "flexops.task_expressions"}
MAX_LINES = 400
LONGER_ALLOWED = {}  # {"flexops/x.py": "why (said in docs/architecture.md too)"}


def module_name(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module):
    """(index, name) of a flexops module's layer, or None when it is in none."""
    if module == "flexops.sandbox" or module.startswith("flexops.sandbox."):
        key = "sandbox"
    else:
        key = "__init__" if module == "flexops" else module.split(".", 1)[1]
    return next(((i, name) for i, (name, members) in enumerate(LAYERS) if key in members), None)


def imports(module):
    """Every flexops module `module` imports, at any depth of its code (function-level imports count)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:  # `from . import x`: the module x; `from .x import y`: the module x
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    # a package's __init__ runs before any of its modules anyway: importing it from inside is no dependency
    return {name for name in found if name in MODULES and name != module and not module.startswith(name + ".")}


GRAPH = {module: imports(module) for module in MODULES}


def test_every_module_has_a_layer():
    unplaced = [f"{MODULES[m].relative_to(ROOT)}" for m in MODULES if layer_of(m) is None]
    assert not unplaced, (f"{', '.join(unplaced)}: in no layer. Add it to the layer it belongs to in LAYERS "
                          f"(tests/test_layers.py) and to docs/architecture.md")


def upward_imports(graph):
    """Every import of `graph` ({module: imported modules}) that goes up a layer, as a sentence."""
    wrong = []
    for module, targets in graph.items():
        here = layer_of(module)
        for target in sorted(targets):
            there = layer_of(target)
            if here is None or there is None:
                continue  # reported by test_every_module_has_a_layer
            if here[1] == "sandbox" and there[1] != "sandbox" and target not in SANDBOX_MAY_IMPORT:
                wrong.append(f"{module} (sandbox) imports {target}: the sandbox may import only "
                             f"{', '.join(sorted(SANDBOX_MAY_IMPORT))} from the rest of flexops")
            elif there[0] > here[0]:
                wrong.append(f"{module} ({here[1]}) imports {target}, of the higher layer {there[1]!r}")
    return wrong


def cycles(graph):
    """The import cycles of `graph`: its strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_no_module_imports_a_higher_layer():
    wrong = upward_imports(GRAPH)
    assert not wrong, "\n".join(wrong)


def test_the_import_graph_has_no_cycle():
    """Function-level imports count: a cycle held apart by one is still a knot."""
    found = cycles(GRAPH)
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_checks_catch_what_they_are_for():
    """An upward import, a sandbox reaching into flexops, and a cycle are each reported; the walk sees relative
    and function-level imports (client imports the sandbox inside a function)."""
    bad = {"flexops.exceptions": {"flexops.cli"}, "flexops.cli": {"flexops.exceptions"},
           "flexops.sandbox.store": {"flexops.settings", "flexops.exceptions"}}
    assert len(upward_imports(bad)) == 2 and cycles(bad) == [["flexops.cli", "flexops.exceptions"]]
    assert "flexops.sandbox.server" in GRAPH["flexops.client"] and "flexops.exceptions" in GRAPH["flexops.client"]
    assert layer_of("flexops.nonexistent") is None and layer_of("flexops.sandbox.anything.deep")[1] == "sandbox"


@pytest.mark.parametrize("path", sorted(MODULES.values()), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_is_over_the_line_limit(path):
    name = str(path.relative_to(ROOT))
    count = len(path.read_text(encoding="utf-8").splitlines())
    assert count <= MAX_LINES or name in LONGER_ALLOWED, (
        f"{name} has {count} lines (at most {MAX_LINES}): split it by job, or say why in LONGER_ALLOWED and "
        "docs/architecture.md")
