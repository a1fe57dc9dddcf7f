"""The training progress bar (tqdm: steps, rate, ETA; objective and gap bound as postfix),
and the same events on the `bmdsl.trainer` logger.

`setting` (the trainer's `progress=`): None shows the bar when stderr is a terminal; True
shows it on stderr always; a stream (anything with `write`) shows it there; False never.
The bar is redrawn at most every `interval` seconds, so a fast loop pays almost nothing.
Independently of the bar, every new certificate and every warm-start chunk is logged at
DEBUG level (`bmdsl --verbose`), so a log file records how the bound fell.

Only bmdsl's own trainer uses this; the emitted stand-alone trainers (emit.py) paste
runtime/ alone and print their result, so they need neither tqdm nor bmdsl.
"""
from __future__ import annotations

import logging
import shutil
import sys
import time

log = logging.getLogger("bmdsl.trainer")


def _shown(setting) -> bool:
    if setting is False:
        return False
    if setting is True or hasattr(setting, "write"):
        return True
    return hasattr(sys.stderr, "isatty") and sys.stderr.isatty()


class Progress:
    def __init__(self, setting, total: int, interval: float = 0.2):
        self.total, self.interval = total, interval
        self.last, self.logged, self.warm = 0.0, None, False
        self.bar, self.pending = None, None
        if _shown(setting):
            from tqdm import tqdm     # imported only when a bar is drawn
            # the size once, with a fallback: a terminal that reports 0 x 0 (a pty without
            # a size) would otherwise get an empty bar from tqdm
            width, height = shutil.get_terminal_size((100, 24))
            self.bar = tqdm(total=total, file=setting if hasattr(setting, "write") else
                            sys.stderr, unit="steps", mininterval=0, leave=True,
                            ncols=max(width, 60), nrows=max(height, 10),
                            bar_format="step {n_fmt}/{total_fmt} {bar:20} "
                                       "[{elapsed}<{remaining}, {rate_fmt}]{postfix}")

    def update(self, step: int, objective: float, certificate: float | None = None,
               force: bool = False):
        """Step `step` (0: the warm start, drawn as such) reached `objective`; `certificate`
        is the latest duality-gap bound, or None before the first one."""
        if certificate is not None and certificate != self.logged:
            self.logged = certificate
            log.debug("%s: objective %.10g, duality-gap bound %.3e",
                      "warm start" if step == 0 else f"step {step}", objective, certificate)
        if self.bar is None:
            return
        now = time.perf_counter()
        if not force and now - self.last < self.interval:
            self.pending = (step, objective, certificate)   # drawn by close() if last
            return
        self.last, self.pending = now, None
        if step == 0:
            self.warm = True
        elif self.warm:             # the warm start is over: its time is not BM steps' rate
            self.warm = False
            self.bar.unpause()
        gap = "" if certificate is None else f", gap <= {certificate:.2e}"
        what = "warm start: " if step == 0 else ""
        self.bar.set_postfix_str(f"{what}objective {objective:.8g}{gap}", refresh=False)
        if step > self.bar.n:
            self.bar.update(step - self.bar.n)
        else:
            self.bar.refresh()

    def close(self):
        if self.bar is not None:
            if self.pending is not None:     # the final state, not the last one drawn
                self.update(*self.pending, force=True)
            self.bar.close()
            self.bar = None
