"""The baseline's Adam step beyond the edge of BASELINE_LRS (1e-2 was chosen, the largest
tried by layerwise_rise.py): 3e-2 and 1e-1 on the same 3 folds, the chosen design.

    PYTHONPATH=. python bench/layerwise_rise_lr_edge.py   -> bench/results/layerwise_select_rise_lr_edge.json
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.bench_layerwise import RESULTS  # noqa: E402
from bench.layerwise_rise import run_all  # noqa: E402

EDGE = (3e-2, 1e-1)


def main() -> int:
    chosen = json.loads((RESULTS / "layerwise_select_rise.json").read_text())["chosen"]
    args = argparse.Namespace(jobs=3, steps=20, epochs=40, time_limit=None)
    load0 = os.getloadavg()
    out = run_all("baseline", [chosen], args, EDGE)
    for r in out:
        print(f"baseline lr {r['lr']:g}: validation {r['cv_accuracy'][0]:.4f}", flush=True)
    (RESULTS / "layerwise_select_rise_lr_edge.json").write_text(json.dumps(
        {"chosen": chosen, "baseline": out,
         "load_average_before_after": [load0, os.getloadavg()]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
