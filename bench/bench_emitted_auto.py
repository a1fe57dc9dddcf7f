"""Does the stand-alone trainer's `auto` need Newton? (docs/architecture.md, "Emitted modules")

For each shipped model on its default data (`bmdsl run`'s, bmdsl.bind.defaults), the
emitted torch module is run twice, side by side: compiled with `--methods auto` (the
lifted warm start polished by lbfgs) and with `--methods all` (whose `auto` is bmdsl's
order: newton first). Both are compared with bmdsl's own trainer (Trainer.fit, which
certifies the warm start and stops at the certificate): the objective, the BM steps after
the warm start, the wall time and the module's size in lines.

    PYTHONPATH=. .venv/bin/python bench/bench_emitted_auto.py [--models cnn,selfattention,mlp]

Prints a table and writes bench/results/emitted_auto.json. A script, not a test.
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
            "lines": len(source.splitlines())}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="cnn,selfattention,mlp")
    args = parser.parse_args(argv)
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
            for choice in ("auto", "all"):
                row[choice] = run_module(emit_torch(derivation, choice), data, tmp)
                row[choice]["relative_to_bmdsl"] = \
                    (row[choice]["objective"] - result.objective) / abs(result.objective)
        rows.append(row)
        print(f"{name:14s} bmdsl {result.objective:.12g} ({trainer.method_name}, "
              f"{result.stopped})", flush=True)
        for choice in ("auto", "all"):
            r = row[choice]
            print(f"  --methods {choice:4s} {r['objective']:.12g} rel {r['relative_to_bmdsl']:+.1e}"
                  f"  steps {r['steps']:4d}  {r['seconds']:6.1f} s  {r['lines']} lines", flush=True)
    out = ROOT / "bench" / "results" / "emitted_auto.json"
    out.write_text(json.dumps({"machine": describe(), "torch_threads": torch.get_num_threads(),
                               "rows": rows}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
