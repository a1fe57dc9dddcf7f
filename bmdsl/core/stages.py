"""The fluent API's links to later stages: `model.derive()`, `model.summary()`,
`derivation.bind(data)`, `bound.to_cvxpy()`, `bound.to_torch()`.

A stage never imports a later one (docs/architecture.md, the import rule). Its fluent
method looks the later stage up here instead; the package facade (bmdsl/__init__.py, the
top of the pipeline, always imported before any of its modules) fills this table, each
entry importing its stage only when called.
"""
LATER: dict = {}


def later(name: str):
    """The entry point of a later stage, as the facade registered it."""
    return LATER[name]
