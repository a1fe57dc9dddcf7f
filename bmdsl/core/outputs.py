"""Output files: outputs never destroy inputs, never follow links, and replace nothing
unless asked (`--force`); every write is atomic.

    outputs.check_outputs([npz, record], command_inputs(args), args.force)   # before work
    outputs.write_atomic(npz, lambda tmp: numpy.savez(tmp, **arrays))       # after it

`check_outputs` runs before any work, so a command that would overwrite its own model,
data, patterns, weights or the checkpoint it resumes stops at once instead of after a
long solve. `write_atomic` writes a fresh temporary file (created with O_EXCL, so an
existing name or link is never opened) in the target's directory and renames it over the
target: a reader sees the old file or the new one, never half a file, and a symbolic link
that appears at the target is replaced, not written through.
"""
from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from .errors import BmdslError

# `--data NAME=FILE` (commands/solve.py read_data): the file part is the input
_NAMED = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.+)$")
# argument attributes that name input files, whichever command has them
INPUT_ARGS = ("file", "data", "test_data", "patterns", "patterns_from", "weights", "resume")


class OutputError(BmdslError):
    """An output path that would destroy an input, follow a link, or replace a file."""

    kind = "output error"


def command_inputs(args) -> list[str]:
    """The files a command reads, from its parsed arguments (those that exist: a pattern
    count or a shipped model's name is not a file)."""
    found = []
    for name in INPUT_ARGS:
        value = getattr(args, name, None)
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if not isinstance(item, (str, os.PathLike)):
                continue
            item = os.fspath(item)
            named = _NAMED.match(item)
            for candidate in (item, named.group(2) if named else None):
                if candidate and os.path.isfile(candidate):
                    found.append(candidate)
    return found


def _identity(path):
    st = os.stat(path)
    return st.st_dev, st.st_ino


def check_outputs(paths, inputs, force: bool = False, *, make_dirs: bool = False) -> list[Path]:
    """Refuse (OutputError) an output that is a symbolic link, a directory, an input file
    (the same file, by device and inode, whatever its name), another output of the same
    command, or an existing file without `force`; or whose directory is missing (unless
    `make_dirs`: the command creates it) or not writable. Returns the paths as Paths."""
    taken = {}
    for path in inputs:
        try:
            taken[_identity(path)] = os.fspath(path)
        except OSError:
            pass                           # a missing input is reported by its reader
    seen, out = {}, []
    for path in map(Path, paths):
        key = os.path.normcase(os.path.abspath(path))
        if key in seen:
            raise OutputError(f"{path} is named for two outputs of this command",
                              hint="give the outputs different names")
        seen[key] = path
        _check_directory(path.parent, make_dirs)
        if path.is_symlink():
            raise OutputError(f"{path} is a symbolic link (to {os.readlink(path)}); bmdsl "
                              "does not write through links",
                              hint="remove the link or choose another output path")
        if path.exists():
            if path.is_dir():
                raise OutputError(f"{path} is a directory, not an output file",
                                  hint="choose a file name for the output")
            source = taken.get(_identity(path))
            if source is not None:
                same = "" if os.path.abspath(source) == os.path.abspath(path) else \
                    f" (the same file as {source})"
                raise OutputError(f"{path} is an input of this command{same}; writing it "
                                  "would destroy the input",
                                  hint="choose another output path (--force never allows "
                                       "this)")
            if not force:
                raise OutputError(f"{path} already exists",
                                  hint="pass --force to replace it, or choose another "
                                       "output path")
        out.append(path)
    return out


def _check_directory(directory: Path, make_dirs: bool) -> None:
    """The directory an output goes to: an existing writable directory, or (make_dirs)
    one that can be created under an existing writable one."""
    probe = directory if str(directory) else Path(".")
    while not probe.exists():
        if not make_dirs:
            raise OutputError(f"directory {directory} does not exist",
                              hint="create it first or choose another output path")
        if probe.is_symlink():             # a dangling link: mkdir would fail on it
            raise OutputError(f"{probe} is a dangling symbolic link, not a directory")
        probe = probe.parent if str(probe.parent) != str(probe) else Path(".")
    if not probe.is_dir():
        raise OutputError(f"{probe} is not a directory", hint="choose another output path")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputError(f"directory {probe} is not writable",
                          hint="choose another output path")


def make_directory(directory) -> Path:
    """mkdir -p for an output directory (after check_outputs), as an OutputError."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the output directory {directory}: "
                          f"{exc.strerror or exc}") from None
    return directory


def write_atomic(path, write) -> Path:
    """`write(tmp)` writes a new temporary file (same directory, same suffix, so writers
    that choose a format by suffix still do), which then replaces `path` (os.replace).
    On any failure the temporary file is removed and `path` is left as it was; an
    OSError becomes an OutputError."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    tmp = None
    try:
        for _ in range(16):                # O_EXCL: a name already taken is never opened
            name = directory / f".{path.name}.{secrets.token_hex(6)}.tmp{path.suffix}"
            try:
                os.close(os.open(name, flags, 0o666))
                tmp = name
                break
            except FileExistsError:
                continue
        if tmp is None:
            raise FileExistsError(f"no free temporary name in {directory}")
        write(os.fspath(tmp))
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        error = OutputError(f"cannot write {path}: {exc.strerror or exc}")
        error.reason = exc.strerror or str(exc)
        raise error from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return path


def write_text_atomic(path, text: str) -> Path:
    """write_atomic for a text file (UTF-8)."""
    return write_atomic(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def add_force_option(parser) -> None:
    """`--force`: replace existing output files (never an input, never through a link)."""
    parser.add_argument("--force", action="store_true",
                        help="replace existing output files (an input file or a symbolic "
                             "link is refused even then)")


def npz_path(path) -> Path:
    """The path numpy.savez really writes: .npz appended when missing. A directory given
    as the output is refused (numpy would write DIR.npz beside it, not a file inside)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise OutputError(f"{path} is a directory, not an output file",
                          hint=f"name a file inside it, e.g. {os.path.join(path, 'out.npz')}")
    return Path(path if path.lower().endswith(".npz") else path + ".npz")
