"""A data file before it is read: is it a regular file, and may its arrays be held in memory?

Every reader (.npy, .npz, .csv) asks here first, so a directory, a FIFO (which would block
an `open`), an unreadable path or a file whose declared arrays exceed the limit is refused
with what is wrong and what is accepted, before anything is allocated.

The limit on the bytes data may occupy once read (the arrays as stored plus their float64
copies) is `BMDSL_MAX_DATA_BYTES` when set (a byte count, optionally with K, M, G or T,
powers of 1024: "512M", "8G"), else min(2 GiB, a quarter of the available memory): data is
a small part of what a run holds (patterns masks, factors and solver matrices are larger),
so a file that alone would take more is almost surely a mistake, or a zip bomb (a 4 MB .npz
can declare 4 GiB of zeros).
"""
from __future__ import annotations

import os
import re
import stat

from ..core.errors import DataError

ENV = "BMDSL_MAX_DATA_BYTES"
DEFAULT_CAP = 2 * 1024 ** 3
AVAILABLE_FRACTION = 0.25
_UNITS = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*([kmgt]?)(?:i?b)?\s*$", re.I)


class DataFileError(DataError, ValueError):
    """A data file that cannot be used: missing, unreadable, too large, bad header or cell."""

    kind = "data file error"

    def __init__(self, path, message: str, hint: str | None = None):
        super().__init__(f"{path}: {message}", hint=hint)
        self.path = str(path)
        self.detail = message


class FileArrays(dict):
    """Arrays by tensor name, read from data files; `files[name]` is the file an array came
    from, so that binding's messages name it beside the model's declaration."""

    def __init__(self, arrays=(), files=None):
        super().__init__(arrays)
        self.files = dict(files or {})


def human(nbytes: int | float) -> str:
    """1536 -> '1.5 KiB': sizes in messages."""
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def parse_size(text: str) -> int:
    """'2G' -> 2 * 1024**3; ValueError for anything that is not a positive size."""
    m = _SIZE.match(str(text))
    if m is None or float(m.group(1)) <= 0:
        raise ValueError(text)
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def _available_memory() -> int | None:
    from ..core.memory import available  # one reader of the machine's free memory
    return available()


def data_limit(max_bytes: int | None = None) -> int:
    """The byte limit on data read: the argument, else $BMDSL_MAX_DATA_BYTES, else the default."""
    if max_bytes is not None:
        return int(max_bytes)
    text = os.environ.get(ENV)
    if text is not None and text.strip():
        try:
            return parse_size(text)
        except ValueError:
            raise DataError(f"{ENV}={text!r} is not a size",
                            hint="accepted: a positive number of bytes, optionally with K, M, "
                                 "G or T (powers of 1024), e.g. 512M or 8G") from None
    available = _available_memory()
    if available is None:
        return DEFAULT_CAP
    return max(1, min(DEFAULT_CAP, int(available * AVAILABLE_FRACTION)))


def regular_file(path) -> int:
    """The size of `path` if it is a readable regular file; else DataFileError saying what it is."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise DataFileError(path, "no such file") from None
    except NotADirectoryError:
        raise DataFileError(path, "no such file (a parent of it is not a directory)") from None
    except OSError as exc:
        raise DataFileError(path, f"cannot read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(info.st_mode):
        raise DataFileError(path, "is a directory, not a data file",
                            hint="give a .npz, .npy or .csv file inside it")
    if not stat.S_ISREG(info.st_mode):
        raise DataFileError(path, "is not a regular file (a FIFO, socket or device)",
                            hint="data is read from a .npz, .npy or .csv file on disk")
    if not os.access(path, os.R_OK):
        raise DataFileError(path, "cannot read (permission denied)")
    return info.st_size


def require(path, what: str, nbytes: int, limit: int,
            verb: str = "would take {} in memory") -> None:
    """Refuse `what` of `path` needing `nbytes` once read when that exceeds `limit`."""
    if nbytes > limit:
        raise DataFileError(
            path, f"{what} {verb.format(human(nbytes))}, more than the data limit "
                  f"{human(limit)}",
            hint=f"accepted: data up to the limit; raise it with {ENV} (e.g. {ENV}=8G) if "
                 "the file is genuine, or use a smaller file")
