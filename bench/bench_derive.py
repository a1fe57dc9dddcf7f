"""Parse + check + derive time for every model in models/ (target: < 0.3 s per model).

    python bench/bench_derive.py            # prints a table, writes bench/results/derive.json

Measured in a fresh interpreter per model so the Lark parser build and sympy imports are
counted (what a CLI user waits for), and again warm (what a notebook user waits for).
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import describe  # noqa: E402

COLD = ("import time; t = time.perf_counter(); import bmdsl; "
        "bmdsl.load({path!r}).derive().text(); print(time.perf_counter() - t)")


def main() -> None:
    import bmdsl
    rows = []
    for path in sorted((ROOT / "models").glob("*.bm")):
        cold = float(subprocess.run([sys.executable, "-c", COLD.format(path=str(path))],
                                    capture_output=True, text=True, check=True,
                                    cwd=ROOT).stdout.strip())
        bmdsl.load(path).derive()  # warm the caches
        t = time.perf_counter()
        reps = 5
        for _ in range(reps):
            bmdsl.load(path).derive().text()
        warm = (time.perf_counter() - t) / reps
        rows.append({"model": path.name, "cold_s": cold, "warm_s": warm})
        print(f"{path.name:<24} cold {cold:7.3f} s   warm {warm:7.3f} s   "
              f"{'ok' if warm < 0.3 else 'ABOVE 0.3 s TARGET'}")
    out = ROOT / "bench" / "results" / "derive.json"
    out.write_text(json.dumps({"machine": describe(), "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
