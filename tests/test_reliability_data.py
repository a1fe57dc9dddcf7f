"""Data files read safely (issue 18): headers, declared sizes and dtypes are checked before
anything is read, paths that are not regular files are named for what they are, numpy's
pickle advice never reaches the user, and every refusal names the file, the member, what is
wrong and what is accepted.  Sizes are declared, never allocated: each test is fast."""
from __future__ import annotations

import io
import os
import time
import zipfile

import numpy as np
import pytest

from bmdsl.cli import main
from bmdsl.commands.data_args import read_data, read_patterns
from bmdsl.bind.datafile import ENV, data_limit, parse_size
from bmdsl.bind.datasets import DataFileError, load_data, save_data, spiral
from bmdsl.core.errors import DataError

MLP = "models/mlp.bm"


def npy_header(shape, descr="<f8") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False,
                                               "shape": shape})
    return buf.getvalue()


def refused(path, *fragments, **kw):
    with pytest.raises(DataFileError) as info:
        load_data(path, **kw)
    text = info.value.render()
    for f in (str(path), *fragments):
        assert f in text, (f, text)
    return info.value


def test_npz_member_without_npy_header(tmp_path):
    with zipfile.ZipFile(tmp_path / "a.npz", "w") as z:
        z.writestr("X.npy", b"hello, not an array")
    refused(tmp_path / "a.npz", "member 'X.npy'", "no .npy header", "accepted: numeric arrays")


def test_npz_member_that_is_not_an_array(tmp_path):
    with zipfile.ZipFile(tmp_path / "a.npz", "w") as z:
        z.writestr("notes.txt", b"hello")
    refused(tmp_path / "a.npz", "member 'notes.txt'", "not an array", "NAME.npy")


def test_zip_bomb_is_refused_from_the_directory_before_inflating(tmp_path, monkeypatch):
    # 64 MiB of declared zeros compress to ~64 KB; with a 16 MiB limit nothing is inflated
    n = 8 * 1024 ** 2
    with zipfile.ZipFile(tmp_path / "bomb.npz", "w", compression=zipfile.ZIP_DEFLATED) as z:
        with z.open("X.npy", "w") as f:
            f.write(npy_header((n,)))
            for _ in range(8):
                f.write(bytes(n))
    assert os.path.getsize(tmp_path / "bomb.npz") < 1024 ** 2
    monkeypatch.setenv(ENV, "16M")
    t = time.perf_counter()
    refused(tmp_path / "bomb.npz", "64.0 MiB", "data limit 16.0 MiB", ENV)
    assert time.perf_counter() - t < 2.0


def test_header_declaring_more_than_the_member_holds(tmp_path):
    # a forged header: 10^12 float64 declared in a 64-byte member (whose zip size is
    # honest): the header disagrees with the member, refused before any allocation
    with zipfile.ZipFile(tmp_path / "f.npz", "w") as z:
        z.writestr("X.npy", npy_header((10 ** 12,)) + bytes(64))
    err = refused(tmp_path / "f.npz", "member 'X.npy'", "declares shape [1000000000000]",
                  max_bytes=10 ** 15)
    assert "holds 64 B" in err.message


def test_truncated_npy(tmp_path):
    (tmp_path / "x.npy").write_bytes(npy_header((100, 3)) + bytes(80))
    refused(tmp_path / "x.npy", "truncated", "[100, 3]", name="X")


@pytest.mark.parametrize("array, what", [
    (np.array([{"a": 1}, None], dtype=object), "Python objects"),
    (np.array(["a", "b"]), "not numeric"),
    (np.ones(3) + 1j, "complex"),
    (np.zeros(2, dtype=[("a", "f8"), ("b", "i4")]), "structured"),
])
def test_non_numeric_dtypes_are_refused_from_the_header(tmp_path, array, what):
    np.savez(tmp_path / "d.npz", X=array, allow_pickle=True)
    refused(tmp_path / "d.npz", "member 'X.npy'", what, "accepted: numeric arrays")
    np.save(tmp_path / "x.npy", array, allow_pickle=True)
    refused(tmp_path / "x.npy", what, name="X")


def test_text_file_as_npy_or_npz_never_mentions_pickle(tmp_path):
    (tmp_path / "t.npy").write_text("1,2,3\n4,5,6\n")
    err = refused(tmp_path / "t.npy", "no .npy header", ".csv", name="X")
    assert "pickle" not in err.render()
    (tmp_path / "t.npz").write_text("1,2,3\n")
    err = refused(tmp_path / "t.npz", "not a readable .npz file", "numpy.savez")
    assert "pickle" not in err.render()
    np.save(tmp_path / "real.npy", np.ones(2))
    os.rename(tmp_path / "real.npy", tmp_path / "real.npz")
    refused(tmp_path / "real.npz", "it is a .npy file", "X=FILE.npy")


def test_directory_and_fifo_are_named_for_what_they_are(tmp_path):
    (tmp_path / "dir.npz").mkdir()
    refused(tmp_path / "dir.npz", "is a directory")
    os.mkfifo(tmp_path / "pipe.npz")            # an open() would block: never opened
    refused(tmp_path / "pipe.npz", "not a regular file", "FIFO")
    refused(tmp_path / "missing.npz", "no such file")


def test_csv_is_refused_as_it_passes_the_limit(tmp_path):
    rows = "\n".join("1.5,2.5,3.5" for _ in range(20_000))
    (tmp_path / "big.csv").write_text("a,b,y\n" + rows + "\n")
    refused(tmp_path / "big.csv", "more than the data limit", max_bytes=100_000)
    assert load_data(tmp_path / "big.csv", target=["y"], max_bytes=10 ** 7)["X"].shape == \
        (20_000, 2)
    refused(tmp_path / "big.csv", "on disk", max_bytes=1000)   # the file size, first


def test_non_utf8_csv(tmp_path):
    (tmp_path / "b.csv").write_bytes(b"X[0]\n\xff\xfe\n")
    refused(tmp_path / "b.csv", "not UTF-8")


def test_limit_from_the_environment(monkeypatch):
    monkeypatch.setenv(ENV, "3G")
    assert data_limit() == 3 * 1024 ** 3
    assert data_limit(123) == 123
    assert parse_size("512M") == 512 * 1024 ** 2 and parse_size("2GiB") == 2 * 1024 ** 3
    monkeypatch.setenv(ENV, "lots")
    with pytest.raises(DataError, match="not a size") as info:
        data_limit()
    assert "e.g. 512M" in info.value.render()
    monkeypatch.delenv(ENV)
    assert 0 < data_limit() <= 2 * 1024 ** 3


def test_files_together_must_fit_the_limit(tmp_path):
    d = spiral(40, 3, seed=0)
    np.save(tmp_path / "x.npy", d["X"])
    np.save(tmp_path / "y.npy", d["Y"])
    items = [f"X={tmp_path / 'x.npy'}", f"Y={tmp_path / 'y.npy'}"]
    assert set(read_data(items, max_bytes=10 ** 6)) == {"X", "Y"}
    with pytest.raises(DataFileError, match="together take"):
        read_data(items, max_bytes=1100)          # each fits (640 B, 960 B), not both


def test_every_path_is_checked_before_any_file_is_read(tmp_path, monkeypatch):
    save_data(tmp_path / "d.npz", spiral(10, 3))
    import bmdsl.bind.datasets as ds
    monkeypatch.setattr(ds, "load_data", lambda *a, **k: pytest.fail("read before checking"))
    with pytest.raises(DataFileError, match="no such file"):
        read_data([str(tmp_path / "d.npz"), f"Y={tmp_path / 'nope.npy'}"])


def test_patterns_file_is_read_safely(tmp_path):
    with zipfile.ZipFile(tmp_path / "p.npz", "w") as z:
        z.writestr("masks.npy", b"junk")
    with pytest.raises(DataFileError, match="member 'masks.npy'"):
        read_patterns(tmp_path / "p.npz")
    (tmp_path / "pdir").mkdir()
    with pytest.raises(DataFileError, match="is a directory"):
        read_patterns(tmp_path / "pdir")


@pytest.mark.parametrize("command", ["solve", "train", "certify", "derive", "run"])
def test_cli_refusals_exit_1_without_traceback(tmp_path, capsys, command):
    with zipfile.ZipFile(tmp_path / "a.npz", "w") as z:
        z.writestr("X.npy", b"no header")
    extra = {"certify": ["--weights", str(tmp_path / "w.npz")],
             "run": ["--output", str(tmp_path / "out")]}.get(command, [])
    code = main([command, MLP, "--data", str(tmp_path / "a.npz"), *extra])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert "a.npz: member 'X.npy': no .npy header" in err
