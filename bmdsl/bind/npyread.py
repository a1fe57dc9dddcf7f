""".npy and .npz files read safely: every header is checked before any array is allocated.

numpy's own `np.load` trusts the file: an .npz member without an .npy header comes back as
bytes, a 4 MB compressed member can declare gigabytes, and a text file gets advice about
`allow_pickle`.  Here the zip directory's uncompressed sizes and each member's .npy header
(shape, dtype) are read first; object, structured, string and complex dtypes are refused
(pickle is never allowed), the declared bytes must match what the file holds, and the
total must fit the data limit (`datafile.data_limit`).  Only then are arrays read.
"""
from __future__ import annotations

import math
import zipfile
import zlib

import numpy as np
from numpy.lib import format as npy

from .datafile import DataFileError, human, require

NPY_MAGIC = b"\x93NUMPY"
ACCEPTED = "numeric arrays (bool, integer or float dtypes) as written by numpy.save / numpy.savez"
_HEADERS = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}
# zipfile raises NotImplementedError for a compression method it lacks (a foreign .npz)
_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, RuntimeError,
                NotImplementedError)


def _where(member) -> str:
    return "" if member is None else f"member {member!r}: "


def _header(fp, path, member=None, kinds="biuf"):
    """(shape, dtype, header bytes) of the .npy stream at fp; DataFileError when it is not one."""
    try:
        version = npy.read_magic(fp)
    except ValueError:
        raise DataFileError(path, f"{_where(member)}no .npy header (not an array written by "
                                  "numpy.save)", hint=f"accepted: {ACCEPTED}; a table of numbers "
                                                      "in text is a .csv file") from None
    if version not in _HEADERS:
        raise DataFileError(path, f"{_where(member)}.npy format version {version} is not "
                                  "supported", hint="accepted: versions 1.0 and 2.0 (numpy.save "
                                                    "of a numeric array)")
    try:
        shape, _, dtype = _HEADERS[version](fp)
    except ValueError as exc:
        raise DataFileError(path, f"{_where(member)}bad .npy header ({exc})") from None
    _check_dtype(path, member, dtype, kinds)
    return tuple(int(s) for s in shape), dtype, fp.tell()


def _check_dtype(path, member, dtype, kinds) -> None:
    if dtype.hasobject:
        what = "holds Python objects (dtype object), which only pickle can read"
    elif dtype.names is not None or dtype.subdtype is not None:
        what = f"has a structured dtype {dtype}"
    elif dtype.kind == "c":
        what = f"is complex (dtype {dtype})"
    elif dtype.kind not in kinds:
        what = f"is not numeric (dtype {dtype})"
    else:
        return
    raise DataFileError(path, f"{_where(member) or 'the array '}{what}",
                        hint=f"accepted: {ACCEPTED}")


def _needed(shape, dtype) -> tuple[int, int]:
    """(bytes stored, bytes held once read and converted to float64)."""
    count = math.prod(shape)
    stored = count * dtype.itemsize
    float64 = 0 if dtype == np.dtype(np.float64) else count * 8
    return stored, stored + float64


def _as_float64(arr):
    return arr.astype(np.float64, copy=False)


def read_npy(path, size: int, limit: int) -> np.ndarray:
    """The array of a .npy file of `size` bytes, as float64."""
    try:
        with open(path, "rb") as f:
            shape, dtype, start = _header(f, path)
            stored, held = _needed(shape, dtype)
            if start + stored > size:
                raise DataFileError(path, f"truncated: the header declares shape {list(shape)} "
                                          f"({dtype}, {human(stored)}) but only "
                                          f"{human(size - start)} follow it")
            require(path, f"the array {list(shape)} ({dtype})", held, limit)
            f.seek(0)
            return _as_float64(npy.read_array(f, allow_pickle=False))
    except DataFileError:
        raise
    except _READ_ERRORS as exc:
        raise DataFileError(path, f"cannot read the .npy file ({exc})") from None


def read_npz(path, limit: int, *, kinds: str = "biuf", float64: bool = True,
             only=None) -> dict:
    """Every array of a .npz file (members NAME.npy) by NAME, as float64 (or as stored).

    `kinds`: the accepted numpy dtype kinds (saved patterns add "U" for their source);
    `only`: the names wanted (the others are neither checked nor read)."""
    try:
        with open(path, "rb") as f:
            start = f.read(len(NPY_MAGIC))
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        npy_hint = start == NPY_MAGIC
        raise DataFileError(
            path, "not a readable .npz file: cannot read it as a zip archive"
            + ("; it is a .npy file" if npy_hint else ""),
            hint="rename it to .npy and name the array: --data X=FILE.npy" if npy_hint else
            "an .npz file is written by numpy.savez(path, NAME=array, ...)") from None
    except _READ_ERRORS as exc:
        raise DataFileError(path, f"cannot read the .npz file ({exc})") from None
    with archive:
        members = _members(path, archive, limit, kinds, only)
        out = {}
        for name, info in members.items():
            try:
                with archive.open(info) as fp:
                    arr = npy.read_array(fp, allow_pickle=False)
                out[name] = _as_float64(arr) if float64 else arr
            except _READ_ERRORS as exc:
                raise DataFileError(path, f"member {info.filename!r}: cannot read it ({exc})") \
                    from None
        return out


def _members(path, archive, limit, kinds, only=None) -> dict:
    """NAME -> ZipInfo, after checking names, declared sizes and every .npy header."""
    infos = archive.infolist()
    if not infos:
        raise DataFileError(path, "holds no arrays (an empty zip archive)",
                            hint="write it with numpy.savez(path, NAME=array, ...)")
    members = {}
    for info in infos:
        if info.is_dir() or not info.filename.endswith(".npy"):
            raise DataFileError(path, f"member {info.filename!r} is not an array (.npz "
                                      "members are NAME.npy)",
                                hint="write the file with numpy.savez(path, NAME=array, ...)")
        name = info.filename[:-4]
        if name in members:
            raise DataFileError(path, f"member {info.filename!r} appears twice")
        members[name] = info
    if only is not None:
        if not set(only) & set(members):    # NAME=FILE.npz naming an array it lacks
            raise DataFileError(path, f"holds no array {', '.join(sorted(only))}; it holds "
                                      f"{', '.join(sorted(members))}",
                                hint="--data NAME=FILE.npz names one of the file's arrays")
        members = {k: v for k, v in members.items() if k in only}
        infos = list(members.values())
    # the zip directory bounds what each member can yield: refuse a bomb before inflating
    require(path, "its members (uncompressed)", sum(i.file_size for i in infos), limit)
    held = 0
    for name, info in members.items():
        try:
            with archive.open(info) as fp:
                shape, dtype, start = _header(fp, path, info.filename, kinds)
        except DataFileError:
            raise
        except _READ_ERRORS as exc:
            raise DataFileError(path, f"member {info.filename!r}: cannot read it ({exc})") \
                from None
        stored, need = _needed(shape, dtype)
        if start + stored != info.file_size:
            raise DataFileError(path, f"member {info.filename!r}: the header declares shape "
                                      f"{list(shape)} ({dtype}, {human(stored)}) but the member "
                                      f"holds {human(info.file_size - start)} of data")
        held += need
    require(path, f"its {len(members)} array(s)", held, limit)
    return members
