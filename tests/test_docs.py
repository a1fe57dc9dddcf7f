"""Every ```python block in the user docs runs (in order, one namespace per file), so the
docs cannot rot. Blocks that show an API signature rather than a program are marked
```python-api and are only compiled."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ["README.md", "docs/tutorial.md", "docs/api.md"]
BLOCK = re.compile(r"^```(python|python-api)\n(.*?)^```", re.S | re.M)


def blocks(path: Path):
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(path.read_text())]


@pytest.mark.parametrize("doc", DOCS)
def test_doc_examples_run(doc, monkeypatch, tmp_path):
    path = ROOT / doc
    found = blocks(path)
    assert found, f"{doc} has no python examples"
    monkeypatch.chdir(ROOT)   # examples use repository paths such as models/mlp.bm
    namespace = {"__name__": f"docs_{Path(doc).stem}"}
    for kind, code in found:
        compiled = compile(code, f"{doc}", "exec")
        if kind == "python":
            exec(compiled, namespace)  # noqa: S102 - our own documentation
