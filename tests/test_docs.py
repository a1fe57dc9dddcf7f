"""Every ```python block in the user docs runs (in order, one namespace per file), so the
docs cannot rot. Blocks that show an API signature rather than a program are marked
```python-api and are only compiled. The docs are found, not listed: README.md and every
docs/*.md with a python block; a new page is covered the day it is written.

The examples run in a scratch directory holding a link to the repository's models/ (they
use paths such as models/mlp.bm and may write files, which must not land in the
repository). And the docs stand alone: they cite the papers, never files a user does not
have."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"^```(python|python-api)\n(.*?)^```", re.S | re.M)
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
# what only the project's internal notes had: a user cannot follow these references
INTERNAL = re.compile(r"design\.md|\bseeds?/|\bseed 00\d|\b00[0-9]_[0-9a-f]{6,}")


def blocks(path: Path):
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(path.read_text())]


WITH_CODE = [p.relative_to(ROOT).as_posix() for p in PAGES if blocks(p)]


def test_the_pages_with_examples_are_found():
    # the pages known to carry examples; more may join, none may silently drop out
    assert {"README.md", "docs/tutorial.md", "docs/api.md", "docs/language.md",
            "docs/cvxpy.md", "docs/trainer.md"} <= set(WITH_CODE)


@pytest.mark.parametrize("doc", WITH_CODE)
def test_doc_examples_run(doc, monkeypatch, tmp_path):
    (tmp_path / "models").symlink_to(ROOT / "models", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": f"docs_{Path(doc).stem}"}
    for kind, code in blocks(ROOT / doc):
        compiled = compile(code, doc, "exec")
        if kind == "python":
            exec(compiled, namespace)  # noqa: S102 - our own documentation


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_docs_cite_papers_not_internal_files(page):
    found = [f"{page.name}:{n}: {line.strip()}" for n, line in
             enumerate(page.read_text().splitlines(), 1) if INTERNAL.search(line)]
    assert not found, "cite the paper (Sahiner et al. 2024, Pilanci & Ergen 2020):\n" + \
        "\n".join(found)


SOURCES = [p for folder in ("bmdsl", "bench", "models", "grammar", "tests", "examples")
           for p in sorted((ROOT / folder).rglob("*")) if p.suffix in (".py", ".bm", ".lark")
           and p.name != "test_docs.py"]


def test_code_and_tests_cite_papers_not_internal_files():
    """Docstrings and comments are read too (and pasted into emitted modules)."""
    found = [f"{p.relative_to(ROOT)}:{n}: {line.strip()}" for p in SOURCES
             for n, line in enumerate(p.read_text().splitlines(), 1) if INTERNAL.search(line)]
    assert len(SOURCES) > 100 and not found, \
        "cite the paper (Sahiner et al. 2024, Pilanci & Ergen 2020):\n" + "\n".join(found)
