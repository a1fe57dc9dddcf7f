"""Some rows of the arrays in .npy and .npz files, without reading the others: what one
process of a data-parallel run reads of the data (docs/distributed.md).

Every header is checked first, as `npyread` does (numeric dtypes, no pickle, the declared
bytes present), then only the rows wanted are read along each array's sample axis:
* an .npy file, and an .npz member stored without compression (numpy.savez), are
  memory-mapped at their data and the rows copied out;
* an .npz member compressed (numpy.savez_compressed) cannot be mapped: it is inflated as a
  stream, RAW_CHUNK bytes at a time, keeping the rows wanted (with the sample axis first
  in C order; otherwise the member is read whole and its rows taken, the only case that
  holds a whole array).
Arrays without the sample axis are read whole. A .csv file is text, parsed row by row with
no index: it is read whole by `datasets.load_data` and its rows taken (the same data limit
applies to the whole file).
"""
from __future__ import annotations

import struct
import zipfile

import numpy as np
from numpy.lib import format as npy

from .datafile import DataFileError, human, require
from .npyread import _READ_ERRORS, _header, _members, _needed

RAW_CHUNK = 1 << 26        # bytes inflated at a time from a compressed member


class Source:
    """One array of a file: its shape and dtype (from the header), and `rows(axis, idx)`."""

    def __init__(self, path, shape, dtype, fortran, read_whole, mapped=None, stream=None):
        self.path, self.shape, self.dtype, self.fortran = path, shape, dtype, fortran
        self._whole, self._mapped, self._stream = read_whole, mapped, stream

    def rows(self, axis, idx) -> np.ndarray:
        """float64 copy of the rows idx (sorted whole numbers, or a slice) along axis."""
        if axis is None:
            return _float64(self._whole())
        if self._mapped is not None:
            return _float64(np.take(self._mapped(), _indices(idx), axis=axis))
        if axis == 0 and not self.fortran and self._stream is not None:
            return _float64(self._stream(_indices(idx, self.shape[0])))
        return _float64(np.take(self._whole(), _indices(idx), axis=axis))


def _float64(a):
    return np.array(a, dtype=np.float64)       # a copy: nothing stays mapped


def _indices(idx, n=None):
    if isinstance(idx, slice):
        return np.arange(idx.start, idx.stop)
    return np.asarray(idx, dtype=np.int64)


def npy_source(path, limit) -> Source:
    """The array of an .npy file, checked, memory-mapped."""
    try:
        with open(path, "rb") as f:
            shape, dtype, start = _header(f, path)
            f.seek(0, 2)
            size = f.tell()
    except DataFileError:
        raise
    except _READ_ERRORS as exc:
        raise DataFileError(path, f"cannot read the .npy file ({exc})") from None
    stored, _ = _needed(shape, dtype)
    if start + stored > size:
        raise DataFileError(path, f"truncated: the header declares shape {list(shape)} "
                                  f"({dtype}, {human(stored)}) but only {human(size - start)} "
                                  "follow it")

    def mapped():
        return npy.open_memmap(path, mode="r")

    def whole():
        require(path, f"the array {list(shape)} ({dtype})", stored, limit)
        return mapped()
    return Source(path, shape, dtype, False, whole, mapped=mapped)


def npz_sources(path, limit, only=None) -> dict:
    """NAME -> Source for the members of an .npz file (the wanted ones: `only`), checked."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, *_READ_ERRORS) as exc:
        raise DataFileError(path, f"not a readable .npz file ({exc})",
                            hint="an .npz file is written by numpy.savez(path, NAME=array, "
                                 "...)") from None
    with archive:
        # the sizes and headers are checked against the limit per member as it is read
        members = _members(path, archive, 1 << 62, "biuf", only)
        out = {}
        for name, info in members.items():
            with archive.open(info) as fp:
                version = npy.read_magic(fp)
                shape, fortran, dtype = (npy.read_array_header_1_0 if version == (1, 0)
                                         else npy.read_array_header_2_0)(fp)
                header = fp.tell()
            out[name] = _member(path, info, tuple(int(s) for s in shape), np.dtype(dtype),
                                fortran, header, limit)
        return out


def _member(path, info, shape, dtype, fortran, header, limit) -> Source:
    stored, _ = _needed(shape, dtype)

    def whole():
        require(path, f"member {info.filename!r} ({list(shape)}, {dtype})", stored, limit)
        with zipfile.ZipFile(path) as z, z.open(info) as fp:
            return npy.read_array(fp, allow_pickle=False)

    if info.compress_type == zipfile.ZIP_STORED:
        offset = _data_offset(path, info) + header

        def mapped():
            return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape,
                             order="F" if fortran else "C")
        return Source(path, shape, dtype, fortran, whole, mapped=mapped)

    row = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize

    def stream(idx):
        out = np.empty((len(idx),) + shape[1:], dtype=dtype)
        if len(idx) == 0:
            return out
        per = max(1, RAW_CHUNK // max(row, 1))
        with zipfile.ZipFile(path) as z, z.open(info) as fp:
            fp.read(header)
            done, at = 0, 0
            while done < len(idx):
                count = min(per, shape[0] - at)
                chunk = np.frombuffer(_read_exactly(fp, count * row, path, info),
                                      dtype=dtype).reshape((count,) + shape[1:])
                want = idx[(idx >= at) & (idx < at + count)]
                out[done:done + len(want)] = chunk[want - at]
                done += len(want)
                at += count
        return out
    return Source(path, shape, dtype, fortran, whole, stream=stream)


def _read_exactly(fp, nbytes, path, info) -> bytes:
    data = fp.read(nbytes)
    if len(data) != nbytes:
        raise DataFileError(path, f"member {info.filename!r} ends early")
    return data


def _data_offset(path, info) -> int:
    """Where a stored member's bytes begin: after its local file header (30 bytes, the
    name and the extra field, whose lengths the local header gives)."""
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)
    if len(local) != 30 or local[:4] != b"PK\x03\x04":
        raise DataFileError(path, f"member {info.filename!r}: bad local header")
    name_len, extra_len = struct.unpack("<HH", local[26:30])
    return info.header_offset + 30 + name_len + extra_len
