"""`--data` and `--target`, the same on every command that reads data (solve, train, certify,
run, derive), and the saved patterns of `--patterns-from`.

`--data FILE` (.npz with arrays by tensor name, or .csv) and `--data NAME=FILE` (a .npy, one
array of a .npz, or a CSV whose columns all form NAME) are repeatable; `--target COLS` names
the target column(s) of a CSV with ordinary headers (default: its last column; the other
columns are the model's input).  Every path is checked (a regular file of a known type) before
any file is read, and the files together must fit the data limit ($BMDSL_MAX_DATA_BYTES,
`bmdsl.bind.datafile`).
"""
from __future__ import annotations

import os
import re

from ..bind.datafile import DataFileError, FileArrays, data_limit, human, regular_file
from ..core.errors import DataError

_NAMED = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.+)$")
DATA_HELP = ("data file: .npz (arrays by tensor name), .csv (a header row; see --target), or "
             "NAME=FILE (a .npy, one array of a .npz, or a whole .csv), e.g. X=x.npy; repeatable")
TARGET_HELP = ("for a .csv with ordinary headers (x0,x1,y): the target column(s), comma-"
               "separated (default: the last column); the other columns are the input")


def add_data_options(p, required: bool = True, default_note: str = "") -> None:
    """The `--data` and `--target` options, worded the same on every command."""
    p.add_argument("--data", action="append", required=required, metavar="DATA",
                   help=DATA_HELP + default_note)
    p.add_argument("--target", metavar="COLS", help=TARGET_HELP)


def parse_items(items) -> list[tuple[str | None, str]]:
    """[(NAME or None, path)] of the --data values; every path checked before any is read."""
    entries = []
    for item in items or []:
        named = _NAMED.match(item)
        name, path = (named.group(1), named.group(2)) if named else (None, item)
        regular_file(path)
        ext = os.path.splitext(path)[1].lower()
        if ext not in (".npz", ".npy", ".csv"):
            raise DataFileError(path, f"unsupported file type {ext or '(no extension)'!r}",
                                hint="accepted: .npz, .npy (as NAME=FILE) or .csv; NAME=FILE "
                                     "names the array, e.g. --data X=x.npy")
        if name is None and ext == ".npy":
            raise DataError(f"{path} holds one unnamed array: name it, e.g. --data X={path}")
        entries.append((name, path))
    return entries


def target_columns(text) -> tuple[str, ...] | None:
    if text is None:
        return None
    cols = tuple(c.strip() for c in str(text).split(","))
    if not all(cols):
        raise DataError(f"--target {text!r} has an empty column name",
                        hint="accepted: column names separated by commas, e.g. --target y or "
                             "--target y0,y1")
    return cols


def model_tensors(model) -> tuple[str, ...] | None:
    """The model's data inputs and its target (last): how a CSV's columns are assigned."""
    if model is None:
        return None
    return (*(t.name for t in model.inputs), model.target.name)


def read_data(items, model=None, target=None, max_bytes=None) -> dict:
    """Arrays from the --data values (see the module docstring), checked before reading."""
    from ..bind.datasets import load_data
    entries = parse_items(items)
    cols = target_columns(target)
    if cols and not any(n is None and p.lower().endswith(".csv") for n, p in entries):
        raise DataError(f"--target {target} names CSV columns, but no --data FILE is a .csv",
                        hint="--target applies to a .csv given as --data FILE.csv; for .npz "
                             "and .npy files name the arrays (NAME=FILE)")
    limit, used, data = data_limit(max_bytes), 0, FileArrays()
    tensors = model_tensors(model)
    for name, path in entries:
        arrays = load_data(path, name=name, tensors=tensors, max_bytes=limit,
                           target=None if name else cols)
        if name:
            arrays = {name: arrays[name]}
        clash = sorted(set(arrays) & set(data))
        if clash:
            raise DataError(f"array(s) {', '.join(clash)} given twice (in {path})",
                            hint="give each tensor once: one file with all of them, or "
                                 "one NAME=FILE per tensor")
        used += sum(a.nbytes for a in arrays.values())
        if used > limit:
            raise DataFileError(path, f"the data files together take {human(used)}, more than "
                                      f"the data limit {human(limit)}",
                                hint="raise it with BMDSL_MAX_DATA_BYTES (e.g. 8G) if the "
                                     "data is genuine")
        data.update(arrays)
        data.files.update(dict.fromkeys(arrays, path))
    return data


def read_patterns(path):
    """The PatternSet saved with a solution (or any .npz with masks, gates, source, seed)."""
    from ..bind.npyread import read_npz
    try:
        regular_file(path)
        d = read_npz(path, data_limit(), kinds="biufU", float64=False)
    except DataFileError as exc:
        raise DataFileError(path, f"cannot read patterns: {exc.detail}", hint=exc.hint) from None
    missing = [k for k in PATTERN_KEYS if k not in d]
    if missing:
        raise DataError(f"{path} holds no saved patterns (missing {', '.join(missing)})",
                        hint="use the .npz written by `bmdsl solve`")
    return pattern_set(d, path)


PATTERN_KEYS = ("masks", "gates", "source", "seed")   # a saved PatternSet's arrays


def pattern_set(d: dict, path):
    """The PatternSet of arrays `d` read from `path`; a DataError if they are malformed."""
    from ..derive.patterns import PatternSet
    try:
        return PatternSet.from_npz_dict(d)
    except (ValueError, TypeError) as exc:
        raise DataError(f"bad patterns in {path}: {exc}") from None
