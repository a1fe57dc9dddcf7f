"""`bmdsl train FILE --data DATA`: train the BM factorization with torch (docs/trainer.md).

Prints the method, device, objective, certificate and cone violation; saves U, V and the
patterns (PatternSet.to_npz_dict keys, so `--patterns OUT.npz` reuses them) to an .npz
and a JSON record of the run beside it. `--patterns` takes a count, 'exact', or a file
saved by `bmdsl solve` / `bmdsl train`, so BM and CVXPY can share their patterns. Every
mistake is a BmdslError (exit 1); Ctrl-C saves a checkpoint and says how to resume.
"""
from __future__ import annotations

import json
import platform
from pathlib import Path

from ..atoms.activations import ACTIVATIONS
from .registry import command, load_model
from ..core.errors import BmdslError
from . import options
from ..core import outputs
from .data_args import add_data_options
from . import distributed_args as dist_args
from .heldout import add_test_options, check_test_data
from .report import scores_table



def _pattern_file(value) -> bool:
    return value is not None and (value.lower().endswith(".npz") or Path(value).is_file())


def _record(args, bound, trainer, result, npz) -> dict:
    import numpy as np
    import torch

    from ..core.version import __version__
    cert = result.certificate
    patterns = bound.patterns
    return {
        "model": bound.model.name, "file": str(args.file), "data": list(args.data),
        "patterns": None if patterns is None else {
            "count": bound.P, "source": patterns.source, "seed": patterns.seed,
            "file": args.patterns_file},
        "config": {"method": trainer.method_name, "requested_method": args.method, "m": trainer.m,
                   "dtype": args.dtype, "device": str(trainer.device), "lr": args.lr,
                   "batch_size": trainer.batch_size, "epochs": args.epochs,
                   "train_seed": args.train_seed, "resume": args.resume,
                   "checkpoint": args.checkpoint, "checkpoint_every": args.checkpoint_every},
        "result": result.to_dict(),
        "certificate": cert.to_dict() if cert is not None and hasattr(cert, "to_dict") else None,
        "output": str(npz),
        "versions": {"bmdsl": __version__, "torch": torch.__version__,
                     "numpy": np.__version__, "python": platform.python_version()},
    }


def _outputs(args):
    """(factors .npz, JSON record, Ctrl-C checkpoint without --checkpoint), after checking
    the outputs (commands/outputs.py; --checkpoint is one) and the --resume checkpoint's
    integrity, so that a wrong path stops the command before any work."""
    from ..trainer import checkpoint
    npz = outputs.npz_path(args.output or f"{Path(args.file).stem}_bm.npz")
    record = npz.with_suffix(".json")
    paths = [npz, record] + ([args.checkpoint] if args.checkpoint else [])
    outputs.check_outputs(paths, outputs.command_inputs(args), args.force)
    if args.resume:
        checkpoint.read(args.resume)             # hash and format; the config at fit
    return npz, record, npz.with_suffix(".interrupted.pt")


@command("train", "train the Burer-Monteiro factorization with torch")
def cmd_train(args) -> int:
    import numpy as np

    if args.cert_tol is not None and not args.certificate_every:  # before any work
        raise BmdslError("--cert-tol needs --certificate-every N (how often to certify)")
    code = dist_args.launch(args, args.device)     # --nproc N: N processes run this command
    if code is not None:
        return code
    from .data_args import read_patterns
    given = args.patterns_from or (args.patterns if _pattern_file(args.patterns) else None)
    args.patterns_file = given
    if given and _pattern_file(args.patterns):
        args.patterns = None                     # the count override does not apply
    model = load_model(args)
    npz, record, interrupted = _outputs(args)    # checked before any work
    # --nproc: each rank reads and binds only its rows (distributed_args.py)
    bound, data, test, test_note = dist_args.read_and_bind(
        args, model, read_patterns(given) if given else None)
    if test is not None:
        check_test_data(model, bound, test)   # before training, not after
    trainer = dist_args.trainer(bound, device=args.device, dtype=args.dtype, method=args.method,
                      m=args.m, seed=args.train_seed, lr=args.lr, batch_size=args.batch_size,
                      checkpoint=args.checkpoint, checkpoint_every=args.checkpoint_every,
                      interrupt_checkpoint=interrupted,
                      progress=False if args.no_progress or getattr(args, "quiet", False)
                      else None,
                      certificate_every=args.certificate_every,
                      warm_start=False if args.no_warm_start else "auto")
    print(f"model {bound.model.name}: {bound.activation.name}, P = {bound.P} pattern(s), "
          f"p = {bound.p}, q = {bound.q}, m = {trainer.m}; method {trainer.method_name} on "
          f"{trainer.device} ({args.dtype})")
    steps = None if args.epochs is None else args.epochs * trainer.batches_per_epoch
    result = trainer.fit(steps, resume=args.resume, time_limit=args.time_limit,
                         cert_tol=args.cert_tol)
    # every rank: the metrics' sums and the masks are gathered (train and test metrics,
    # bmdsl.workflow.metrics)
    reports = dist_args.reports(trainer, model, bound, data, test)
    masks = dist_args.saved_masks(bound, npz)
    if not dist_args.writer():
        return _status(result)                   # rank 0 reports and writes
    if result.warm_start is not None:
        ws = result.warm_start
        print(f"warm start:     {ws['method']}, {ws['iterations']} iterations, "
              f"{ws['seconds']:.2f} s (then {result.steps} {trainer.method_name} steps)"
              + (f"; it failed, BM went on from the current factors: {ws['failed']}"
                 if ws.get("failed") else ""))
    print(f"objective:      {result.objective:.12g}   ({result.steps} steps, "
          f"{result.seconds:.2f} s, stopped: {result.stopped})")
    cert = result.certificate
    if cert is not None:
        print(f"certificate:    (p - p*)/p* <= {cert.gap_bound:.3e} (duality gap); "
              f"Theorem 3.4 bound {cert.thm34_bound:.3e}"
              + ("" if cert.thm34_applicable else " (not applicable: not stationary)"))
        for warning in getattr(cert, "warnings", ()):
            print(f"WARNING:        {warning}")
    if result.violation is not None:
        print(f"cone violation: {result.violation:.3e} (before restoring: "
              f"{result.violation_before:.3e})")
    print("metrics:" + (f"        ({test_note})" if test_note else ""))
    print(scores_table(reports))
    # the activation is saved so that bmdsl predict rebuilds the same network
    out = {"U": result.U, "V": result.V, "activation": np.array(bound.activation.name)}
    if bound.model.bias.output:         # the free output offset b* (offset.py)
        out["b2"] = trainer.output_bias()
    if bound.patterns is not None:
        out.update(bound.patterns.to_npz_dict())
    if masks is not None:               # all ranks' rows, gathered (distributed_args.py)
        del out["masks"]
    try:
        outputs.write_atomic(npz, lambda tmp: _save(tmp, out, masks))
    finally:
        if masks is not None:
            masks.unlink(missing_ok=True)
    outputs.write_text_atomic(record, json.dumps(dict(
        _record(args, bound, trainer, result, npz), metrics=reports, test=test_note), indent=2))
    print(f"saved:          {npz} (U, V{', patterns' if bound.patterns else ''}), {record}")
    return _status(result)


def _save(tmp, arrays, masks=None) -> None:
    """np.savez of the arrays; the gathered masks' .npy file (--nproc) added as the member
    masks.npy, copied from the file (the same .npz as one process writes)."""
    import zipfile

    import numpy as np
    np.savez(tmp, **arrays)
    if masks is not None:
        with zipfile.ZipFile(tmp, "a", allowZip64=True) as z:
            z.write(masks, "masks.npy")


def _status(result) -> int:
    """Exit code 3 when --cert-tol was asked for and not reached (the factors are saved,
    their JSON record says "status": "cert_tol not reached"); 0 otherwise."""
    if result.status == "finished":
        return 0
    cert = result.certificate
    bound = "not computed" if cert is None else f"{cert.gap_bound:.3e}"
    print(f"status:         {result.status}: the duality-gap bound is {bound}, above "
          f"--cert-tol {result.cert_tol:g} (stopped: {result.stopped} after {result.steps} "
          "steps); the saved factors are not certified to that tolerance")
    return 3


def _configure(p):
    p.add_argument("file", help="a .bm model file")
    add_data_options(p)
    p.add_argument("--activation", choices=list(ACTIVATIONS),
                   help="override the model's activation")
    p.add_argument("--patterns", help="a pattern count, 'exact', or an .npz of saved patterns "
                   "(from bmdsl solve or bmdsl train) so BM and CVXPY use the same ones")
    p.add_argument("--patterns-from", metavar="FILE.npz",
                   help="the same as --patterns FILE.npz (the spelling of bmdsl solve)")
    p.add_argument("--seed", type=int, help="override the pattern seed")
    p.add_argument("--m", type=int, help="units per pattern (default: the model's)")
    p.add_argument("--device", help="cuda or cpu (default: cuda when available)")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    options.add_method_option(p, "training method: auto (the default: see docs/trainer.md) "
                              "or a method of the trainer's table")
    p.add_argument("--epochs", type=options.positive_int,
                   help="passes over the data (full batch: steps), >= 1")
    p.add_argument("--batch-size", type=options.positive_int,
                   help="mini-batch size, >= 1 (a method that takes mini-batches: "
                   "docs/trainer.md)")
    p.add_argument("--lr", type=options.positive_real,
                   help="learning rate (a method that has one), finite and > 0")
    p.add_argument("--train-seed", type=options.seed, default=0,
                   help="seed of the initial factors")
    p.add_argument("--no-warm-start", action="store_true",
                   help="BM from random factors only (no convex warm start)")
    p.add_argument("--checkpoint", help="checkpoint file to write (a new file, or --force; "
                   "not the --resume file)")
    p.add_argument("--checkpoint-every", type=options.positive_int,
                   help="steps between checkpoints, >= 1")
    p.add_argument("--resume", help="continue from this checkpoint (verified by its sha256 "
                   "and refused for another model, data, patterns or options)")
    p.add_argument("--certificate-every", type=options.count,
                   help="steps between certificates (0: only at the end)")
    p.add_argument("--cert-tol", type=options.positive_real,
                   help="stop once the duality-gap bound is below this, > 0 (checked every "
                        "--certificate-every steps)")
    p.add_argument("--time-limit", type=options.positive_real,
                   help="stop after this many seconds, > 0")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (default: shown when stderr is a terminal)")
    p.add_argument("--output", help="where to save U, V (default FILE_bm.npz); the JSON "
                   "record goes beside it")
    outputs.add_force_option(p)
    add_test_options(p)
    dist_args.add_distributed_options(p)


cmd_train.configure = _configure
