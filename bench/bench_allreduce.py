"""Latency of one all-reduce between 2 processes (gloo, this machine): torch.distributed
directly against bmdsl's bounded collective (distributed.allreduce_sum: a copy, the
collective count and a heartbeat at most every 0.25 s).

    python bench/bench_allreduce.py [--size 720] [--repeats 300]

720 float64 is the gradient of the bench_distributed.py model (P m (p + q)). Writes
bench/results/allreduce.json with the load average (the machine is shared).
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

import torch  # noqa: E402

from bench.machine import describe  # noqa: E402
from bmdsl.trainer import distributed, launch  # noqa: E402


def _latency(size, repeats):
    import torch.distributed as dist
    torch.set_num_threads(1)
    x = torch.zeros(size, dtype=torch.float64)
    for _ in range(20):
        distributed.allreduce_sum(x)
    start = time.perf_counter()
    for _ in range(repeats):
        distributed.allreduce_sum(x)
    bmdsl_seconds = (time.perf_counter() - start) / repeats
    start = time.perf_counter()
    for _ in range(repeats):
        dist.all_reduce(x)
    return {"bmdsl allreduce_sum": bmdsl_seconds,
            "torch.distributed.all_reduce": (time.perf_counter() - start) / repeats}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=720)
    ap.add_argument("--repeats", type=int, default=300)
    args = ap.parse_args()
    load = os.getloadavg()
    out = {"size_float64": args.size, "repeats": args.repeats, "load_average": load,
           "seconds_per_allreduce": launch.spawn(_latency, 2, (args.size, args.repeats),
                                                 timeout=120),
           "machine": describe()}
    print(json.dumps(out["seconds_per_allreduce"], indent=1))
    path = ROOT / "bench" / "results" / "allreduce.json"
    path.write_text(json.dumps(out, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
