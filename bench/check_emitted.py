"""The emitted modules (`bmdsl compile`) against bmdsl, across the grid, on fresh data.

Every shipped model x activation x loss the model accepts x tractable norm pair (all
asked of the registries): the modules run as a user runs them (bench/emitted_worker.py:
`python -I`, bmdsl unimportable) on random data no test uses (seeds 201..203, n = 37, 17,
13), against bmdsl on the same data, patterns and seed: the CVXPY module's optimum or
bracket with `bound.to_cvxpy().solve()`; the torch module (`--methods auto` and `all`, for
one pair per model, activation and loss, turning through the pairs: emitting one takes
~3 s) after AUTO_STEPS with Trainer's `auto` (the `auto` module, which has no newton,
with the method it takes), and after STEPS of each method it carries with
Trainer(method=NAME, warm_start=False); its `predict` with `bmdsl.predict`, for its own
weights and bmdsl's. An objective below bmdsl's (and above p*) is a note, not a finding.

    PYTHONPATH=. .venv/bin/python bench/check_emitted.py [--models mlp,cnn] [--only RE]
        [--torch-pairs rotate|all] [--out FILE] [--merge PART.json ... --out FILE]

Prints each finding and writes bench/results/check_emitted_s11.json. A script, not a test.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bmdsl  # noqa: E402
from bench.emitted_worker import Worker, imports_bmdsl, value  # noqa: E402
from bench.machine import describe  # noqa: E402
from bmdsl.atoms.activations import ACTIVATIONS  # noqa: E402
from bmdsl.atoms.losses import LOSSES, get_loss  # noqa: E402
from bmdsl.atoms.norms import NORMS  # noqa: E402
from bmdsl.atoms.pairs import NormPair  # noqa: E402
from bmdsl.core.errors import BmdslError  # noqa: E402
from bmdsl.cvx import emit_cvxpy  # noqa: E402
from bmdsl.trainer import Trainer, emit_torch  # noqa: E402
from bmdsl.trainer.errors import TrainerError  # noqa: E402
from bmdsl.trainer.runtime.policy import AUTO  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SEEDS = (201, 202, 203)
PATTERNS, STEPS = 5, 6       # sampled patterns per model; steps of each named method
AUTO_STEPS = 100             # BM steps after the warm start, module and Trainer alike
# non-round sizes of the data each shipped model declares (by its input's rank)
SIZES = {2: dict(n=37, d=3), 4: dict(n=17, ch=1, h=5, w=5), 3: dict(n=13, s=3, d=3)}
OUTPUTS = 3


def fresh_data(model, loss, seed):
    """Random inputs of the declared ranks (and 6 fewer new ones) and the first target,
    Gaussian, +-1 or one-hot, that the loss's registry entry accepts (None: none does)."""
    rng = np.random.default_rng(seed)
    (x,), target = model.inputs, model.target
    shape = tuple(SIZES[len(x.dims)].values())
    data, new = {x.name: rng.standard_normal(shape)}, {x.name: rng.standard_normal(
        (shape[0] - 6,) + shape[1:])}
    yshape = shape[:len(target.dims) - 1] + (OUTPUTS,) if len(target.dims) > 1 else shape[:1]
    check = get_loss(loss).target_check
    targets = [rng.standard_normal(yshape), np.where(rng.random(yshape) < 0.5, -1.0, 1.0)]
    if len(yshape) > 1:           # one-hot rows along the class axis
        targets.append(np.eye(OUTPUTS)[rng.integers(0, OUTPUTS, yshape[:-1])])
    for Y in targets:
        if not check(Y):
            return dict(data, **{target.name: Y}), new
    return None, new


def variant(name, activation, loss, pair):
    """The shipped model with this activation (its API), loss and norm pair (its text)."""
    text = (ROOT / "models" / f"{name}.bm").read_text()
    beta = re.search(r"regularize\s+beta = ([0-9.e+-]+)", text).group(1)
    text = re.sub(r"regularize .*", f"regularize beta = {beta}, C = {pair[0]}, R = {pair[1]}",
                  text)
    model = bmdsl.parse(text).with_loss(loss)
    return model.with_activation(activation, *(() if activation == "linear" else (PATTERNS, 0)))


def bmdsl_side(model, data, methods, tmp, auto_carries=()):
    """p* (or its bracket), Trainer's auto and named methods, weights files."""
    bound = model.derive().bind(data)
    sol = bound.to_cvxpy().solve()
    exact = sol.exactness == "exact"
    out = {"P": bound.P, "p_star": sol.value, "lower": None if exact else sol.lower,
           "upper": None if exact else sol.upper}
    if methods is None:
        return bound, out
    t = Trainer(bound, device="cpu", progress=False)
    r = t.fit(max_steps=AUTO_STEPS)
    out.update(auto=r.objective, auto_method=t.method_name, gap_bound=r.certificate.gap_bound)
    # the `auto` module carries fewer methods (no newton): bmdsl with the method it takes,
    # from the warm start where one applies, as the module
    for name in [a for a in AUTO if a in auto_carries and t.method_name not in auto_carries]:
        try:
            try:
                same = Trainer(bound, device="cpu", progress=False, method=name, warm_start=True)
            except TrainerError:             # no warm start applies here
                same = Trainer(bound, device="cpu", progress=False, method=name,
                               warm_start=False)
            out.update(auto_module=same.fit(max_steps=AUTO_STEPS).objective,
                       auto_module_method=name)
            break
        except TrainerError:
            continue
    np.savez(Path(tmp) / "bmdsl_w.npz", U=r.U, V=r.V, activation=model.activation.name,
             **(bound.patterns.to_npz_dict() if bound.patterns is not None else {}))
    for name in methods:
        try:
            t = Trainer(bound, device="cpu", progress=False, method=name, warm_start=False)
            out[f"method_{name}"] = t.fit(max_steps=STEPS, tol=1e-12, certificate_every=0,
                                          certify=False).objective
        except BmdslError as exc:
            out[f"method_{name}"] = f"refused: {exc.message}"
    return bound, out


def cells(models, torch_pairs):
    """(model, activation, loss, pair, seed, torch choices) over the grid; the pairs are
    the registry's tractable ones. `rotate`: the torch modules for one pair per model,
    activation and loss, the pair turning so that each meets every loss and activation."""
    pairs = [(c, r) for c in NORMS for r in NORMS if NormPair(c, r).tractable]
    k = 0
    for mi, name in enumerate(models):
        for ai, act in enumerate(ACTIVATIONS):
            for li, loss in enumerate(LOSSES):
                turn = pairs[(mi + ai * len(LOSSES) + li) % len(pairs)]
                for pair in pairs:
                    k += 1
                    yield (name, act, loss, pair, SEEDS[k % 3], ("auto", "all")
                           if torch_pairs == "all" or pair == turn else ())


def prepare(cell, tmp):
    """The cell's files, the bmdsl side and the jobs of the emitted modules (phase 1)."""
    name, act, loss, pair, seed, choices = cell
    row = dict(model=name, activation=act, loss=loss, C=pair[0], R=pair[1], seed=seed)
    try:
        model = variant(name, act, loss, pair)
        data, new = fresh_data(model, loss, seed)
        if data is None:
            raise BmdslError(f"no generated target suits loss {loss!r}")
        derivation = model.derive()
        derivation.bind(data)
    except BmdslError as exc:            # a loss the model does not accept: not a cell
        return dict(row, skipped=exc.message), []
    from bmdsl.trainer.emitmethods import select
    from bmdsl.trainer.spec import build_spec
    d = Path(tmp) / f"{name}_{act}_{loss}_{pair[0]}_{pair[1]}"
    d.mkdir()
    np.savez(d / "data.npz", **data)
    np.savez(d / "new.npz", **new)
    sources = {"cvxpy": emit_cvxpy(derivation)}
    if choices:
        spec = build_spec(derivation)
        carried = {c: select(spec, c).methods for c in choices}
        sources.update({f"torch_{c}": emit_torch(derivation, c) for c in carried})
    row["lines"] = {k: len(s.splitlines()) for k, s in sources.items()}
    row["imports_bmdsl"] = [k for k, s in sources.items() if imports_bmdsl(s)]
    jobs = []
    for key, src in sources.items():
        (d / f"{key}.py").write_text(src)
        job = lambda tag, *argv: jobs.append(dict(  # noqa: E731
            id=f"{d.name}/{tag}", path=str(d / f"{key}.py"), cwd=str(d), argv=list(argv)))
        if key == "cvxpy":
            job("cvxpy", "data.npz")
            continue
        choice = key.split("_")[1]
        job(f"{key}/auto", "data.npz", "--device", "cpu", "--output", f"w_{choice}.npz",
            "--steps", str(AUTO_STEPS))
        for method in carried[choice]:
            job(f"{key}/{method}", "data.npz", "--device", "cpu", "--method", method,
                "--steps", str(STEPS))
    methods = sorted(set(sum(carried.values(), ()))) if choices else None
    start = time.perf_counter()
    try:
        bound, row["bmdsl"] = bmdsl_side(model, data, methods, d, carried.get("auto", ()) if
                                         choices else ())
    except BmdslError as exc:           # bmdsl's own solve failed: no reference, said
        return dict(row, skipped=f"bmdsl: {exc.message}"), []
    row["bmdsl"]["seconds"] = time.perf_counter() - start
    row["dir"], row["_model"] = str(d), model
    return row, jobs


def predict_jobs(row):
    """Phase 2: the torch module's predict on its own weights and on bmdsl's."""
    d, jobs = Path(row["dir"]), []
    for key in [k for k in row["lines"] if k.startswith("torch")]:
        for w in (f"w_{key.split('_')[1]}.npz", "bmdsl_w.npz"):
            if (d / w).exists():
                jobs.append(dict(id=f"{d.name}/{key}/predict/{w}", path=str(d / f"{key}.py"),
                                 cwd=str(d), argv=["predict", w, "new.npz", "--output",
                                                   f"pred_{key}_{w}"]))
    return jobs


def rel(a, b):
    return abs(a - b) / max(1.0, abs(b))


def compare(row, results):
    """The row's findings: each a string naming what differs (empty: all agree)."""
    d, b, bad = Path(row["dir"]), row["bmdsl"], []
    for job_id, r in results.items():
        if not job_id.startswith(d.name + "/"):
            continue
        tag = job_id[len(d.name) + 1:]
        row.setdefault("runs", {})[tag] = {"code": r["code"], "stdout": r["stdout"][-400:]}
        if r["code"] != 0:
            bad.append(f"{tag}: exit {r['code']}: {r['stderr'].strip()[-600:]}")
            continue
        out = r["stdout"]
        if tag == "cvxpy":
            if value(out, r"model \w+") != b["P"]:
                bad.append(f"cvxpy: {out.split(chr(10))[0]} but bmdsl has {b['P']} patterns")
            for key, label in (("p_star", "optimal value"), ("lower", "lower bound"),
                               ("upper", "upper bound")):
                got = value(out, label)
                if (got is None) != (b[key] is None) or (got is not None and
                                                         rel(got, b[key]) > 1e-6):
                    bad.append(f"cvxpy: {label} {got} against bmdsl's {b[key]}")
        elif tag.endswith("/auto"):
            got = value(out, "objective")
            row["runs"][tag]["objective"] = got
            ref = dict(b, auto=b["auto_module"], auto_method=b["auto_module_method"]) \
                if tag.startswith("torch_auto") and "auto_module" in b else b   # its method
            floor = b["p_star"] if b["p_star"] is not None else b["lower"]
            if rel(got, ref["auto"]) > 1e-6 and got < ref["auto"] and \
                    (floor is None or got >= floor - 1e-6 * max(1.0, abs(floor))):
                row.setdefault("notes", []).append(   # a better optimum than bmdsl's
                    f"{tag}: objective {got!r}, bmdsl's {ref['auto']!r} ({ref['auto_method']})")
            elif rel(got, ref["auto"]) > 1e-6:
                bad.append(f"{tag}: objective {got!r} against bmdsl's {ref['auto']!r} "
                           f"({ref['auto_method']}, gap bound {ref['gap_bound']:.2g}; p* "
                           f"{b['p_star']}, [{b['lower']}, {b['upper']}])")
        elif "/predict/" in tag:
            key, w = tag.split("/predict/")
            with np.load(d / f"pred_{key}_{w}") as f:
                got = next(iter(f.values()))
            want = bmdsl.predict(row["_model"], d / w, dict(np.load(d / "new.npz")))
            if got.shape != want.shape or not np.allclose(got, want, rtol=1e-9, atol=1e-12):
                bad.append(f"{tag}: predictions differ from bmdsl.predict by "
                           f"{np.max(np.abs(got - want)) if got.shape == want.shape else got.shape}")
        else:
            got, want = value(out, "objective"), b[f"method_{tag.split('/')[1]}"]
            if isinstance(want, str) or rel(got, want) > 1e-8:
                bad.append(f"{tag}: objective {got!r} after {STEPS} steps, bmdsl's {want!r}")
    if row["imports_bmdsl"]:
        bad.append(f"imports bmdsl: {row['imports_bmdsl']}")
    return bad


def same_modules(a, b, activation):
    """Whether shipped models a and b emit the same modules (e.g. the built-in architecture)."""
    a, b = (bmdsl.load(ROOT / "models" / f"{n}.bm").with_activation(activation).derive()
            for n in (a, b))
    return emit_cvxpy(a) == emit_cvxpy(b) and emit_torch(a) == emit_torch(b)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mlp,cnn,relu,selfattention")
    parser.add_argument("--same", default="mlp_builtin:mlp", help="A:B, comma-separated: "
                        "model A is checked to emit B's modules (for every activation)")
    parser.add_argument("--torch-pairs", choices=("rotate", "all"), default="rotate")
    parser.add_argument("--only", default="", help="a regex the cell's 'model activation "
                        "loss C R' must match (to rerun a few)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" /
                                               "check_emitted_s11.json"))
    parser.add_argument("--merge", nargs="+", help="merge these results files into --out")
    args = parser.parse_args(argv)
    if args.merge:
        return merge(args.out, args.merge)
    start, rows = time.perf_counter(), []
    with tempfile.TemporaryDirectory() as tmp:
        worker = Worker(tmp)
        for cell in cells(args.models.split(","), args.torch_pairs):
            if not re.search(args.only, " ".join(map(str, cell[:3] + cell[3]))):
                continue
            row, jobs = prepare(cell, tmp)
            rows.append(row)
            if "skipped" in row:
                continue
            results = worker.run(jobs)
            results.update(worker.run(predict_jobs(row)))
            row["findings"] = compare(row, results)
            print(f"{len(rows)} cells, {time.perf_counter() - start:.0f} s", file=sys.stderr,
                  flush=True)
            for f in row["findings"] + [f"note: {n}" for n in row.get("notes", ())]:
                print(f"{row['model']} {row['activation']} {row['loss']} ({row['C']}, "
                      f"{row['R']}) seed {row['seed']}: {f}", flush=True)
            del row["_model"], row["dir"]
        if worker.p is not None:
            worker.p.stdin.close()
            worker.p.wait()
    same = {pair: all(same_modules(*pair.split(":"), act) for act in ACTIVATIONS)
            for pair in filter(None, args.same.split(","))}
    write(args.out, rows, same, time.perf_counter() - start)


def write(out, rows, same, seconds):
    """The rows and their summary as JSON (also what --merge writes)."""
    ran = [r for r in rows if "skipped" not in r]
    summary = dict(same_modules=same, cells=len(ran), skipped=len(rows) - len(ran),
                   modules=sum(len(r["lines"]) for r in ran),
                   runs=sum(len(r["runs"]) for r in ran),
                   cells_with_findings=sum(bool(r["findings"]) for r in ran),
                   cells_with_notes=sum(bool(r.get("notes")) for r in ran),
                   seconds=seconds, load=os.getloadavg())
    print(json.dumps(summary))
    Path(out).write_text(json.dumps(dict(machine=describe(), summary=summary, rows=rows),
                                    indent=1, default=str))
    print(f"wrote {out}")


def merge(out, parts):
    """One results file from runs of parts of the grid (e.g. two processes, --models)."""
    loaded = [json.loads(Path(p).read_text()) for p in parts]
    rows = [r for d in loaded for r in d["rows"]]
    same = {k: v for d in loaded for k, v in d["summary"]["same_modules"].items()}
    write(out, rows, same, max(d["summary"]["seconds"] for d in loaded))


if __name__ == "__main__":
    main()
