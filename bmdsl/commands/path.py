"""`bmdsl path FILE`: a regularization path, from beta_max down a log grid (bmdsl/workflow/path.py).

Each point is trained by the BM method from the previous point's factors (where no convex
warm start applies; `--warm`) and certified; prints a table of beta, objective, active units,
gap bound, steps and (with `--test-data` or `--test-fraction`) the test metrics, and writes
a figure (`--plot`, .png/.pdf/.svg) and a JSON record (`--json`).
"""
from __future__ import annotations

import json

import numpy as np

from .registry import add_model_options, command, load_model
from ..core.errors import BmdslError
from . import options
from .data_args import add_data_options
from .heldout import add_test_options, held_out

WARM = {"auto": "auto", "yes": True, "no": False}


def _betas(text):
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise BmdslError(f"--betas {text!r} is not a comma-separated list of numbers",
                         hint="e.g. --betas 1,0.1,0.01") from None
    if not values or any(not (v > 0 and v < float("inf")) for v in values):
        raise BmdslError(f"--betas {text!r}: every beta must be a positive finite number")
    return values


def _metrics(model, test):
    """Per point: the test metrics of the factors' network on the held-out data."""
    if test is None:
        return None
    from ..workflow.prediction import evaluate

    def metrics(U, V, bound):
        weights = {"U": U, "V": V, "activation": bound.activation.name}
        if bound.model.bias.output:
            weights["b2"] = bound.output_bias(U, V)
        if bound.patterns is not None:
            weights["gates"] = np.array(bound.patterns.gates)
        report = evaluate(bound.model, weights, test)
        return {f"test {k}": v for k, v in report.items()
                if k != "n" and isinstance(v, float)}
    return metrics


def _figure(path, result, title):
    from ..workflow.plot import Panel, save_figure
    pts = [p for p in result.points]
    betas = [p.beta for p in pts]
    panels = [Panel("objective", {"objective": (betas, [p.objective for p in pts])},
                    "objective", xlabel="beta", log=False),
              Panel("active units", {"active units": (betas, [p.active_units for p in pts])},
                    "units", xlabel="beta", log=False, markers=True),
              Panel("certified relative gap", {"gap bound": (betas, [p.gap_bound for p in pts])},
                    "gap bound (log scale)", xlabel="beta", markers=True)]
    tests = sorted({k for p in pts for k in p.metrics})
    if tests:
        panels.append(Panel("test metrics", {k: (betas, [p.metrics.get(k) for p in pts])
                                             for k in tests}, "value", xlabel="beta",
                            log=False, markers=True))
    for panel in panels:
        panel.xlog = True                        # a geometric grid: even steps on a log axis
    return save_figure(path, title, panels)


@command("path", "a certified regularization path from beta_max down a log grid of beta")
def cmd_path(args) -> int:
    from ..workflow.path import regularization_path
    from ..core.outputs import check_outputs, command_inputs
    outs = [p for p in (args.plot, args.json) if p]
    check_outputs(outs, command_inputs(args), getattr(args, "force", False))
    model = load_model(args)
    if args.data:
        from .data_args import read_data
        data, source = read_data(args.data, model, args.target), ", ".join(args.data)
    else:
        from ..bind.defaults import default_data
        data, rule = default_data(model)
        source = f"built-in {rule}"
    train, test, note = held_out(args, model, data)
    print(f"model {model.name}: {model.activation.name}, loss {model.loss}, C = "
          f"{model.regularizer.C}, R = {model.regularizer.R}; data: {source}"
          + (f"; {note}" if note else ""))
    result = regularization_path(
        model, train, betas=_betas(args.betas) if args.betas else None, n_betas=args.n_betas,
        ratio=args.ratio, warm=WARM[args.warm], max_steps=args.max_steps,
        cert_tol=args.cert_tol, time_limit=args.time_limit, device=args.device,
        method=args.method, metrics=_metrics(model, test),
        callback=lambda p: print(f"  beta {p.beta:.4g}: objective {p.objective:.6g}, "
                                 f"gap bound {p.gap_bound:.2e}, {p.steps} steps", flush=True))
    print(result.table())
    if args.plot:
        _figure(args.plot, result, f"{model.name}: regularization path")
        print(f"figure: {args.plot}")
    if args.json:
        from ..core.outputs import write_text_atomic
        write_text_atomic(args.json, json.dumps(dict(result.to_dict(), data=source),
                                                indent=2, default=float))
        print(f"record: {args.json}")
    unmet = [p.beta for p in result.points if not p.gap_bound <= args.cert_tol]
    if unmet:
        print(f"not certified to --cert-tol {args.cert_tol:g} at beta = "
              f"{', '.join(f'{b:.4g}' for b in unmet)} (raise --max-steps or --time-limit)")
        return 3
    return 0


def _configure(p) -> None:
    add_model_options(p)
    add_data_options(p, required=False, default_note=" (default: the model's built-in data)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--betas", help="comma-separated values of beta (run largest first)")
    group.add_argument("--n-betas", type=options.positive_int, default=8, metavar="K",
                       help="K values from beta_max down to --ratio beta_max (default 8)")
    p.add_argument("--ratio", type=float, default=1e-3,
                   help="smallest beta / beta_max on the grid (default 1e-3)")
    p.add_argument("--warm", choices=tuple(WARM), default="auto",
                   help="start each point from the previous one's factors: auto (where no "
                   "convex warm start applies; default), yes, no")
    p.add_argument("--cert-tol", type=options.positive_real, default=1e-6,
                   help="certified relative gap each point trains to (default 1e-6)")
    p.add_argument("--max-steps", type=options.positive_int, help="BM steps per point at most")
    p.add_argument("--time-limit", type=options.positive_real, help="seconds per point at most")
    p.add_argument("--method", type=options.method_name, default="auto",
                   help="BM method (default auto)")
    p.add_argument("--device", help="cpu or cuda (default: cuda when present)")
    add_test_options(p)
    p.add_argument("--plot", help="figure of the path (.png, .pdf or .svg)")
    p.add_argument("--json", help="JSON record of the path")
    p.add_argument("--force", action="store_true", help="overwrite existing output files")


cmd_path.configure = _configure
