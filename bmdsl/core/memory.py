"""Memory planning: every large array is estimated against a budget before it is allocated.

The budget is, in order of precedence: an explicit `budget=` argument (e.g.
`Trainer(bound, memory_budget="2G")`, `bound.to_cvxpy(memory_budget=...)`), the innermost
`with bmdsl.core.memory.limit("2G"):` block (covers `Derivation.bind`), the environment variable
BMDSL_MEMORY_BUDGET ("2G", "512M", "1.5GiB", or bytes), else DEFAULT_FRACTION of the
memory the machine has available now (/proc/meminfo MemAvailable, else os.sysconf).

`require(estimate)` raises `MemoryBudgetError` with what would be allocated, its shape,
the estimate in human units, the budget and what to change; `fits(estimate)` only asks.
The estimators live in footprint.py (one function per stage that allocates).
"""
from __future__ import annotations

import os
import re
from contextlib import contextmanager
from dataclasses import dataclass

from .errors import BmdslError

BUDGET_ENV = "BMDSL_MEMORY_BUDGET"
# The rest of the machine (the OS, other processes, Python and torch themselves, and the
# estimates' own error) needs room: 70% of what is available is the default.
DEFAULT_FRACTION = 0.7
FALLBACK_BYTES = 4 << 30     # neither /proc/meminfo nor sysconf answers: assume 4 GiB free
UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kmgtp]?)(?:i?b)?\s*$",
                   re.IGNORECASE)
_override: list[tuple[int, str]] = []   # the `limit()` blocks in force, innermost last


class MemoryBudgetError(BmdslError):
    """An allocation whose estimate exceeds the memory budget (nothing was allocated)."""

    kind = "memory budget"


@dataclass(frozen=True)
class Estimate:
    """`nbytes` for `what` (a name with its shape); `advice` says how to make it smaller."""

    what: str
    nbytes: int
    advice: str = ""


def human(nbytes) -> str:
    """1536 -> '1.5 KiB'; powers of 1024, three significant digits."""
    n = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            break
        n /= 1024
    if unit == "PiB" and n >= 1024:
        return f"{n:.3g} PiB"
    return f"{int(n)} B" if unit == "B" else f"{n:.3g} {unit}"


def parse_size(text, *, origin: str = BUDGET_ENV) -> int:
    """'2G', '512M', '1.5GiB', '3e9' or an int -> bytes; MemoryBudgetError otherwise."""
    if isinstance(text, bool):
        raise MemoryBudgetError(f"{origin} must be a size, not {text!r}")
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value, unit = float(text), ""
    else:
        match = _SIZE.match(str(text))
        if not match:
            raise MemoryBudgetError(
                f"{origin} = {str(text)[:40]!r} is not a memory size",
                hint="accepted: a positive number of bytes with an optional unit K, M, G, T "
                     "(powers of 1024; KB, KiB also read), e.g. 2G, 512M, 1.5GiB, 3000000000")
        value, unit = float(match.group(1)), match.group(2).lower()
    nbytes = int(value * UNITS[unit])
    if not nbytes > 0:
        raise MemoryBudgetError(f"{origin} = {text!r} is not positive",
                                hint="a memory budget must be at least 1 byte, e.g. 2G")
    return nbytes


def available() -> int | None:
    """Bytes of memory available now: MemAvailable of /proc/meminfo (Linux), else the free
    physical pages by os.sysconf; None when neither answers."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, AttributeError):
        return None


def resolve(value=None) -> tuple[int, str]:
    """(budget in bytes, where it comes from) by the precedence of the module docstring."""
    if value is not None:
        return parse_size(value, origin="memory_budget"), "the memory_budget argument"
    if _override:
        return _override[-1]
    env = os.environ.get(BUDGET_ENV)
    if env is not None and env.strip():
        return parse_size(env), f"{BUDGET_ENV}={env.strip()}"
    free = available()
    if free is None:
        return int(DEFAULT_FRACTION * FALLBACK_BYTES), (
            f"{DEFAULT_FRACTION:.0%} of an assumed {human(FALLBACK_BYTES)}; set {BUDGET_ENV}")
    return int(DEFAULT_FRACTION * free), f"{DEFAULT_FRACTION:.0%} of the {human(free)} available"


def budget(value=None) -> int:
    """The budget in bytes (see `resolve`)."""
    return resolve(value)[0]


@contextmanager
def limit(value):
    """`with limit("2G"): ...`: the budget of every check inside the block (this process);
    `limit(None)` changes nothing (so an optional argument can be passed straight on)."""
    if value is None:
        yield
        return
    _override.append((parse_size(value, origin="memory.limit"), f"memory.limit({value!r})"))
    try:
        yield
    finally:
        _override.pop()


def fits(estimate: Estimate, value=None) -> bool:
    return estimate.nbytes <= budget(value)


def require(estimate: Estimate, value=None, *, prefix: str = "") -> None:
    """MemoryBudgetError unless `estimate` fits the budget; nothing is allocated here."""
    limit_bytes, origin = resolve(value)
    if estimate.nbytes <= limit_bytes:
        return
    raise MemoryBudgetError(
        f"{prefix}{estimate.what} would need about {human(estimate.nbytes)} (estimate), above "
        f"the memory budget of {human(limit_bytes)} ({origin})",
        hint=(estimate.advice + "; " if estimate.advice else "") + _raise_hint(estimate.nbytes))


def _raise_hint(nbytes: int) -> str:
    """Raising the budget helps only where the machine has the memory: say which applies."""
    free = available()
    if free is not None and nbytes > free:
        return f"this machine has {human(free)} available, too little even with a larger budget"
    unit, size = ("G", 1 << 30) if nbytes >= 1 << 30 else ("M", 1 << 20)
    return (f"or raise the budget, e.g. {BUDGET_ENV}={-(-nbytes // size)}{unit}"
            + (f" ({human(free)} available)" if free is not None else ""))


def require_all(estimates, value=None, *, prefix: str = "") -> None:
    """`require` each estimate, the largest first (the error names the worst offender)."""
    for est in sorted(estimates, key=lambda e: -e.nbytes):
        require(est, value, prefix=prefix)
