"""`bmdsl derive FILE [--latex] [--data DATA]`: print the derivation of a model.

Without data the sizes stay symbolic (p = d^2, q = c*d, ...) and the theorems whose
hypotheses involve sizes say so; with `--data` (a .npz/.csv file of the model's inputs and
target) the data is validated and bound, sizes become numbers, the pattern count P is known
and every theorem is decided (Theorem 3.3: m >= p + q, ...).
"""
from __future__ import annotations

from .registry import add_model_options, command, load_model
from .data_args import add_data_options


@command("derive", "print the convex program, BM factorization, cones, certificate and theorems")
def cmd_derive(args) -> int:
    derivation = load_model(args).derive()
    if args.data:
        from .data_args import read_data
        bound = derivation.bind(read_data(args.data, derivation.model, args.target))
        derivation = derivation.at(bound.sizes, bound.P)
        sizes = ", ".join(f"{k} = {v}" for k, v in sorted(bound.sizes.items()))
        print(f"data {', '.join(args.data)}: {sizes}; p = {bound.p}, q = {bound.q}, P = {bound.P}\n")
    print(derivation.latex() if args.latex else derivation.text())
    return 0


def _configure(p) -> None:
    add_model_options(p)
    p.add_argument("--latex", action="store_true", help="print LaTeX (an align* environment)")
    add_data_options(p, required=False, default_note="; binds the data to get numeric "
                     "sizes and decided theorems")


cmd_derive.configure = _configure
