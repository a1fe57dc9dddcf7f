"""Does the stand-alone trainer's `auto` need Newton? (docs/architecture.md, "Emitted modules")

For each shipped model on its default data (`bmdsl run`'s, bmdsl.bind.defaults), the
emitted torch module is run twice, side by side: compiled with `--methods auto` (the
lifted warm start polished by lbfgs) and with `--methods all` (whose `auto` is bmdsl's
order: newton first). Both are compared with bmdsl's own trainer (Trainer.fit, which
certifies the warm start and stops at the certificate): the objective, the BM steps after
the warm start, the wall time and the module's size in lines.

    PYTHONPATH=. .venv/bin/python bench/bench_emitted_auto.py [--models cnn,selfattention,mlp]
        [--choices auto,all] [--baseline /path/to/other/checkout] [--repeat N] [--out FILE]

--baseline also compiles each module with the bmdsl of another checkout (e.g. main) and
runs it right after this checkout's, on the same data: a side-by-side comparison of two
versions in one run; --repeat runs each N times, alternating which goes first (the
medians are printed, every run is kept in the JSON). Prints a table and writes
bench/results/emitted_auto.json (or --out).
A script, not a test.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bmdsl  # noqa: E402
from bench.machine import describe  # noqa: E402
from bmdsl.bind.defaults import default_data  # noqa: E402
from bmdsl.trainer import Trainer, emit_torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def run_module(source, data, tmp):
    path, npz = Path(tmp) / "module.py", Path(tmp) / "data.npz"
    path.write_text(source)
    np.savez(npz, **data)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    start = time.perf_counter()
    out = subprocess.run([sys.executable, str(path), str(npz), "--device", "cpu"],
                         capture_output=True, text=True, env=env, timeout=1800)
    seconds = time.perf_counter() - start
    if out.returncode:
        raise RuntimeError(out.stderr)
    return {"objective": float(out.stdout.split("objective ")[1].split()[0]),
            "steps": int(out.stdout.split("steps ")[1].split()[0]), "seconds": seconds,
            "train_seconds": float(out.stdout.split("seconds ")[1].split()[0]),
            "lines": len(source.splitlines()), "load": os.getloadavg()[0]}


def baseline_source(checkout, name, choice):
    """The module for models/<name>.bm compiled by the bmdsl of another checkout."""
    code = ("import sys, bmdsl; from bmdsl.trainer import emit_torch; "
            f"sys.stdout.write(emit_torch(bmdsl.load({str(ROOT / 'models' / name) + '.bm'!r})"
            f".derive(), {choice!r}))")
    env = dict(os.environ, PYTHONPATH=str(checkout))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, check=True, cwd=checkout).stdout


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="cnn,selfattention,mlp")
    parser.add_argument("--choices", default="auto,all")
    parser.add_argument("--baseline", help="another checkout whose emitted modules run next "
                        "to this one's")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "emitted_auto.json"))
    args = parser.parse_args(argv)
    choices = args.choices.split(",")
    rows = []
    for name in args.models.split(","):
        model = bmdsl.load(ROOT / "models" / f"{name}.bm")
        data, _ = default_data(model)
        derivation = model.derive()
        start = time.perf_counter()
        trainer = Trainer(derivation.bind(data), device="cpu", progress=False)
        result = trainer.fit()
        row = {"model": name, "bmdsl": {"objective": result.objective,
                                        "method": trainer.method_name,
                                        "stopped": result.stopped,
                                        "seconds": time.perf_counter() - start}}
        with tempfile.TemporaryDirectory() as tmp:
            for choice in choices:
                runs = [(choice, emit_torch(derivation, choice))]
                if args.baseline:
                    runs.append((f"{choice}_baseline", baseline_source(args.baseline, name,
                                                                       choice)))
                for r in range(args.repeat):
                    for key, source in runs if r % 2 == 0 else runs[::-1]:
                        row.setdefault(key, {"runs": []})["runs"].append(
                            run_module(source, data, tmp))
                for key, _ in runs:
                    done = row[key]["runs"]
                    row[key].update(done[0], seconds=median(d["seconds"] for d in done),
                                    train_seconds=median(d["train_seconds"] for d in done))
                    row[key]["relative_to_bmdsl"] = \
                        (row[key]["objective"] - result.objective) / abs(result.objective)
        rows.append(row)
        print(f"{name:14s} bmdsl {result.objective:.12g} ({trainer.method_name}, "
              f"{result.stopped})", flush=True)
        for key in [k for k in row if k not in ("model", "bmdsl")]:
            r = row[key]
            print(f"  --methods {key:13s} {r['objective']:.12g} rel "
                  f"{r['relative_to_bmdsl']:+.1e}  steps {r['steps']:4d}  {r['seconds']:6.1f} s"
                  f" (training {r['train_seconds']:.1f} s)  {r['lines']} lines", flush=True)
    out = Path(args.out)
    out.write_text(json.dumps({"machine": describe(), "torch_threads": torch.get_num_threads(),
                               "baseline": args.baseline, "load": os.getloadavg(),
                               "rows": rows}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
