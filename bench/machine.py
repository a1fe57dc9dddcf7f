"""The machine a benchmark ran on, stored beside its results."""
from __future__ import annotations

import os
import platform


def describe() -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count(), "processor": platform.processor()}
    if hasattr(os, "getloadavg"):    # other jobs on the cores slow every timing
        info["load_average"] = list(os.getloadavg())
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            info["memory_kb"] = int(f.readline().split()[1])
    except OSError:
        pass
    try:
        import torch
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        pass
    return info


def write_results(path, rows: list, **extra) -> None:
    """A benchmark's results JSON: the machine (with its load now), the command line, any
    `extra` entries and the rows."""
    import json
    import sys
    from pathlib import Path
    out = {"machine": describe(), "command": " ".join(sys.argv), **extra, "rows": rows}
    Path(path).write_text(json.dumps(out, indent=1))
