"""The wheel ships every subpackage, the grammar and the built-in architectures: the
package list in pyproject.toml is explicit (grammar/ is mapped in), so a new subpackage
must be added there; this test catches one that is not."""
from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_subpackage_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts)
             for p in (ROOT / "bmdsl").rglob("__init__.py")}
    assert found <= listed, f"add to pyproject.toml packages: {sorted(found - listed)}"
    assert config["package-dir"]["bmdsl.grammar"] == "grammar"
    assert (ROOT / "grammar" / "bmdsl.lark").exists()
    data = config["package-data"]
    assert "*.lark" in data["bmdsl.grammar"] and "*.bm" in data["bmdsl.architectures"]
