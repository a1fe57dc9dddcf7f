"""Data parallelism on torch.distributed: the process group, the sample shards, and the
few collectives the sharded trainer needs (docs/distributed.md).

Every sum over samples in the BM objective (14) -- the loss F, its gradient, the lifted
gradients G_k = L_k^*(grad F) of eq. (20), the Gram statistics G = L^* L, b = L^*(Y) --
is a sum of per-shard sums, so each rank computes its own and `allreduce_sum` adds them.
Processes come from `spawn` (torch.multiprocessing, one machine) or from `torchrun`
(RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, LOCAL_RANK in the environment); `init`
joins the group either way: gloo on CPU, nccl on GPUs. Every collective is bounded by
the group's timeout; a failure names the rank that did not arrive (a heartbeat count per
rank in the rendezvous store), so a dead or stalled rank ends the job, never hangs it.
"""
from __future__ import annotations

import datetime
import os
import socket
import time

import torch
import torch.distributed as dist

from .errors import TrainerError
from .runtime.blocktree import GRAM_BLOCKS, MIN_BLOCK, block_count, block_start

DEFAULT_TIMEOUT = 300.0   # seconds a collective may wait for the other ranks
ENV_TIMEOUT = "BMDSL_DIST_TIMEOUT"
_state = {"timeout": DEFAULT_TIMEOUT, "count": 0, "device": None, "bytes": 0}


class DistributedError(TrainerError):
    """A rank died, stalled past the timeout, or the group could not be formed."""


# -- the group ------------------------------------------------------------------------------
def world() -> int:
    return dist.get_world_size() if active() else 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def is_writer() -> bool:
    """Only rank 0 writes checkpoints, records and figures."""
    return rank() == 0


def env_world() -> int:
    """WORLD_SIZE as torchrun (or spawn) set it; 1 outside a distributed job."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise DistributedError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not a whole "
                               "number") from None


def timeout_seconds(value=None) -> float:
    value = value if value is not None else os.environ.get(ENV_TIMEOUT, DEFAULT_TIMEOUT)
    try:
        value = float(value)
    except (TypeError, ValueError):
        value = -1.0
    if not value > 0 or value != value or value == float("inf"):
        raise DistributedError(f"the distributed timeout must be a finite number of seconds "
                               f"> 0, not {value!r}")
    return value


def init(device="cpu", timeout=None) -> None:
    """Join the process group of the environment (RANK, WORLD_SIZE, MASTER_ADDR,
    MASTER_PORT; LOCAL_RANK picks the GPU): gloo for cpu, nccl for cuda."""
    if active():
        return
    missing = [k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
               if k not in os.environ]
    if missing:
        raise DistributedError("a distributed run needs " + ", ".join(missing) + " in the "
                               "environment (torchrun sets them; or use --nproc N)")
    _state["timeout"] = timeout_seconds(timeout)
    cuda = torch.device(device or "cpu").type == "cuda"
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", os.environ["RANK"]))
        if local >= torch.cuda.device_count():
            raise DistributedError(f"rank {os.environ['RANK']} has LOCAL_RANK {local} but "
                                   f"this machine has {torch.cuda.device_count()} GPU(s)")
        torch.cuda.set_device(local)
        _state["device"] = torch.device("cuda", local)
    try:
        dist.init_process_group("nccl" if cuda else "gloo", timeout=datetime.timedelta(
            seconds=_state["timeout"]))
    except (RuntimeError, ValueError) as exc:
        raise DistributedError(f"rank {os.environ['RANK']}: cannot join the process group at "
                               f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']} "
                               f"within {_state['timeout']:g} s: {exc}") from None
    _state["count"] = 0


def device():
    """The GPU of this rank (LOCAL_RANK) under nccl, else None."""
    return _state["device"]


def finish() -> None:
    """A last barrier that names a rank that never arrives (gloo), then leave the group."""
    if not active():
        return
    try:
        if dist.get_backend() == "gloo":
            dist.monitored_barrier(timeout=datetime.timedelta(seconds=_state["timeout"]))
        else:
            _collective(dist.barrier)
    except RuntimeError as exc:
        raise DistributedError(f"rank {rank()}: the final barrier failed: {exc}") from None
    finally:
        dist.destroy_process_group()


# -- shards ---------------------------------------------------------------------------------
def shard(n: int, r: int | None = None, size: int | None = None) -> tuple[int, int]:
    """[start, stop) of rank r's contiguous block of n samples. The samples come in
    `runtime.gram.block_count(n)` blocks of nearly equal size (min(n // 16, 256) blocks:
    fixed by n alone, so the Gram sums are rounded the same for every number of
    processes); a rank holds whole blocks, the ranks' block counts differ by at most one
    (their sizes by at most one block), and the shards cover 0..n-1 once. A rank whose
    shard is empty (n < 16 N, or N > 256) is refused where the shard is bound."""
    first, last = shard_blocks(n, r, size)
    return block_start(n, first), block_start(n, last)


def check_shard(n: int) -> None:
    """DistributedError unless this rank's shard of n samples is not empty."""
    start, stop = shard(n)
    if stop <= start:
        raise DistributedError(
            f"{n} samples cannot be shared by {world()} processes: the samples are shared "
            f"in whole blocks of at least {MIN_BLOCK} (at most {GRAM_BLOCKS} blocks), so "
            f"every rank needs {MIN_BLOCK} samples", hint="use fewer processes")


def shard_blocks(n: int, r: int | None = None, size: int | None = None) -> tuple[int, int]:
    """[first, last) block of rank r (see `shard`)."""
    r, size = rank() if r is None else r, world() if size is None else size
    base, extra = divmod(block_count(n), size)
    first = r * base + min(r, extra)
    return first, first + base + (1 if r < extra else 0)


# -- collectives ----------------------------------------------------------------------------
BEAT_EVERY = 0.25   # seconds between heartbeats (one store write costs about a collective)


def _beat() -> None:
    dist.distributed_c10d._get_default_store().set(f"bmdsl/beat/{rank()}",
                                                   str(_state["count"]))
    _state["beat"] = time.monotonic()


def _heartbeat() -> None:
    """Count this rank's collectives, and store the count now and then (at most every
    BEAT_EVERY s: a write per collective tripled its latency, 3.5 vs 1.3 ms)."""
    _state["count"] += 1
    if time.monotonic() - _state.get("beat", 0.0) >= BEAT_EVERY:
        try:
            _beat()
        except (RuntimeError, AttributeError):
            pass


def _laggards() -> str:
    """The ranks behind this one: every rank that fails stores its exact count, waits a
    moment for the others to do the same, and names those whose count is lower (a
    stalled or dead rank never stored the count of the failed collective)."""
    try:
        store = dist.distributed_c10d._get_default_store()
        store.set_timeout(datetime.timedelta(seconds=5))
        _beat()
        time.sleep(min(2.0, _state["timeout"] / 4))
        behind = []
        for r in range(world()):
            if r == rank():
                continue
            beat = int(store.get(f"bmdsl/beat/{r}")) if store.check([f"bmdsl/beat/{r}"]) else 0
            if beat < _state["count"]:
                behind.append(r)
        return (f"rank(s) {', '.join(map(str, behind))} did not arrive (died or stalled)"
                if behind else "no rank lags behind in the store")
    except (RuntimeError, AttributeError, ValueError):
        return "rank 0 (which holds the rendezvous store) is unreachable: it died or stalled"


def _collective(op, *args):
    _heartbeat()
    try:
        work = op(*args)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise DistributedError(
            f"rank {rank()}: collective #{_state['count']} failed or waited more than "
            f"{_state['timeout']:g} s: {_laggards()} ({first})",
            hint=f"the last checkpoint is intact; resume it with the same --nproc "
                 f"(timeout: --dist-timeout or ${ENV_TIMEOUT})") from None
    return work


def traffic() -> tuple[int, int]:
    """(collectives, bytes all-reduced) by this rank so far (bench/bench_distributed.py)."""
    return _state["count"], _state["bytes"]


def allreduce_sum(x: torch.Tensor) -> torch.Tensor:
    """The sum over ranks of x (a new tensor, the same on every rank)."""
    if not active():
        return x
    out = x.detach().clone().contiguous()
    _state["bytes"] += out.numel() * out.element_size()
    _collective(dist.all_reduce, out, dist.ReduceOp.SUM)
    return out


def allreduce_max(x: torch.Tensor) -> torch.Tensor:
    if not active():
        return x
    out = x.detach().clone().contiguous()
    _state["bytes"] += out.numel() * out.element_size()
    _collective(dist.all_reduce, out, dist.ReduceOp.MAX)
    return out


def broadcast(x, src: int, numel: int, dtype=torch.float64):
    """rank src's 1-d tensor x (None elsewhere: a buffer of numel entries) on every rank."""
    if not active():
        return x
    dev = device() or "cpu"
    out = x.detach().contiguous() if rank() == src else torch.empty(numel, dtype=dtype,
                                                                   device=dev)
    _state["bytes"] += out.numel() * out.element_size()
    _collective(dist.broadcast, out, src)
    return out


def broadcast_object(obj, src: int = 0):
    """rank src's picklable object on every rank (patterns drawn once)."""
    if not active():
        return obj
    box = [obj]
    _collective(dist.broadcast_object_list, box, src)
    return box[0]


def all_gather_object(out: list, obj) -> None:
    """out[r] = rank r's picklable obj, on every rank."""
    if not active():
        out[:] = [obj]
        return
    _collective(dist.all_gather_object, out, obj)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
