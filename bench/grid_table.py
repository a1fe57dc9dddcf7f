"""The status table of a grid run (bench/bench_grid.py's JSON) in markdown, one row per cell.

    python bench/grid_table.py bench/results/grid_s8.json [more.json ...] [--limit 60]
                               [--base other.json]

A cell is "met" when the trainer certified a relative gap <= 1e-4 within --limit seconds
(issue 13's target at the built-in sizes); at n >= 2000 the CVXPY / trainer ratio is shown
against the issue's 10x as well. Skipped cells keep their reason. Several files are read
in order, a later row replacing an earlier one of the same cell (a rerun). --base adds a
column with another run's trainer time and gap bound on the same cell (e.g. main's code).
"""
from __future__ import annotations

import argparse
import json


def _key(row):
    return (row["arch"], row["loss"], row["act"], row["C"], row["R"], row.get("n"))


def _cvxpy(cv: dict) -> str:
    if "skipped" in cv:
        return cv["skipped"].replace("did not finish within the", "killed at").replace(
            " limit of this run (killed)", "")
    status = "" if cv.get("status") == "optimal" else f" ({cv.get('status')})"
    return f"{cv['seconds']:.1f} s{status}"


def _trainer(tr: dict) -> str:
    if "skipped" in tr:
        return tr["skipped"]
    return f"{tr['seconds']:.1f} s, {tr['gap_bound']:.1e}" + (
        "" if tr["certified"] else " **not certified**")


def row_text(row: dict, limit: float, base: dict | None = None) -> str:
    """One markdown row: cell, [base trainer], trainer, warm start, CVXPY, (p_BM - p*)/p*,
    ratio, RSS, met."""
    pair = f"({row['C']}, {row['R']})"
    act = "gated" if row["act"] == "gated_relu" else row["act"]
    cell = f"{row['arch']} {row['loss']} {act} {pair} ({row['P']}, {row['p']}, {row['q']})"
    cell += "" if base is None else " | " + (
        _trainer(base["trainer"]) if "trainer" in base else "-")
    if "skipped" in row:
        return f"| {cell} | skipped: ReLU with q > 1 (bracket only) | | | | | | |"
    tr, cv = row["trainer"], row["cvxpy"]
    if "skipped" in tr:
        return f"| {cell} | {tr['skipped']} | - | {_cvxpy(cv)} | - | - | - | **not met** |"
    met = tr["certified"] and tr["seconds"] <= limit
    warm = f"{tr.get('warm_start')} ({tr.get('warm_iterations')})"
    if tr.get("steps"):
        warm += f" + {tr['steps']} {tr['method']} steps"
    rel = f"{row['rel_to_pstar']:+.1e}" if "rel_to_pstar" in row else "-"
    ratio = f"{row['speedup']:.2f}x" if "speedup" in row else "-"
    if ratio == "-" and "skipped" in cv and "seconds" in cv and tr["certified"]:
        ratio = f"> {cv['seconds'] / tr['seconds']:.1f}x"
    rss = f"{tr['peak_rss_mb']:.0f} / {cv['peak_rss_mb']:.0f}" if "peak_rss_mb" in cv \
        else f"{tr['peak_rss_mb']:.0f} / -"
    return (f"| {cell} | {_trainer(tr)} | {warm} | {_cvxpy(cv)} | {rel} | "
            f"{ratio} | {rss} MB | {'met' if met else '**not met**'} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("--limit", type=float, default=60.0, help="the target's seconds")
    ap.add_argument("--base", help="another run's JSON: its trainer column beside")
    args = ap.parse_args()
    rows: dict = {}
    for name in args.files:
        rows.update((_key(r), r) for r in _rows(name))
    base = None if args.base is None else {_key(r): r for r in _rows(args.base)}
    print("| cell (P, p, q) | " + ("" if base is None else "base: time, gap bound | ") +
          "trainer: time, gap bound | warm start (iterations) | CVXPY | (p_BM - p*)/p* | "
          f"CVXPY / trainer | peak RSS trainer / CVXPY | certified within {args.limit:g} s |")
    print("|---" * (8 if base is None else 9) + "|")
    for key, row in rows.items():
        print(row_text(row, args.limit, None if base is None else base.get(key, {})))


def _rows(name: str) -> list:
    """A finished run's JSON rows, or a running one's log (one JSON row per line)."""
    with open(name) as f:
        text = f.read().strip()
    return json.loads(text)["rows"] if text.startswith("{\n") else \
        [json.loads(line) for line in text.splitlines() if line.startswith("{")]


if __name__ == "__main__":
    main()
