"""The adjoint L^*(g) through F's blocks (runtime/kronops.py) on the digits CNN, before and
after reordering into Z's order after the sum over blocks instead of before it, alternating
in one process on one thread (the same bits: checked here too).

    python bench/bench_kron_adjoint.py [--repeats 30] [--out bench/results/kron_adjoint.json]

`before` is the previous code's value_adjoint, written out here: per block F_j^T g_j
gathered into Z's order ([blocks, N] entries), joined to the loss's block sums by one
concatenation, then the fixed-order sum; `after` is KronL.value_adjoint. The digits CNN is
bench_digits.py's (n = 1797, P = 16, cross_entropy): F's blocks [112, 17, 2304].
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import describe  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--out", default=str(ROOT / "bench/results/kron_adjoint.json"))
    args = ap.parse_args()
    import torch
    torch.set_num_threads(1)
    from bench.bench_digits import bound_for
    from bmdsl.trainer import Trainer
    from bmdsl.trainer.runtime.kronops import KronL

    trainer = Trainer(bound_for("cross_entropy", 16), device="cpu", progress=False, m=9)
    op = KronL(trainer.problem)
    gen = torch.Generator().manual_seed(1)
    Z = torch.randn(op.shape, generator=gen, dtype=torch.float64)
    yhat = op.forward(Z)

    def before():
        F, g = op._losses(yhat, True)
        prod = torch.bmm(op._blocked(g).transpose(1, 2), op.F)
        rows = prod.reshape(prod.shape[0], -1).index_select(1, op.to_z)
        total = op.blocks.total(torch.cat([F, rows], 1))
        return float(total[0]), total[1:].reshape(op.shape)

    def after():
        return op.value_adjoint(yhat)

    (f0, G0), (f1, G1) = before(), after()
    same = f0 == f1 and bool(torch.equal(G0, G1))
    times = {"before": [], "after": []}
    load = os.getloadavg()
    for _ in range(args.repeats):
        for name, fn in (("before", before), ("after", after)):
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    med = {k: sorted(v)[len(v) // 2] * 1e3 for k, v in times.items()}
    out = {"machine": describe(), "command": " ".join(sys.argv), "same_bits": same,
           "blocks": list(op.F.shape), "median_ms": med, "ratio": med["before"] / med["after"],
           "load_before": load, "load_after": os.getloadavg(), "times": times}
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"same bits: {same}; value_adjoint median {med['before']:.1f} ms -> "
          f"{med['after']:.1f} ms ({out['ratio']:.2f}x), load {load[0]:.1f}")


if __name__ == "__main__":
    main()
