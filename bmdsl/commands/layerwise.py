"""`bmdsl layerwise FILE [FILE ...] --stages S`: a deep classifier from S convex stages
(Sahiner et al. 2024, section 4.2; docs/layerwise.md).

Each stage is a stage model FILE (a two-layer CNN model; with several files, stage s
takes the s-th and the last serves every later stage) trained by the BM trainer on the
previous stage's BM latent representation; each stage's certificate and train/test
accuracy are printed, each finished stage is saved in the run directory (`--output DIR`), and
`--resume` continues at the stage a run stopped in. Data: the built-in digits (scikit-
learn's load_digits, no download) or `--data D.npz` with x_train, y_train [, x_test,
y_test]. Every mistake is a BmdslError (exit 1); Ctrl-C saves the stage's checkpoint.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..atoms.activations import ACTIVATIONS
from .registry import command, load_model
from ..core.errors import BmdslError
from . import options
from ..core import outputs
from .heldout import open_fraction

DEFAULT_FRACTION = 0.2


def _downsamples(text: str) -> list[str]:
    """argparse type: '2', 'invertible' or a list '2,invertible' (one per transition)."""
    from ..layerwise.downsample import WORDS, parse
    try:
        return [parse(x) for x in text.split(",")]
    except BmdslError:
        raise argparse.ArgumentTypeError(f"must be {WORDS}, or a comma-separated list of "
                                         f"them (one per stage transition), not {text!r}")


def _units(text: str):
    """argparse type of --m: a positive whole number or 'full' (min(p, q) per stage)."""
    from ..layerwise.solve import FULL
    if text == FULL:
        return FULL
    if text.isascii() and text.isdigit() and 0 < len(text) <= 9 and int(text) > 0:
        return int(text)
    raise argparse.ArgumentTypeError(f"must be a positive whole number or {FULL!r}, not "
                                     f"{text!r}")


def _data(args):
    from ..layerwise import digits, read_images, split
    data, test = read_images(args.data) if args.data else digits()
    where = args.data or "digits (scikit-learn load_digits)"
    if test is not None and args.test_fraction is not None:
        raise BmdslError(f"{args.data} has its own test set (x_test, y_test); drop "
                         f"--test-fraction")
    if test is None:
        fraction = args.test_fraction or DEFAULT_FRACTION
        if not 1 <= round(fraction * len(data["labels"])) < len(data["labels"]):
            raise BmdslError(f"a test fraction of {fraction:g} of {len(data['labels'])} "
                             f"images leaves no test or no training image")
        data, test = split(data, fraction, args.split_seed)
        where += f", {len(test['labels'])} of {len(data['labels']) + len(test['labels'])} " \
                 f"images held out (seed {args.split_seed})"
    return data, test, where


def _directory(args, model) -> Path:
    """The run directory, checked before any work (commands/outputs.py)."""
    from ..layerwise.store import RUN
    directory = Path(args.output or f"{Path(args.file[0]).stem}_layerwise")
    if directory.exists() and not directory.is_dir():
        raise outputs.OutputError(f"{directory} is not a directory",
                                  hint="--output names a directory for the run's files")
    files = [directory / RUN, directory / "network.pt"]
    outputs.check_outputs(files, outputs.command_inputs(args), args.force or args.resume,
                          make_dirs=True)
    if not args.resume and (directory / RUN).exists():
        for stale in directory.glob("stage*.*"):   # --force: a fresh run, nothing resumed
            stale.unlink()
        (directory / RUN).unlink()
    return outputs.make_directory(directory)


@command("layerwise", "train a deep CNN greedily from convex two-layer stages")
def cmd_layerwise(args) -> int:
    from ..layerwise import StageOptions, train_layerwise
    from ..layerwise.latent import check_stage_spec
    from ..layerwise.stages import downsamples_for
    from ..trainer.spec import build_spec
    m, args.m = args.m, None if args.m == "full" else args.m
    # each with the model's units unless --m is a number; the overrides apply to every file
    models = [load_model(argparse.Namespace(**dict(vars(args), file=f))) for f in args.file]
    if len(models) > args.stages:
        raise BmdslError(f"{len(models)} stage models for {args.stages} stage(s)",
                         hint="give at most one model per stage (the last serves the rest)")
    downsamples_for(args.downsample, args.stages)    # mistakes before any work
    for model in models:
        check_stage_spec(build_spec(model.derive()))
    directory = _directory(args, models[0])
    train, test, where = _data(args)
    opts = StageOptions(method=args.method, m=m, seed=args.train_seed,
                        dtype=args.dtype, device=args.device, lr=args.lr,
                        batch_size=args.batch_size, max_steps=args.steps, epochs=args.epochs,
                        time_limit=args.time_limit, cert_tol=args.cert_tol,
                        refine_iters=args.refine_iters,
                        checkpoint_every=args.checkpoint_every,
                        progress=False if args.no_progress or args.quiet else None)
    print(f"layerwise {', '.join(x.name for x in models)}: {args.stages} stage(s) on "
          f"{where}")
    from ..trainer.errors import TrainingInterrupted
    try:
        result = train_layerwise(models, train, test, args.stages, args.downsample, opts,
                                 directory=directory, resume=args.resume)
    except TrainingInterrupted:
        raise TrainingInterrupted(f"interrupted: the finished stages and the current "
                                  f"stage's checkpoint are in {directory}",
                                  hint="continue with the same command and --resume") \
            from None
    print(result.table())
    path = directory / "network.pt"
    outputs.write_atomic(path, result.network.save)
    outputs.write_text_atomic(directory / "stages.json", json.dumps(result.stages, indent=2))
    print(f"saved:          {path} (the stacked network), {directory}/stage<s>.pt, "
          f"{directory}/run.json")
    return 0


def _configure(p):
    p.add_argument("file", nargs="+", help="the stage model: a two-layer CNN .bm file (or "
                   "'cnn'); several: stage s takes the s-th, the last every later stage")
    p.add_argument("--stages", type=options.positive_int, required=True,
                   help="number of stages, >= 1")
    p.add_argument("--data", help="an .npz with x_train [n, channels, height, width], "
                   "y_train [n] (labels 0..c-1) and optionally x_test, y_test (default: "
                   "the built-in digits)")
    p.add_argument("--test-fraction", type=open_fraction, metavar="F",
                   help=f"hold out this fraction when the data has no test set (default "
                   f"{DEFAULT_FRACTION})")
    p.add_argument("--split-seed", type=options.seed, default=0)
    p.add_argument("--downsample", type=_downsamples, default=["average:1"],
                   metavar="D[,D...]",
                   help="down-sample each latent representation: W (average pooling over W x "
                   "W windows) or 'invertible' (space-to-depth by 2, exactly invertible); one "
                   "value, or one per stage transition (default 1: none)")
    p.add_argument("--activation", choices=list(ACTIVATIONS),
                   help="override the model's activation")
    p.add_argument("--patterns", help="override the pattern count (a number or 'exact')")
    p.add_argument("--seed", type=int, help="override the pattern seed")
    p.add_argument("--m", type=_units, help="units per pattern (default: the model's), or "
                   "'full': min(p, q) in each stage, every optimum's rank (docs/layerwise.md)")
    p.add_argument("--device", help="cuda or cpu (default: cuda when available)")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    options.add_method_option(p, "BM method of each stage (default auto)")
    p.add_argument("--steps", type=options.positive_int, help="steps per stage")
    p.add_argument("--epochs", type=options.positive_int, help="passes over the data per stage")
    p.add_argument("--batch-size", type=options.positive_int,
                   help="mini-batches (default: the full batch when it fits the memory "
                   "budget, else the largest that fits)")
    p.add_argument("--lr", type=options.positive_real)
    p.add_argument("--train-seed", type=options.seed, default=0)
    p.add_argument("--time-limit", type=options.positive_real, help="seconds per stage")
    p.add_argument("--cert-tol", type=options.positive_real,
                   help="stop a full-batch stage once its duality-gap bound (p - p*)/p* is "
                   "<= this (default: the trainer's target, 1e-6)")
    p.add_argument("--refine-iters", type=options.count, default=50,
                   help="dual-point refinement iterations of an uncertified or mini-batch "
                   "stage's certificate")
    p.add_argument("--checkpoint-every", type=options.positive_int,
                   help="steps between checkpoints inside a stage")
    p.add_argument("--output", metavar="DIR", help="the run directory (default "
                   "FILE_layerwise/)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --output DIR at the stage it stopped in")
    p.add_argument("--no-progress", action="store_true")
    outputs.add_force_option(p)


cmd_layerwise.configure = _configure
