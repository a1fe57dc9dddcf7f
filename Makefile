# Two entry points for a newcomer (README.md): `make demo` and `make test`.
# Both create .venv on first use and install bmdsl with its pinned dependencies.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

$(BIN)/bmdsl: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

.PHONY: demo test
demo: $(BIN)/bmdsl
	$(BIN)/bmdsl run models/mlp.bm --force

test: $(BIN)/bmdsl
	$(BIN)/python -m pytest -q
