"""The example models shipped with the package, found by name: `bmdsl run mlp`,
`bmdsl.load("relu")`.

They are the repository's models/*.bm, installed as the package `bmdsl.models` (pyproject
maps models/ there, as it maps grammar/ to `bmdsl.grammar`). In a source checkout whose
editable install predates that mapping, models/ beside the package is read instead.
A real file always wins over a shipped name: `resolve` is asked only for what is not a file.
"""
from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

from ..core.errors import BmdslError

log = logging.getLogger("bmdsl.check.shipped")


def _directory():
    try:
        folder = resources.files("bmdsl.models")
        if any(p.name.endswith(".bm") for p in folder.iterdir()):
            return folder
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
        pass
    return Path(__file__).resolve().parent.parent.parent / "models"


def shipped_models() -> dict:
    """{name: path-like} of every shipped model, by file stem, sorted."""
    folder = _directory()
    try:
        found = [p for p in folder.iterdir() if p.name.endswith(".bm")]
    except (FileNotFoundError, NotADirectoryError):
        return {}
    return {p.name[:-3]: p for p in sorted(found, key=lambda p: p.name)}


def resolve(name: str):
    """The shipped model `name` (`mlp` or `mlp.bm`; no directory part), else None."""
    if not name or "/" in name or "\\" in name:
        return None
    stem = name[:-3] if name.endswith(".bm") else name
    found = shipped_models().get(stem)
    if found is not None:
        log.info("%s: the shipped example model %s", name, found)
    return found


def unknown(name: str, reason: str) -> BmdslError:
    """The error for a name that is neither a readable file nor a shipped model."""
    names = ", ".join(shipped_models()) or "(none found)"
    return BmdslError(f"cannot read {name}: {reason}, and it is not a shipped model",
                      hint=f"give the path of a .bm file, or one of the shipped models: {names}")
