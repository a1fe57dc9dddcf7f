"""`bmdsl certify FILE --data DATA --weights W.npz`: certify factors trained anywhere.

W.npz holds U [P, m, *w1_shape] and V [P, m, *w2_shape] (or Z [P, p, q], a point of the
convex program such as the file `bmdsl solve` writes), and optionally the patterns as
saved by `PatternSet.to_npz_dict` (masks, gates, source, seed), which are then used so
that the certificate refers to the program the factors were trained for.  Prints
`Certificate.text()` (or `--json`).  Mistakes exit 1 with a message, never a traceback.
"""
from __future__ import annotations

import json

from ..certificates.dualnorms import CONE_METHODS
from .registry import add_model_options, command, load_model
from ..core.errors import DataError
from . import options
from .data_args import PATTERN_KEYS, add_data_options, pattern_set


def patterns_from(weights: dict, path):
    """The patterns saved beside the factors, None if there are none."""
    present = [k for k in PATTERN_KEYS if k in weights]
    if not present:
        return None
    missing = [k for k in PATTERN_KEYS if k not in weights]
    if missing:
        raise DataError(f"{path} has {', '.join(present)} but not {', '.join(missing)}",
                        hint="save the patterns with PatternSet.to_npz_dict()")
    return pattern_set(weights, path)


@command("certify", "certify BM factors (or a convex point) trained anywhere")
def cmd_certify(args) -> int:
    from ..certificates import certify, certify_lifted
    from ..workflow.prediction import read_weights
    from .data_args import read_data
    model = load_model(args)
    data = read_data(args.data, model, args.target)   # paths checked before the weights
    weights = read_weights(args.weights)
    patterns = patterns_from(weights, args.weights)
    if patterns is not None and not model.derive().activation.uses_patterns:
        raise DataError(f"{args.weights} carries activation patterns but model {model.name} "
                        f"is {model.activation.name}", hint="pass --activation")
    bound = model.derive().bind(data, patterns=patterns)
    options = dict(cone_method=args.cone_method, stationarity_tol=args.stationarity_tol,
                   refine_iters=args.refine_iters)
    if "U" in weights and "V" in weights:
        cert = certify(bound, weights["U"], weights["V"], **options)
    elif "Z" in weights and weights["Z"].size:
        cert = certify_lifted(bound, weights["Z"], **options)
    else:
        raise DataError(f"{args.weights} holds neither U and V nor Z (found "
                        f"{', '.join(sorted(weights)) or 'nothing'})",
                        hint="numpy.savez(path, U=U, V=V) with U [P, m, *w1_shape], "
                             "V [P, m, *w2_shape]")
    if bound.patterns is not None and patterns is None:
        print(f"note: no patterns in {args.weights}; using the model's "
              f"({bound.patterns.source}, {bound.P} patterns)")
    print(json.dumps(cert.to_dict(), indent=2) if args.json else cert.text())
    return 0


def _configure(p) -> None:
    add_model_options(p)
    add_data_options(p)
    p.add_argument("--weights", required=True, metavar="NPZ",
                   help=".npz with U, V (or Z) and optionally the patterns")
    p.add_argument("--cone-method", choices=list(CONE_METHODS), default="auto",
                   help="ReLU cone dual norm (q > 1): drop the cone (spectral), a cheap dual "
                        "certificate (kkt) or the SDP bound (sdp); auto chooses by size")
    p.add_argument("--stationarity-tol", type=options.positive_real, default=1e-3,
                   help="Theorem 3.4 is applied when the relative residual is below this "
                        "(finite, > 0)")
    p.add_argument("--refine-iters", type=options.count, default=1000,
                   help="proximal-gradient iterations for a better dual point (0: none)")
    p.add_argument("--json", action="store_true", help="print the certificate as JSON")


cmd_certify.configure = _configure
