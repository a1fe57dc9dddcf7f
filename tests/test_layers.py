"""The import rule of docs/architecture.md: imports point down the pipeline only.

Every `import` of a bmdsl module, at the top of a file or inside a function, goes from a
layer to the same layer or an earlier one. Sibling packages of one layer do not import each
other. The bmdsl-free parts (the kernel, the trainer's runtime, the CVXPY runtime) import
nothing of bmdsl but themselves and the kernel, because emitted modules paste them.
There is no way up: the fluent methods (`model.derive()`, `derivation.bind(data)`,
`bound.to_cvxpy()`, ...) reach their later stage through core/stages.py, which the package
facade fills.
"""
import ast
from pathlib import Path

import pytest

from bmdsl.cvx.emit import RUNTIME as CVX_RUNTIME

PKG = Path(__file__).resolve().parent.parent / "bmdsl"

# the pipeline, in order; a module may import from its own layer and the layers before it
LAYERS = (("kernel",), ("core",), ("front",), ("atoms",), ("check",), ("derive",), ("bind",),
          ("cvx", "certificates"), ("trainer",), ("workflow", "layerwise"), ("commands",),
          ("",))                          # "": the package's facade, cli.py and __main__.py
RANK = {pkg: r for r, layer in enumerate(LAYERS) for pkg in layer}

# bmdsl-free parts: pasted into emitted modules, so they import only each other and the
# kernel (the CVXPY emitter's own list says which cvx/ files it pastes)
CVX_PASTED = tuple(f"bmdsl.cvx.{f[:-3]}" for f in CVX_RUNTIME)
FREE = {"bmdsl.kernel": ("bmdsl.kernel",),
        "bmdsl.trainer.runtime": ("bmdsl.trainer.runtime", "bmdsl.kernel"),
        **{m: CVX_PASTED + ("bmdsl.kernel",) for m in CVX_PASTED}}
# command modules register one subcommand each; they share helpers, never import each other
COMMAND_HELPERS = {"registry", "options", "data_args", "outputs", "heldout", "report",
                   "weights", "distributed_args", "shard_data", ""}


def modules():
    for f in sorted(PKG.rglob("*.py")):
        parts = list(f.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), f


def imports(name, path):
    """(imported module, enclosing function or None, line) for every bmdsl import."""
    tree = ast.parse(path.read_text())
    pkg = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    known = {m for m, _ in modules()}

    def visit(node, func):
        for child in ast.iter_child_nodes(node):
            f = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                else func
            if isinstance(child, ast.ImportFrom):
                base = ".".join(pkg[:len(pkg) - child.level + 1] +
                                ([child.module] if child.module else [])) \
                    if child.level else (child.module or "")
                for a in child.names:
                    full = f"{base}.{a.name}"
                    target = full if full in known else base
                    if target.startswith("bmdsl"):
                        yield target, func, child.lineno
            elif isinstance(child, ast.Import):
                for a in child.names:
                    if a.name.startswith("bmdsl"):
                        yield a.name, func, child.lineno
            yield from visit(child, f)
    yield from visit(tree, None)


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in RANK) else ""


def test_every_package_has_a_layer():
    assert {layer(m) for m, _ in modules()} <= set(RANK)


def test_imports_point_down_the_pipeline():
    wrong = []
    for name, path in modules():
        for target, func, line in imports(name, path):
            a, b = layer(name), layer(target)
            if RANK[b] < RANK[a] or a == b:
                continue
            kind = "sibling" if RANK[b] == RANK[a] else "up"
            wrong.append(f"{path.relative_to(PKG.parent)}:{line} ({kind}) imports {target}")
    assert not wrong, "imports against the pipeline:\n" + "\n".join(wrong)


@pytest.mark.parametrize("prefix", sorted(FREE))
def test_bmdsl_free_parts_import_only_themselves(prefix):
    wrong = [f"{path.relative_to(PKG.parent)}:{line} imports {target}"
             for name, path in modules() if name == prefix or name.startswith(prefix + ".")
             for target, _, line in imports(name, path)
             if not target.startswith(FREE[prefix])]
    assert not wrong, "\n".join(wrong)


def test_command_modules_do_not_import_each_other():
    wrong = []
    for name, path in modules():
        if layer(name) != "commands":
            continue
        for target, _, line in imports(name, path):
            sub = target.split(".")[2] if target.count(".") >= 2 else ""
            if layer(target) == "commands" and sub not in COMMAND_HELPERS:
                wrong.append(f"{path.relative_to(PKG.parent)}:{line} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles():
    """No chain of imports (top-level or lazy) leads from a module back to itself."""
    import networkx as nx
    graph = nx.DiGraph((name, target) for name, path in modules()
                       for target, _, _ in imports(name, path) if target != name)
    cycles = sorted(nx.simple_cycles(graph), key=len)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c + c[:1]) for c in cycles[:5])
