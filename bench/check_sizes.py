"""Other sizes: memory estimates against peak RSS, the budget's refusal, time to a certificate.

    python bench/check_sizes.py memory  [--limit 40]     # estimate / measured, every cell
    python bench/check_sizes.py refusal                  # a small BMDSL_MEMORY_BUDGET
    python bench/check_sizes.py time    [--ns 2000,5000,12000] [--limit 300] [--other DIR]
    python bench/check_sizes.py reestimate [--other DIR]   # the memory rows' estimates again

Each part writes its key of bench/results/check_sizes_s11.json (--out), the machine and its
load beside it. Every run is a fresh process (its peak RSS its own, bench/child.py).

* memory: synthetic data at odd sizes (d = 7, c = 5; 7 x 9 images; s = 5 tokens) and
  n in {300, 3000, 30000}, each shipped model x {gated_relu, relu} x {squared, logistic or
  cross_entropy, huber}; the child binds, asks the estimators what bmdsl checks against
  the budget (bmdsl.trainer.trainer.estimate, warmfootprint.gram when the Gram is used, the warm
  start's that ran; cvxfootprint.cvxpy_for for CVXPY at n = 300), trains to a certified
  1e-4 or the limit, and reports peak RSS (VmHWM, reset after a tiny fit in the same
  process, so lazily imported modules are not counted as the model's) minus the RSS
  before binding.
* refusal: `bmdsl train` / `solve` / `run` with BMDSL_MEMORY_BUDGET below the estimate.
* time: the built-in spiral (MLP) and images (CNN) at n = 5000, 12000 (and 2000 beside
  them), squared and logistic: seconds to a certified 1e-4, as bench/bench_grid.py.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.child import PREAMBLE, run_code  # noqa: E402
from bench.machine import describe  # noqa: E402

OUT = ROOT / "bench/results/check_sizes_s11.json"
# model -> (P, m): patterns 8..64 and units 2..12, none of the benchmarks' values
SIZES = {"mlp": (24, 3), "cnn": (12, 6), "selfattention": (8, 2), "relu": (40, 2)}
LOSSES = {"mlp": ("squared", "cross_entropy", "huber"), "cnn": ("squared", "logistic", "huber"),
          "selfattention": ("squared", "logistic", "huber"), "relu": ("squared", "logistic",
                                                                     "huber")}


def synthetic(model: str, loss: str, n: int, seed: int = 0) -> dict:
    """Odd-sized data: X [n, 7] (mlp, relu), I [n, 1, 7, 9] (cnn), X [n, 5, 3] (attention);
    targets from a random teacher: one-hot of 5 classes (c = 1 +-1 for logistic and for
    relu.bm), 2 outputs per token for attention."""
    import numpy as np
    rng = np.random.default_rng(seed)
    if model == "cnn":
        X = rng.standard_normal((n, 1, 7, 9))
        feats = X.reshape(n, -1)
    elif model == "selfattention":
        X = rng.standard_normal((n, 5, 3))
        feats = X
    else:
        X = rng.standard_normal((n, 7))
        feats = X
    score = np.tanh(feats @ rng.standard_normal((feats.shape[-1], 5)))
    if loss == "logistic" or model == "relu":
        Y = np.where(score[..., :1] > 0, 1.0, -1.0)
        Y = Y[:, 0] if model == "relu" else Y
    elif model == "selfattention":
        Y = score[..., :2]
    else:
        Y = np.eye(5)[np.argmax(score, axis=-1)]
    return {"I" if model == "cnn" else "X": X, "Y": Y}


def model_text(model: str, loss: str, act: str, P: int, m: int) -> str:
    import re
    text = (ROOT / "models" / f"{model}.bm").read_text()
    text = re.sub(r"^loss\s+\w+.*$", f"loss {loss}", text, flags=re.M)
    text = re.sub(r"^units\s+m\s*=\s*\d+", f"units m = {m}", text, flags=re.M)
    return re.sub(r"^activation\s+\w+\(patterns = \d+",
                  f"activation {act}(patterns = {P}", text, flags=re.M)


MEMORY_CHILD = PREAMBLE + r'''
import bmdsl
from bench.check_sizes import synthetic, model_text
from bmdsl.core import warmfootprint, cvxfootprint
from bmdsl.trainer import Trainer
from bmdsl.trainer.trainer import estimate
cell = json.loads({cell!r})
def rss():
    with open("/proc/self/status") as f:
        return {{k: int(v.split()[0]) * 1024 for k, v in (l.split(":", 1) for l in f)
                 if k in ("VmRSS", "VmHWM")}}
text = model_text(cell["model"], cell["loss"], cell["act"], cell["P"], cell["m"])
model = bmdsl.parse(text).derive()
tiny = model.bind(synthetic(cell["model"], cell["loss"], 40))   # lazy imports, not counted
if cell["who"] == "cvxpy":
    tiny.to_cvxpy().solve()
else:   # the warm start and each BM method's first steps (torch.optim imports dynamo)
    Trainer(tiny, device="cpu", progress=False).fit(cert_tol=1e-4, time_limit=5)
    for name in ("lbfgs", "newton", "adam"):
        try:
            Trainer(tiny, device="cpu", progress=False, method=name).fit(max_steps=3)
        except bmdsl.core.errors.BmdslError:
            pass   # a method that refuses this model
data = synthetic(cell["model"], cell["loss"], cell["n"])
with open("/proc/self/clear_refs", "w") as f:   # VmHWM back to VmRSS: the warm-up's peak
    f.write("5")                                 # is not the model's (Linux >= 4.0)
base = rss()["VmRSS"]
bound = model.bind(data)
out = {{"P": bound.P, "p": bound.p, "q": bound.q, "ny": int(bound.Y.size), "base": base}}
start = time.perf_counter()
if cell["who"] == "cvxpy":
    est = cvxfootprint.cvxpy_for(bound)
    out["estimates"] = {{"cvxpy": est.nbytes}}
    sol = bound.to_cvxpy().solve()
    out.update(status=str(sol.status), value=sol.value)
else:
    trainer = Trainer(bound, device="cpu", progress=False)
    pb = trainer.problem
    est = {{"trainer": estimate(bound, trainer.m).nbytes}}
    if pb.gram is not None:
        est["gram"] = warmfootprint.gram(pb.P, pb.p, pb.q, pb.Y.numel(), pb.free_outputs).nbytes
    if trainer.warm is not None:
        name = type(trainer.warm).__name__
        est["warm " + name] = warmfootprint.warm_start(name, pb).nbytes
    out["estimates"] = est
    out["after_setup"] = rss()["VmHWM"] - base
    r = trainer.fit(cert_tol=1e-4, time_limit=cell["limit"])
    out.update(gap_bound=r.certificate.gap_bound, certified=bool(r.cert_tol_reached),
               warm_start=(r.warm_start or {{}}).get("method"), method=r.method)
out["seconds"] = time.perf_counter() - start
out["peak"] = rss()["VmHWM"]
out["added"] = out["peak"] - base
out["estimate_total"] = sum(out["estimates"].values())
out["ratio_total"] = out["estimate_total"] / out["added"]
out["ratio_largest"] = max(out["estimates"].values()) / out["added"]
print("RESULT " + json.dumps(out))
'''


def memory_cells(models=tuple(SIZES), ns=(300, 3000, 30000)):
    for model in models:
        P, m = SIZES[model]
        for act in (("relu",) if model == "relu" else ("gated_relu", "relu")):
            for loss in LOSSES[model]:
                for n in ns:
                    if loss != "squared" and n != 3000:
                        continue   # the losses at one size, the sizes with one loss
                    if act == "relu" and model != "relu" and n > 3000:
                        continue   # q > 1: the certificate's cone NNLS alone took > 240 s
                    yield dict(model=model, act=act, loss=loss, n=n, P=P, m=m, who="trainer")
            if 300 in ns and (model != "relu" or act == "relu"):   # CVXPY at n = 300
                yield dict(model=model, act=act, loss="squared", n=300, P=P, m=m, who="cvxpy")


def part_memory(args) -> list:
    rows = []
    for cell in memory_cells(args.models.split(","), [int(n) for n in args.mem_ns.split(",")]):
        if args.only and args.only not in json.dumps(cell):
            continue
        code = MEMORY_CHILD.format(root=str(ROOT), cell=json.dumps(dict(cell, limit=args.limit)))
        row = dict(cell, load_before=list(os.getloadavg()),
                   **run_code(code, args.limit + 240, ROOT))
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


ESTIMATE_CHILD = PREAMBLE + r'''
import bmdsl
from bmdsl.core import footprint, cvxfootprint
import runpy    # this file's data and model text, whichever checkout's bmdsl estimates
ns = runpy.run_path({here!r} + "/bench/check_sizes.py")
synthetic, model_text = ns["synthetic"], ns["model_text"]
out = []
for cell in json.loads({cells!r}):
    text = model_text(cell["model"], cell["loss"], cell["act"], cell["P"], cell["m"])
    bound = bmdsl.parse(text).derive().bind(synthetic(cell["model"], cell["loss"], cell["n"]))
    if cell["who"] == "cvxpy":
        out.append(cvxfootprint.cvxpy_for(bound).nbytes)
        continue
    try:
        from bmdsl.trainer.trainer import estimate        # this branch's
        nbytes = estimate(bound, bound.m).nbytes
    except ImportError:                                   # main's
        nbytes = footprint.trainer_for(bound, bound.m, 8).nbytes
    out.append(nbytes + sum(v for k, v in cell["estimates"].items() if k != "trainer"))
print("RESULT " + json.dumps(out))
'''


def part_reestimate(args) -> list:
    """The memory rows of --out again, estimated by this checkout's code and (--other) by
    another's, at the same sizes (estimates only: binding, no training); the Gram's and
    the warm start's estimates as recorded (the same code in both)."""
    results = json.loads(Path(args.out).read_text())
    rows = [r for key in results if key.startswith("memory") for r in results[key]["rows"]
            if "estimates" in r]
    for name, root in (("estimate_now", ROOT), ("estimate_other", args.other)):
        if root:
            code = ESTIMATE_CHILD.format(root=str(Path(root).resolve()), here=str(ROOT),
                                         cells=json.dumps(rows))
            for row, nbytes in zip(rows, run_code(code, 1800, Path(root).resolve())):
                row[name] = nbytes
                row[name.replace("estimate", "ratio")] = nbytes / row["added"]
    return rows


def bmdsl_cli(argv, env_budget, limit=600):
    """`bmdsl argv` with BMDSL_MEMORY_BUDGET: exit code, stderr's last lines, seconds, the
    child's peak RSS (from its own rusage)."""
    env = dict(os.environ, BMDSL_MEMORY_BUDGET=env_budget, OMP_NUM_THREADS="1")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "bmdsl", *argv], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=limit)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"argv": argv, "budget": env_budget, "exit": proc.returncode,
            "seconds": time.perf_counter() - start, "stdout": proc.stdout[-1500:],
            "stderr": proc.stderr[-1500:],
            "child_peak_mb_at_most": max(before.ru_maxrss, after.ru_maxrss) / 1024}


def part_refusal(args) -> list:
    import numpy as np
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mlp30000.npz"
        np.savez(path, **synthetic("mlp", "squared", 30000))
        for sub, budget in (("train", "20M"), ("solve", "200M"), ("run", "200M")):
            argv = [sub, "models/mlp.bm", "--data", str(path), "--quiet"]
            if sub != "solve":
                argv += ["--output" if sub == "train" else "--output", str(Path(tmp) / sub)]
            row = bmdsl_cli(argv, budget)
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


TIME_CHILD = PREAMBLE + r'''
import os
from bench.bench_grid import bound_for, units
from bmdsl.trainer import Trainer
cell = json.loads({cell!r})
start = time.perf_counter()
bound = bound_for(cell["arch"], cell["loss"], "gated_relu", "l2", "l2", cell["n"])
bind = time.perf_counter() - start
r = Trainer(bound, device="cpu", progress=False, m=units(bound, "l2")).fit(
    cert_tol=1e-4, time_limit=cell["limit"])
ws = r.warm_start or {{}}
print("RESULT " + json.dumps(dict(
    seconds=time.perf_counter() - start, bind_seconds=bind, gap_bound=r.certificate.gap_bound,
    certified=bool(r.cert_tol_reached), steps=r.steps, method=r.method,
    warm_start=ws.get("method"), warm_iterations=ws.get("iterations"),
    warm_seconds=ws.get("seconds"), P=bound.P, load_after=list(os.getloadavg()),
    peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
'''


def part_time(args) -> list:
    """Each cell in this checkout, then (--other DIR) in another right after it."""
    rows = []
    roots = [ROOT] + ([Path(args.other).resolve()] if args.other else [])
    for arch in args.archs.split(","):
        for loss in args.losses.split(","):
            for n in (int(x) for x in args.ns.split(",")):
                for root in roots:
                    cell = dict(arch=arch, loss=loss, n=n, limit=args.limit)
                    code = TIME_CHILD.format(root=str(root), cell=json.dumps(cell))
                    row = dict(cell, root=str(root), load_before=list(os.getloadavg()),
                               **run_code(code, args.limit + 300, root))
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("part", choices=("memory", "refusal", "time", "reestimate"))
    ap.add_argument("--limit", type=float, default=40.0, help="seconds per fit")
    ap.add_argument("--only", help="memory: cells whose JSON contains this text")
    ap.add_argument("--models", default=",".join(SIZES), help="memory: these models")
    ap.add_argument("--mem-ns", default="300,3000,30000", help="memory: the sizes")
    ap.add_argument("--ns", default="2000,5000,12000")
    ap.add_argument("--archs", default="mlp,cnn")
    ap.add_argument("--losses", default="squared,logistic")
    ap.add_argument("--other", help="time: another checkout (e.g. main) run beside each cell")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--key", help="the results' key (default: the part)")
    args = ap.parse_args()
    started = list(os.getloadavg())
    rows = {"memory": part_memory, "refusal": part_refusal, "time": part_time,
            "reestimate": part_reestimate}[args.part](args)
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    results[args.key or args.part] = {"machine": describe(), "load_at_start": started,
                          "command": " ".join(sys.argv), "rows": rows}
    out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
