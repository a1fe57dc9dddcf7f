"""bind/rowread.py: the rows of .npy and .npz arrays read without the others (a rank of
bmdsl train --nproc reads only its rows), against numpy reading everything."""
import zipfile

import numpy as np
import pytest

from bmdsl.bind import rowread
from bmdsl.bind.datafile import DataFileError


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"X": rng.standard_normal((53, 3, 2)), "Y": rng.integers(0, 4, 53).astype(np.int32),
              "G": rng.standard_normal((5, 3)), "F": np.asfortranarray(rng.standard_normal((53, 4)))}
    np.savez(tmp_path / "s.npz", **arrays)
    np.savez_compressed(tmp_path / "c.npz", **arrays)
    np.save(tmp_path / "x.npy", arrays["X"])
    return tmp_path, arrays


@pytest.mark.parametrize("kind", ["s.npz", "c.npz"])
@pytest.mark.parametrize("idx", [slice(0, 53), slice(17, 40), slice(52, 53), [0, 5, 6, 51],
                                 np.arange(0)])
def test_rows_of_npz_members_equal_numpy(files, kind, idx, monkeypatch):
    path, arrays = files
    monkeypatch.setattr(rowread, "RAW_CHUNK", 64)       # many chunks of a compressed member
    sources = rowread.npz_sources(path / kind, 1 << 30)
    stored = {i.filename: i.compress_type for i in zipfile.ZipFile(path / kind).infolist()}
    assert set(stored.values()) == {zipfile.ZIP_STORED if kind == "s.npz" else
                                    zipfile.ZIP_DEFLATED}
    want = np.arange(53)[idx] if isinstance(idx, slice) else np.asarray(idx, dtype=int)
    for name in ("X", "Y", "F"):
        got = sources[name].rows(0, idx)
        assert got.dtype == np.float64 and np.array_equal(got, arrays[name][want])
    assert np.array_equal(sources["G"].rows(None, idx), arrays["G"])     # no sample axis
    assert np.array_equal(sources["X"].rows(1, [0, 2]), arrays["X"][:, [0, 2]])


def test_rows_of_an_npy_file_and_bad_files(files):
    path, arrays = files
    src = rowread.npy_source(path / "x.npy", 1 << 30)
    assert src.shape == (53, 3, 2) and np.array_equal(src.rows(0, slice(3, 9)), arrays["X"][3:9])
    raw = (path / "x.npy").read_bytes()
    (path / "short.npy").write_bytes(raw[:-8])
    with pytest.raises(DataFileError, match="truncated"):
        rowread.npy_source(path / "short.npy", 1 << 30)
    np.save(path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataFileError, match="Python objects"):
        rowread.npy_source(path / "o.npy", 1 << 30)
    (path / "t.npz").write_text("not a zip")
    with pytest.raises(DataFileError, match="not a readable .npz"):
        rowread.npz_sources(path / "t.npz", 1 << 30)
