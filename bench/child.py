"""One benchmark run in a fresh process (its peak resident memory is its own), bounded by a
wall-clock limit: the child prints one line `RESULT <json>`."""
from __future__ import annotations

import json
import subprocess
import sys
import time


def run_code(code: str, limit: float, cwd) -> dict:
    """The child's RESULT, or {"skipped": why} (killed at the limit, or failed)."""
    start = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=limit, cwd=cwd)
    except subprocess.TimeoutExpired:
        return {"skipped": f"killed at the {limit:g} s limit",
                "seconds": time.perf_counter() - start}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"skipped": "failed: " + (proc.stderr.strip().splitlines() or ["?"])[-1]}


# the opening of a child's code (str.format: root): the checkout first on the path, one
# torch thread (two threads on the loaded 2-core machine spin on each other)
PREAMBLE = r'''
import json, resource, sys, time
sys.path.insert(0, {root!r})
import torch
torch.set_num_threads(1)
'''
