"""CSV tables: one sample per row, a header row naming the columns, and how columns become
the model's tensors.

Two kinds of header:
* tensor headers `X[0], X[1], Y` (`I[0,1,2]` multi-indices; every index of the grid once,
  any column order): each name is an array [n, ...]. This is what `save_data` writes.
* ordinary headers (`x0, x1, ..., y`, `sepal length, species`): the target is the column(s)
  named by `target` (`--target y`), else the LAST column; all other columns, in order, are
  the model's one data input [n, k].  A model with several data inputs needs tensor
  headers or one file per input (`--data NAME=FILE`).
Cells must be finite numbers; rows are read one at a time into a float64 buffer that is
checked against the data limit as it grows (a huge CSV is refused as soon as it passes it).
"""
from __future__ import annotations

import csv
import re
from array import array
from dataclasses import dataclass

import numpy as np

from .datafile import DataFileError, require

_COLUMN = re.compile(r"^([A-Za-z_]\w*)(?:\[(\d+(?:\s*,\s*\d+)*)\])?$")
HEADER_HINT = ("start the file with a header row: ordinary names (x0,x1,y: the last column, or "
               "--target COLS, is the target) or tensor names (X[0],X[1],Y)")


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    values: np.ndarray                       # [rows, columns] float64
    tensor: tuple[tuple[str, tuple] | None, ...]   # (name, index) per column if tensor form


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _parse_header(path, row) -> tuple[tuple[str, ...], tuple]:
    header = tuple(cell.strip() for cell in row)
    if all(_number(c) for c in header if c):
        raise DataFileError(path, "bad header: the first row holds numbers, not column names",
                            hint=HEADER_HINT)
    tensor = []
    for j, name in enumerate(header):
        if not name:
            raise DataFileError(path, f"header cell {j + 1} is empty: every column needs a "
                                "name", hint="pandas: DataFrame.to_csv(path, index=False)")
        m = _COLUMN.match(name)
        if m is None and "[" in name:
            raise DataFileError(path, f"bad header cell {j + 1} {name!r}",
                                hint="tensor columns are written X[0], X[1], I[0,1,2]")
        index = tuple(int(s) for s in m.group(2).split(",")) if m and m.group(2) else ()
        tensor.append((m.group(1), index) if m else None)
    return header, tuple(tensor)


def read_table(path, limit: int) -> Table:
    """The header and the numbers of a CSV file (blank lines skipped)."""
    header, tensor, buf, rows = None, (), array("d"), 0
    with open(path, newline="", encoding="utf-8-sig") as f:   # -sig: Excel's byte-order mark
        reader = csv.reader(f)
        try:
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                if header is None:
                    header, tensor = _parse_header(path, row)
                    continue
                _append(path, reader.line_num, header, row, buf)
                rows += 1
                if rows % 4096 == 0:                    # now and then, not per row
                    require(path, f"its first {rows} rows", 8 * len(buf), limit)
        except csv.Error as exc:
            raise DataFileError(path, f"line {reader.line_num}: not CSV ({exc})") from None
    if header is None:
        raise DataFileError(path, "empty file (a header row is required)", hint=HEADER_HINT)
    if rows == 0:
        raise DataFileError(path, "no data rows after the header")
    require(path, f"its {rows} rows", 8 * len(buf), limit)
    return Table(header, np.frombuffer(buf, dtype=np.float64).reshape(rows, len(header)), tensor)


def _separator_hint(*texts) -> str | None:
    other = next((s for s in (";", "\t") if any(s in t for t in texts)), None)
    return None if other is None else (f"the file seems separated by {other!r}; bmdsl reads "
                                       "comma-separated values with a '.' decimal point")


def _append(path, line, header, row, buf) -> None:
    if len(row) != len(header):
        raise DataFileError(path, f"line {line} has {len(row)} cells, header has {len(header)}",
                            hint=_separator_hint(*header, *row))
    for j, cell in enumerate(row):
        try:
            x = float(cell)
        except ValueError:
            raise DataFileError(path, f"line {line}, column {header[j]!r}: {cell.strip()!r} "
                                "is not a number", hint=_separator_hint(cell)) from None
        if not np.isfinite(x):
            raise DataFileError(path, f"line {line}, column {header[j]!r}: {cell.strip()!r} is "
                                "not finite")
        buf.append(x)


# ------------------------------------------------------------------ columns -> tensors

def tensor_arrays(path, table: Table) -> dict[str, np.ndarray]:
    """Arrays named by tensor headers (X[0], X[1], Y)."""
    columns: dict[str, dict[tuple, int]] = {}
    for j, (name, tensor) in enumerate(zip(table.header, table.tensor)):
        if tensor is None:
            raise DataFileError(path, f"bad header cell {j + 1} {name!r}", hint=HEADER_HINT)
        cols = columns.setdefault(tensor[0], {})
        if tensor[1] in cols or (cols and len(next(iter(cols))) != len(tensor[1])):
            raise DataFileError(path, f"header column {name!r} repeats or mixes index forms")
        cols[tensor[1]] = j
    out = {}
    for name, cols in columns.items():
        shape = tuple(max(ix[a] for ix in cols) + 1 for a in range(len(next(iter(cols)))))
        if len(cols) != int(np.prod(shape)):
            raise DataFileError(path, f"columns of {name} do not cover indices {shape} exactly "
                                      f"(have {len(cols)})")
        arr = np.empty((table.values.shape[0], *shape))
        for ix, j in cols.items():
            arr[(slice(None), *ix)] = table.values[:, j]
        out[name] = arr
    return out


def _columns(values, picked) -> np.ndarray:
    return values[:, picked[0]].copy() if len(picked) == 1 else values[:, picked].copy()


def _names(header) -> str:
    shown = ", ".join(header[:12]) + (f", ... ({len(header)} columns)" if len(header) > 12 else "")
    return shown


def split_columns(path, table: Table, input_name: str, target_name: str,
                  target: tuple[str, ...] | None) -> dict[str, np.ndarray]:
    """Ordinary headers: the `target` columns (default: the last) -> target_name, the rest ->
    input_name [n, k]."""
    header = table.header
    if target:
        picked = []
        for col in target:
            hits = [j for j, h in enumerate(header) if h == col]
            if not hits:
                raise DataFileError(path, f"no column named {col!r} for the target",
                                    hint=f"the columns are {_names(header)}")
            if len(hits) > 1:
                raise DataFileError(path, f"column {col!r} appears {len(hits)} times")
            picked.append(hits[0])
    else:
        picked = [len(header) - 1]
    rest = [j for j in range(len(header)) if j not in picked]
    if not rest:
        raise DataFileError(path, f"no input columns left: {_names(header)} are all the target",
                            hint="a CSV holds the input columns and the target column(s)")
    return {input_name: table.values[:, rest].copy(), target_name: _columns(table.values, picked)}


def whole_table(table: Table, name: str) -> dict[str, np.ndarray]:
    """`--data NAME=FILE.csv` with ordinary headers: every column is array NAME ([n] for one)."""
    return {name: _columns(table.values, list(range(len(table.header))))}


def csv_arrays(path, table: Table, *, name=None, tensors=None, target=None) -> dict:
    """The arrays of a CSV table by the module's rules.

    `name`: the one array wanted (`--data NAME=FILE`); `tensors`: the model's data tensors,
    the target last (None without a model: then ordinary headers need `target`, and the
    input and target are called X and Y); `target`: the target column names."""
    named = all(t is not None for t in table.tensor)
    indexed = named and any(t[1] for t in table.tensor)
    if name is not None:
        if named and (indexed or name in {t[0] for t in table.tensor}):
            return tensor_arrays(path, table)
        return whole_table(table, name)
    names = {t[0] for t in table.tensor if t is not None}
    if not target and named and (tensors is None or names <= set(tensors)):
        return tensor_arrays(path, table)
    if tensors is None:
        if not target:
            tensor_arrays(path, table)          # raises: names the first ordinary header
        inputs, target_name = ("X",), "Y"
    else:
        inputs, target_name = tuple(tensors[:-1]), tensors[-1]
    if len(inputs) != 1:
        raise DataFileError(
            path, f"the columns {_names(table.header)} are not tensor names, and the model has "
                  f"{len(inputs)} data inputs ({', '.join(inputs)}) besides the target",
            hint=f"name the columns {inputs[0]}[0], {inputs[0]}[1], ..., {target_name}, or give "
                 "each tensor its own file: --data NAME=FILE")
    return split_columns(path, table, inputs[0], target_name, target)
