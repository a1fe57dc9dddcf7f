"""`--nproc N` and `--dist-timeout SEC` of `bmdsl train` and `bmdsl run` (docs/distributed.md).

With --nproc N > 1 outside a distributed job the command starts N processes on this
machine (bmdsl.trainer.launch.spawn) and each runs the command again inside the process
group; under torchrun (WORLD_SIZE > 1 in the environment) the command joins the group
torchrun made. Inside the group every rank reads and binds only its rows of the data, with the
patterns all ranks share (shard_data.py); the trainer is a DistributedTrainer on this
rank's shard; the metrics come from sums all-reduced; only rank 0 prints tables and
writes files (the saved masks gathered to it one rank's rows at a time).
"""
from __future__ import annotations

from . import options


def add_distributed_options(p) -> None:
    p.add_argument("--nproc", type=options.positive_int, default=None,
                   help="processes to train with, each on a shard of the samples (gloo on "
                        "cpu, nccl with one GPU each); under torchrun: its WORLD_SIZE")
    p.add_argument("--dist-timeout", type=options.positive_real, default=None,
                   help="seconds a process waits for the others before the job ends with "
                        "an error naming the rank (default 300; $BMDSL_DIST_TIMEOUT)")


def _command(name, args):
    import bmdsl.commands   # noqa: F401 -- importing the package registers the commands
    return args.run(args)


def launch(args, device=None):
    """None: go on in this process (one process, or already inside the group); else the
    exit code of the job that --nproc started here (rank 0's)."""
    import torch

    from ..trainer import distributed as dd
    nproc, world = getattr(args, "nproc", None), dd.env_world()
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if world > 1:                      # torchrun or our own spawn: join the group
        if nproc is not None and nproc != world:
            raise dd.DistributedError(f"--nproc {nproc} disagrees with WORLD_SIZE={world} of "
                                      "the environment (torchrun); drop --nproc")
        if not dd.active():            # torchrun: the final barrier when the command ends
            import atexit
            atexit.register(_finish)
        dd.init(device, getattr(args, "dist_timeout", None))
        if dd.rank() > 0:              # rank 0 speaks for the job (under torchrun too)
            import os
            import sys
            sys.stdout = open(os.devnull, "w")
        return None
    if nproc is None or nproc == 1:
        return None
    from ..trainer.launch import spawn
    return spawn(_command, nproc, (args.run.__name__, args), timeout=args.dist_timeout,
                 device=device)


def _finish():
    """Under torchrun: a rank that never reaches the end is named within the timeout
    (instead of the job waiting for it forever), and the exit status says so."""
    import os
    import sys

    from ..trainer import distributed as dd
    try:
        dd.finish()
    except dd.DistributedError as exc:
        print(exc.render(), file=sys.stderr)
        sys.stderr.flush()
        os._exit(1)


def sharded() -> bool:
    """Inside a process group (--nproc N > 1, torchrun): each rank holds its rows only."""
    from ..trainer import distributed as dd
    return dd.active()


def read_and_bind(args, model, patterns=None, default=None):
    """(bound, the training data held here, test data or None, a note on the test data).
    One process reads all the data and binds it; a rank of a process group reads and
    binds only its rows, with the patterns all ranks share (shard_data.py). `default`:
    in-memory data in place of --data (bmdsl run's built-in data)."""
    if sharded():
        from . import shard_data
        data, test, note, n = shard_data.read(args, model, default=default)
        return shard_data.bind(model.derive(), data, n, patterns), data, test, note
    from .data_args import read_data
    from .heldout import held_out
    data = default if default is not None else read_data(args.data, model, args.target)
    data, test, note = held_out(args, model, data)
    return model.derive().bind(data, patterns=patterns), data, test, note


def reports(trainer, model, bound, data, test) -> dict:
    """{"train": scores, "test": scores} (bmdsl.workflow.metrics) on every rank: the
    training scores of all ranks' samples from all-reduced sums (every rank must call
    it); the test scores by rank 0 (it alone read the test data)."""
    from ..bind.binding import declared_target  # class labels -> one-hot rows, as bound
    from .heldout import fit_reports
    shaped = [None if d is None else declared_target(model, d, bound.sizes) for d in (data, test)]
    if not sharded():
        return fit_reports(trainer, *shaped)
    from ..workflow.prediction import network_scores
    from .shard_data import scores
    net = trainer.network()
    out = {"train": scores(net, shaped[0])}
    if shaped[1] is not None:
        out["test"] = network_scores(net, shaped[1])
    return out


def saved_masks(bound, beside):
    """With a process group: the .npy file (beside `beside`, rank 0's) of the masks of all
    samples, gathered one rank's rows at a time (every rank must call it); else None."""
    if not sharded() or bound.masks is None:
        return None
    import secrets
    from pathlib import Path

    from ..trainer import distributed as dd
    from .shard_data import gathered_masks
    path = Path(beside).parent / f".{Path(beside).name}.{secrets.token_hex(6)}.masks.npy"
    gathered_masks(bound, path)
    return path if dd.is_writer() else None


def trainer(bound, **options):
    """A DistributedTrainer inside a process group, else a Trainer."""
    from ..trainer import distributed as dd
    if dd.active():
        from ..trainer.sharded import DistributedTrainer
        return DistributedTrainer(bound, **options)
    from ..trainer import Trainer
    return Trainer(bound, **options)


def writer() -> bool:
    from ..trainer import distributed as dd
    return dd.is_writer()
