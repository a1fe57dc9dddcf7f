"""Model text to a checked `Model`: `parse`, `load` (a file, or a shipped model by name) and
`check` (a syntax tree from `parse(..., check=False)`). The package's `bmdsl.parse`,
`bmdsl.load` and `bmdsl.check` are these."""
from __future__ import annotations

from pathlib import Path


def parse(text: str, *, path: str = "<string>", check: bool = True):
    """Parse model text. Returns the checked `Model`, or with `check=False` the unchecked
    syntax tree (`bmdsl.front.ast.Program`) for tooling. Raises a `BmdslError` subclass."""
    from ..front.syntax import parse_program
    program = parse_program(text, path)
    if not check:
        return program
    from .semantic import check as run_check
    return run_check(program)


def load(path: str | Path, *, check: bool = True):
    """Read and parse a `.bm` file (see `parse`). A bare name that is not a file, such as
    "mlp" or "relu.bm", is one of the example models shipped with bmdsl
    (`shipped_models()`); an unknown name lists them."""
    p = Path(path)
    if not _exists(p):
        from .shipped import resolve, unknown
        found = resolve(str(path))
        if found is not None:
            return parse(found.read_text(), path=str(found), check=check)
        if p.name == str(path):      # a bare name: perhaps a shipped model was meant
            raise unknown(str(path), "no such file")
    from ..front.modeltext import read_text  # size limit; UTF-8, else the line/column of the bad byte
    return parse(read_text(p), path=str(p), check=check)


def _exists(p: Path) -> bool:
    """p.exists(), where a name the system refuses (too long, a NUL byte) counts as a
    file, so that reading it reports the system's reason."""
    try:
        return p.exists()
    except (OSError, ValueError):
        return True


def check(program):
    """Check a syntax tree from `parse(..., check=False)`."""
    from .semantic import check as run_check
    return run_check(program)
