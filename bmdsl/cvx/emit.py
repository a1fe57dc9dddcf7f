"""`emit_cvxpy(derivation)`: a stand-alone Python module rebuilding the convex program.

The module is: a docstring, the imports it uses (numpy, cvxpy, the standard library), the
model as derived (comments from emitheader.py) and its SPEC dict of plain literals (tensor
names and sizes, patch and pooling layouts, the einsum specs of the layer and of the
adjoint, activation, loss, regularizer), then the definitions of the kernel (bmdsl/kernel)
and of the runtime files here (relu.py, program.py, runtime_forms.py, runtime_data.py,
runtime_main.py) that this model reaches (kernel/paste.py), then
`build_problem(arrays, masks=None, side=None)` and a `__main__`. Nothing is generated per
architecture: the einsum specs come from the derivation's tensor networks (lifting.py).
For reading: the SPEC keeps only the entries the pasted code reads, the pasted code has
no docstrings (the model section says what it computes; DOCS) and one blank line between
definitions (GAP), and a tractable pair's closed form comes by its kernel entry's name.

Safety: nothing from the model file reaches the source except through `_literal` and
`literals.name`, which accept only identifiers matching IDENTIFIER, einsum letter strings
re-encoded here, finite floats via repr(float), ints via repr(int), None/bool and
containers of these.
"""
from __future__ import annotations

import ast
from pathlib import Path

from ..atoms.norms import NORMS
from ..atoms.pairs import PAIR_TABLE

from ..derive.emitheader import model_section
from ..core.errors import SemanticError
from ..core.memory import FALLBACK_BYTES
from ..kernel import MODULES as KERNEL_MODULES
from ..kernel.einsum import letters
from ..kernel import lossforms, norms, pairforms
from ..kernel.layout import POOL_MATRICES, other_pools
from ..kernel.lossforms import LOSS_KERNELS
from ..kernel.paste import Paster, import_block as _imports
from ..core.literals import Subscripts, literal as _literal, name as _name, packed

HERE = Path(__file__).parent
KERNEL = HERE.parent / "kernel"
RUNTIME = ("relu.py", "program.py", "runtime_forms.py", "runtime_data.py", "runtime_main.py")
ALLOWED_IMPORTS = {"numpy", "cvxpy", "collections", "dataclasses", "functools", "typing",
                   "argparse", "sys", "time", "zipfile"}
ROOTS = ("problem_from_spec", "main")
RECORDS = ("activation", "bias")   # SPEC entries whose keys are field names
GAP = 1                            # blank lines between top-level definitions
DOCS = "none"    # the model section above the code says what it computes (kernel/prune.py)
# facts the model fixes: name -> (value for a SPEC, expressions of the pasted files that
# have it as truth value); the paster keeps only the branch taken on them
FACTS = {
    "cone": (lambda spec: bool(spec["activation"]["cone"]), ("spec['activation']['cone']",)),
    "no_cone": (lambda spec: not spec["activation"]["cone"], ("cones is None",)),
    "masked": (lambda spec: bool(spec["activation"]["masked"]), ("act['masked']",)),
    "patches": (lambda spec: bool(spec["patches"]), ("spec['patches']",)),
    "pools": (lambda spec: bool(spec["pools"]), ("spec['pools']",)),
    "hidden_bias": (lambda spec: bool(spec["bias"]["hidden"]), ("spec['bias']['hidden']",)),
    "output_bias": (lambda spec: bool(spec["bias"]["output"]), ("spec['bias']['output']",)),
    "exact_patterns": (lambda spec: spec["activation"]["patterns"] == "exact",
                       ("act['patterns'] == 'exact'",)),
    "gates_input": (lambda spec: spec["activation"]["gates"] is not None,
                    ("act['gates'] is not None",)),
    # the pair has closed forms: no enumeration, no brackets
    "tractable": (lambda spec: PAIR_TABLE[spec["C"], spec["R"]].form is not None,
                  ("PAIR_TABLE[spec['C'], spec['R']].form is not None", "rule.form is not None",
                   "PAIR_TABLE[C, R].form is not None")),
}
# facts known only one way (None: depends on the data): ||Z||_D is exact for a tractable pair
ONE_WAY = {"exact_dnorm": (lambda spec: True if FACTS["tractable"][0](spec) else None,
                           ("forms.dnorm_is_exact(C, R, p, q, enum_cap)",
                            "forms.dnorm_is_exact(C, R, *Z.shape, enum_cap)")),
           # no cones and closed forms: the program is exact, never a bracket
           "exact": (lambda spec: True if FACTS["tractable"][0](spec) and not
                     spec["activation"]["cone"] else None,
                     ("kind == 'exact'", "exactness == 'exact'")),
           "bracket": (lambda spec: False if FACTS["tractable"][0](spec) and not
                       spec["activation"]["cone"] else None,
                       ("kind == 'bracket'", "exactness == 'bracket'", "'exact' not in results"))}


def encode(spec) -> tuple:
    """(coef, operand names, letters) for a contract.Einsum; index names (which may carry
    primes from lifting) become letters in order of first appearance, as contract.py does,
    so numpy plans the same contraction."""
    try:
        text = letters(spec.operands, spec.out)
    except ValueError as exc:
        raise SemanticError(f"this einsum cannot be emitted: {exc}") from None
    return (float(spec.coef), tuple(_name(n) for n, _ in spec.operands), Subscripts(text))


def model_spec(derivation, *, enum_cap: int = 12, relu_bound: str = "auto",
               sdp_budget: int = 2_000_000, memory_budget: int = FALLBACK_BYTES) -> dict:
    """The SPEC dict of plain literals (see runtime_data.py) for this derivation."""
    model, net, act = derivation.model, derivation.network, derivation.activation
    loss, reg = model.loss, model.regularizer
    _check_pasteable(loss, reg.C, reg.R)
    for p in model.pools:
        if p.builder not in POOL_MATRICES:
            raise SemanticError(f"pooling '{p.builder}' has no stand-alone form")
    masked = act.uses_patterns
    adjoint_batch = ({"D": ("_k",), "R": ("_b0",)}, ("_b0", "_k")) if masked else \
        ({"R": ("_b0",)}, ("_b0",))
    patterns = model.activation.patterns
    return {
        "model": model.name,
        "inputs": [(t.name, tuple(t.dims)) for t in model.inputs],
        "target": (model.target.name, tuple(model.target.dims)),
        "sizes": [s.name for s in model.sizes],
        "fixed_sizes": {s.name: int(s.value) for s in model.sizes if s.value is not None},
        "patches": [{"tensor": p.tensor, "images": p.images, "kernel": int(p.kernel),
                     "stride": int(p.stride), "padding": int(p.padding), "grid": tuple(p.grid),
                     "dims": tuple(model.tensor(p.tensor).dims)} for p in model.patches],
        "pools": [{"tensor": p.tensor, "builder": p.builder,
                   "args": {k: tuple(int(w) for w in v) for k, v in p.args},
                   "grid": tuple(p.grid), "dims": tuple(model.tensor(p.tensor).dims)}
                  for p in model.pools],
        "w1": tuple(model.first_weight.dims), "w2": tuple(model.second_weight.dims),
        "a": tuple(model.layer.dims), "y": tuple(model.output.dims),
        "layer": [encode(s.with_batch({"W1": ("_b0",)}, ("_b0",))) for s in net.layer],
        "adjoint": [encode(s.with_batch(*adjoint_batch)) for s in net.adjoint],
        "activation": {"name": act.name, "masked": masked, "cone": act.cone,
                       "patterns": patterns if patterns == "exact" or patterns is None
                       else int(patterns),
                       "seed": int(model.activation.seed), "gates": model.activation.gates},
        "loss": (loss.name, {k: float(v) for k, v in loss.params}),
        "bias": model.bias.literal(),
        "beta": float(reg.beta), "C": reg.C, "R": reg.R, "enum_cap": int(enum_cap),
        "relu_bound": relu_bound, "sdp_budget": int(sdp_budget),
        "memory_budget": int(memory_budget),
    }


def _entries(module, table, used):
    """The names `module` binds to entries of a registry `table` other than `used`."""
    return {name for name, value in vars(module).items()
            if any(value is e for e in table.values()) and not any(value is u for u in used)}


def _check_pasteable(loss, C, R):
    """The model's loss and pair must be entries of the kernel modules the module pastes
    (an entry registered at run time from elsewhere has no source to paste)."""
    kernel = LOSS_KERNELS.get(loss.name)
    if kernel is None or vars(lossforms).get(kernel.__name__) is not kernel:
        raise SemanticError(f"loss '{loss.name}' has no stand-alone CVXPY form: it is not a "
                            "class of bmdsl/kernel/lossforms.py",
                            hint=f"emittable losses: {', '.join(sorted(LOSS_KERNELS))}")
    unknown = set(dict(loss.params)) - {p[0] for p in kernel.params}
    if unknown:
        raise SemanticError(f"loss '{loss.name}' parameters {sorted(unknown)} cannot be emitted")
    if not _entries(pairforms, {0: PAIR_TABLE[C, R]}, ()) or \
            not all(_entries(norms, {0: NORMS[n]}, ()) for n in (C, R)):
        raise SemanticError(f"norm pair ({C}, {R}) is not an entry of bmdsl/kernel/"
                            "pairforms.py (and norms.py): the stand-alone module has no "
                            "source for it")


def paster(spec) -> Paster:
    """The kernel and runtime files, with this SPEC's facts (FACTS), pruned to this
    model's loss class, norm pair and norms (the registries say which names hold them)."""
    files = [(f"kernel/{m}", (KERNEL / m).read_text()) for m in KERNEL_MODULES]
    files += [(f"cvx/{m}", (HERE / m).read_text()) for m in RUNTIME]
    values = {name: value(spec) for name, (value, _) in FACTS.items()}
    facts = {expr: values[name] for name, (_, exprs) in FACTS.items() for expr in exprs}
    facts.update({expr: value(spec) for value, exprs in ONE_WAY.values() for expr in exprs
                  if value(spec) is not None})
    rule = PAIR_TABLE[spec["C"], spec["R"]]
    exclude = ({k.__name__ for name, k in LOSS_KERNELS.items() if name != spec["loss"][0]}
               | _entries(pairforms, PAIR_TABLE, (rule, rule.form))
               | _entries(norms, NORMS, (NORMS[spec["C"]], NORMS[spec["R"]]))
               | other_pools(p["builder"] for p in spec["pools"]))
    # a tractable pair's form by the name of its kernel entry: the table is not pasted
    forms = _entries(pairforms, {0: rule.form}, ()) if rule.form is not None else ()
    names = {"PAIR_TABLE[spec['C'], spec['R']].form": _name(min(forms))} if forms else {}
    # `.value` in the runtime is cvxpy's (Problem.value), never a loss's or pair's numpy value
    return Paster(files, facts, values, ALLOWED_IMPORTS, exclude=exclude, members=True,
                  drop_members=("value",), docs=DOCS, nones=names)


def used_spec(spec, runtime) -> dict:
    """The SPEC without the entries the pasted runtime never reads (by their key string),
    at the top and in the RECORDS."""
    read = {n.value for n in ast.walk(ast.parse(runtime)) if isinstance(n, ast.Constant)
            and isinstance(n.value, str)}
    out = {k: v for k, v in spec.items() if k in read}
    for key in RECORDS:
        if isinstance(out.get(key), dict):
            out[key] = {k: v for k, v in out[key].items() if k in read}
    return out


def emit_cvxpy(derivation, **options) -> str:
    """Source of `<model>_cvxpy.py`: needs only numpy and cvxpy (see module docstring)."""
    from ..core.version import __version__
    spec = model_spec(derivation, **options)
    section = "\n".join(f"# {line}" for line in model_section(derivation))
    imports, runtime = paster(spec).source(ROOTS, extra_names=("sys",), gap=GAP)
    # a function's own `import cvxpy as cp` (kernel code also runs without cvxpy) repeats
    # the module's
    runtime = "\n".join(ln for ln in runtime.splitlines()
                        if not (ln[:1] == " " and ln.strip() in imports))
    spec_text = packed(used_spec(spec, runtime))
    model = _name(spec["model"])
    arrays = ", ".join(f"{_name(n)!r}: ..." for n, _ in spec["inputs"] + [spec["target"]])
    act = spec["activation"]
    exact = ONE_WAY["exact"][0](spec)
    masks = "\nPATTERNS.npz: the masks saved by `bmdsl solve`, required (exact enumeration)." \
        if act["masked"] and act["patterns"] == "exact" and not act["gates"] else ""
    side = "" if exact else "  # a bracket: side='lower' or 'upper'"
    header = f'''"""Model {model}'s convex program (bmdsl {__version__}), stand-alone (numpy, cvxpy): the
same program and patterns as `bmdsl solve` on the same data; the model as derived below.{masks}

    python {model}_cvxpy.py DATA.npz [PATTERNS.npz] [--solver NAME] [--memory GIB]
    problem, Z = build_problem({{{arrays}}}){side}
"""
{_imports(imports)}

{section}
SPEC = {spec_text}
'''
    sep = "\n" * (GAP + 1)
    footer = f'''{sep}def build_problem(arrays, masks=None, side=None):
    """(cvxpy.Problem, [Z_k]) for `arrays` by tensor name; masks [P, *A] optional."""
    return problem_from_spec(SPEC, arrays, masks, side)
{sep[1:]}if __name__ == "__main__":
    sys.exit(main(SPEC))
'''
    text = header + sep[1:] + runtime + footer
    compile(text, f"{model}_cvxpy.py", "exec")  # a syntax error here is a bmdsl bug
    return text
