"""One progress line on stderr, rewritten in place: step, objective, certificate, speed.

Shown only on a terminal (or when a stream is passed explicitly); never when progress is
False. Redraws at most every `interval` seconds so it costs nothing in a fast loop.
"""
from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, setting, total: int, interval: float = 0.2):
        stream = setting if hasattr(setting, "write") else sys.stderr
        tty = hasattr(stream, "isatty") and stream.isatty()
        self.stream = stream if setting is not False and (tty or hasattr(setting, "write")) \
            else None
        self.total, self.interval = total, interval
        self.last, self.shown, self.t0, self.s0 = 0.0, False, time.perf_counter(), None

    def update(self, step: int, objective: float, certificate: float | None = None,
               force: bool = False):
        if self.stream is None:
            return
        now = time.perf_counter()
        if self.s0 is None:
            self.s0, self.t0 = step, now
        if not force and now - self.last < self.interval:
            return
        self.last = now
        rate = (step - self.s0) / (now - self.t0) if now > self.t0 else 0.0
        cert = f"  gap<={certificate:.2e}" if certificate is not None else ""
        self.stream.write(f"\rstep {step}/{self.total}  objective {objective:.10g}{cert}  "
                          f"{rate:.1f} steps/s ")
        self.stream.flush()
        self.shown = True

    def close(self):
        if self.stream is not None and self.shown:
            self.stream.write("\n")
            self.stream.flush()
