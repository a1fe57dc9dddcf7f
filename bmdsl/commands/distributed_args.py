"""`--nproc N` and `--dist-timeout SEC` of `bmdsl train` and `bmdsl run` (docs/distributed.md).

With --nproc N > 1 outside a distributed job the command starts N processes on this
machine (bmdsl.trainer.launch.spawn) and each runs the command again inside the process
group; under torchrun (WORLD_SIZE > 1 in the environment) the command joins the group
torchrun made. Inside the group: rank 0 binds the data and draws the patterns, whose
gates are broadcast, and the other ranks bind only their shard; the trainer is a DistributedTrainer on this rank's shard; only rank 0
prints tables and writes files.
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


def bind(derivation, data, patterns=None):
    """derivation.bind on every rank with rank 0's patterns (drawn once, broadcast as
    gates): rank 0 binds all samples (it reports the metrics and saves the masks), the
    others only their shard (trainer/shards.py), with or without ReLU cones."""
    from ..trainer import distributed as dd
    if not dd.active():
        return derivation.bind(data, patterns=patterns)
    bound = derivation.bind(data, patterns=patterns) if dd.rank() == 0 else None
    drawn = None if bound is None or bound.patterns is None else bound.patterns.gates_only()
    drawn = dd.broadcast_object(drawn)
    if bound is not None:
        return bound
    from ..trainer.shards import bind_shard
    return bind_shard(derivation.model, data, drawn)


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
