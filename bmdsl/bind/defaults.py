"""Built-in default data for a model: what `bmdsl run FILE` uses without `--data`.

One table of rules, tried in order; each looks only at the ranks of the model's data
inputs and target, never at the model's name:
  one input [n, d] and target [n, c]       -> three-class spiral (paper sec. 4.1, Fig. 3)
  one input [n, d] and target [n]          -> two-class spiral, labels +-1
  one input [n, ch, height, width]         -> small blob images, one-hot classes
  one input [n, s, d] and target [n, s, c] -> token sequences from a self-attention teacher
  anything else                            -> Gaussian inputs, target from a random teacher
                                              network of the model itself
Declared `size x = v` values are respected (a rule that cannot honour them is skipped).
Gate tensors (`gates = G`) get standard normal gates.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import datasets

SMALL = 4  # size of any axis no rule fixes


@dataclass(frozen=True)
class Rule:
    name: str
    ranks: tuple[tuple[int, ...], int]  # (ranks of the data inputs, rank of the target)
    make: Callable[[dict], dict]  # fixed sizes -> {"input": array, "target": array}
    fixed: Callable[[dict], bool]  # can it honour the declared sizes?


def _spiral(sizes):
    d = datasets.spiral(n=sizes.get("n", 150), classes=sizes.get("c", 3))
    return {"input": d["X"], "target": d["Y"]}


def _spiral_scalar(sizes):
    d = datasets.spiral_scalar(n=sizes.get("n", 60))
    return {"input": d["X"], "target": d["Y"]}


def _images(sizes):
    d = datasets.images(n=sizes.get("n", 16), channels=sizes.get("ch", 1),
                        height=sizes.get("h", 6), width=sizes.get("w", 6), classes=sizes.get("c", 2))
    return {"input": d["I"], "target": d["Y"]}


def _sequences(sizes):
    d = datasets.sequences(n=sizes.get("n", 8), tokens=sizes.get("s", 4),
                           features=sizes.get("d", 3), outputs=sizes.get("c", 2))
    return {"input": d["X"], "target": d["Y"]}


RULES = (
    Rule("spiral", ((2,), 2), _spiral, lambda s: s.get("d", 2) == 2),
    Rule("spiral (scalar)", ((2,), 1), _spiral_scalar, lambda s: s.get("d", 2) == 2 and "c" not in s),
    Rule("images", ((4,), 2), _images, lambda s: True),
    Rule("sequences", ((3,), 3), _sequences, lambda s: True),
)


def _positional_sizes(model, inputs) -> dict:
    """Declared values, keyed by the role each axis plays in the rules (n, d, c, ...)."""
    roles = {2: ("n", "d"), 4: ("n", "ch", "h", "w"), 3: ("n", "s", "d")}
    fixed = {}
    (x,) = inputs
    for role, dim in zip(roles[len(x.dims)], x.dims):
        if model.size(dim).value is not None:
            fixed[role] = model.size(dim).value
    t = model.target
    if len(t.dims) >= 2 and model.size(t.dims[-1]).value is not None:
        fixed["c"] = model.size(t.dims[-1]).value  # the class / output axis is last
    return fixed


def default_data(model, seed: int = 0) -> tuple[dict[str, np.ndarray], str]:
    """Arrays by tensor name for `model`, and the name of the rule that made them."""
    gates = model.activation.gates
    inputs = [t for t in model.inputs if t.name != gates]
    data, rule_name = None, "teacher"
    key = (tuple(len(t.dims) for t in inputs), len(model.target.dims))
    for rule in RULES:
        if rule.ranks == key:
            fixed = _positional_sizes(model, inputs)
            if rule.fixed(fixed):
                made = rule.make(fixed)
                data = {inputs[0].name: made["input"], model.target.name: made["target"]}
                rule_name = rule.name
                break
    if data is None:
        data = _teacher(model, inputs, seed)
    if gates:
        w1 = [_size(model, d, {}) for d in model.first_weight.dims]
        data[gates] = np.random.default_rng(seed).standard_normal([16] + w1)
    return data, rule_name


def _size(model, dim: str, drawn: dict) -> int:
    v = model.size(dim).value
    return v if v is not None else drawn.setdefault(dim, SMALL)


def _teacher(model, inputs, seed: int) -> dict:
    """Gaussian inputs; target = the model's own network (linear units) with random weights."""
    rng = np.random.default_rng(seed)
    drawn = {}
    data = {t.name: rng.standard_normal([_size(model, d, drawn) for d in t.dims]) for t in inputs}
    linear = model.with_activation("linear").derive()
    shape = [_size(model, d, drawn) for d in model.target.dims]
    bound = linear.bind({**data, model.target.name: np.zeros(shape)})
    U = rng.standard_normal((1, 2) + bound.w1_shape)
    V = rng.standard_normal((1, 2) + bound.w2_shape)
    y = bound.predict_bm(U, V)
    data[model.target.name] = y / (y.std() or 1.0) + 0.1 * rng.standard_normal(y.shape)
    return data
