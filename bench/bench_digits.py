"""Real data: the digits CNN with the default trainer (issue 13: gated ReLU, cross-entropy and
squared, certified to 1e-4 within 2 minutes and 4 GB peak).

    python bench/bench_digits.py [--losses squared cross_entropy] [--time-limit 300]
                                 [--m 9] [--other /tmp/copy-of-main]

scikit-learn's `load_digits` (n = 1797 real 8 x 8 images scaled to [0, 1], 10 classes,
one-hot targets), the CNN of models/cnn.bm (3x3 patches, padding 1, 2x2 average pooling:
p = 9, q = 160, |y| = 17970), gated ReLU with P = 16 patterns (seed 0), beta = 1e-2,
C = R = l2: the program of bench/bench_cvx_memory.py. The fit is the one `bmdsl train`
runs: `Trainer(bound).fit(cert_tol=..., time_limit=...)` with every other option at its
default (method and warm start chosen by `auto`). Each loss runs in a fresh process, so its
peak RSS (getrusage ru_maxrss) is its own. Recorded: time to the certificate (or the gap
bound reached at the time limit), the method and warm start chosen, the warm start's
iterations and seconds, BM steps, the certificates (step, gap bound) and peak memory.
`seconds` is bind (patches, patterns) + trainer construction + fit, after the imports.

Writes bench/results/digits.json with the machine and its load average before and after.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import describe  # noqa: E402

CHILD = r'''
import json, resource, sys, time
start = time.perf_counter()
sys.path.insert(0, {root!r})
import sklearn.datasets, torch
import bmdsl
from bmdsl.trainer import Trainer
from bench.bench_digits import bound_for
args = json.loads({args!r})
imported = time.perf_counter()
bound = bound_for(args["loss"], args["patterns"])
bind = time.perf_counter() - imported
t = time.perf_counter()
trainer = Trainer(bound, device="cpu", progress=False, m=args["m"] or None)
setup = time.perf_counter() - t
t = time.perf_counter()
r = trainer.fit(cert_tol=args["cert_tol"], time_limit=args["time_limit"])
fit = time.perf_counter() - t
ws = r.warm_start or {{}}
cert = r.certificate
out = {{"loss": args["loss"], "P": bound.P, "p": bound.p, "q": bound.q,
       "ny": int(bound.Y.size), "bind_seconds": bind, "trainer_seconds": setup,
       "fit_seconds": fit, "seconds": time.perf_counter() - imported,
       "objective": r.objective, "gap_bound": None if cert is None else cert.gap_bound,
       "certified": bool(r.cert_tol_reached), "stopped": r.stopped, "steps": r.steps,
       "method": r.method, "m": trainer.m, "warm_start": ws.get("method"),
       "warm_iterations": ws.get("iterations"), "warm_seconds": ws.get("seconds"),
       "warm_restarts": ws.get("restarts"), "warm_objective": ws.get("objective"),
       "factored_evaluations": ws.get("factored_evaluations"),
       "bmdsl": bmdsl.__file__, "torch_threads": torch.get_num_threads(),
       "certificates": [list(c) for c in r.certificates],
       "warm_history": [list(h) for h in ws.get("history") or []]}}
out["process_seconds"] = time.perf_counter() - start
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("RESULT " + json.dumps(out))
'''


def bound_for(loss: str, patterns: int):
    """models/cnn.bm with `loss` and gated ReLU (P patterns, seed 0), bound to the digits."""
    import bmdsl
    from bench.bench_cvx_memory import digits_data
    text = (ROOT / "models" / "cnn.bm").read_text().replace("loss       squared",
                                                             f"loss       {loss}")
    model = bmdsl.parse(text).with_activation("gated_relu", patterns, 0)
    return model.derive().bind(digits_data(1797, loss))


def run_child(args: dict, limit: float, root: Path = ROOT) -> dict:
    """One fit in a fresh process, importing bmdsl from `root` (this checkout, or another
    one's code for a side-by-side run)."""
    code = CHILD.format(root=str(root), args=json.dumps(args))
    start = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=limit, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"loss": args["loss"], "skipped": f"killed at the {limit:g} s limit",
                "seconds": time.perf_counter() - start}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"loss": args["loss"],
            "skipped": "failed: " + (proc.stderr.strip().splitlines() or ["?"])[-1]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--losses", nargs="+", default=["squared", "cross_entropy"])
    ap.add_argument("--patterns", type=int, default=16)
    ap.add_argument("--cert-tol", type=float, default=1e-4)
    ap.add_argument("--time-limit", type=float, default=300.0)
    ap.add_argument("--m", type=int, default=0, help="units per pattern (0: the model's, 4; "
                    "the (l2, l2) solution has rank up to min(p, q) = 9 per pattern)")
    ap.add_argument("--out", default=str(ROOT / "bench/results/digits.json"))
    ap.add_argument("--other", default=None, help="another checkout (e.g. a copy of main): "
                    "each loss runs on this code, then on that one, in the same run")
    args = ap.parse_args()
    rows = []
    codes = [ROOT] + ([Path(args.other).resolve()] if args.other else [])
    for loss in args.losses:
        for root in codes:
            before = os.getloadavg()
            row = run_child({"loss": loss, "patterns": args.patterns, "cert_tol": args.cert_tol,
                             "time_limit": args.time_limit, "m": args.m},
                            args.time_limit + 300, root)
            row.update(load_before=before, load_after=os.getloadavg(), code=str(root))
            rows.append(row)
            brief = {k: v for k, v in row.items() if k not in ("certificates", "warm_history")}
            print(json.dumps(brief), flush=True)
            out = {"machine": describe(), "command": " ".join(sys.argv), "rows": rows}
            Path(args.out).write_text(json.dumps(out, indent=1))   # after each: may stop
    for r in rows:
        if "fit_seconds" in r:
            print(f"{r['code']}: {r['loss']:>13}: {r['seconds']:.1f} s, gap bound {r['gap_bound']:.1e} "
                  f"({'certified' if r['certified'] else r['stopped']}), {r['method']} after "
                  f"{r['warm_start']} ({r['warm_iterations']} it), "
                  f"{len(r['certificates'])} certificates, {r['peak_rss_mb']:.0f} MB, "
                  f"load {r['load_before'][0]:.1f} -> {r['load_after'][0]:.1f}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
