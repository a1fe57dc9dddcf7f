"""Data-parallel training on torch.distributed (gloo, 2 processes on this machine):
the same optimum as one process, shards that cover the samples once, refusals, and a
rank that dies or stalls ends the job with an error naming it (docs/distributed.md)."""
import os
import signal
import time

import numpy as np
import pytest
import torch

import bmdsl
from bmdsl.trainer import checkpoint, distributed, launch
from bmdsl.trainer.distributed import DistributedError
from bmdsl.certificates import certify
from bmdsl.trainer.sharded import DistributedTrainer, ShardSamples
from bmdsl.trainer.runtime.gram import block_count, block_start, tree_sum

ROOT = os.path.join(os.path.dirname(__file__), "..", "models")
MLP = open(os.path.join(ROOT, "mlp.bm")).read().replace(
    "patterns = 100", "patterns = 12").replace("m = 5 ", "m = 3 ")
CNN = open(os.path.join(ROOT, "cnn.bm")).read().replace(
    "patterns = 32", "patterns = 4").replace("m = 4 ", "m = 2 ").replace(
    "loss       squared", "loss       cross_entropy").replace("beta = 1e-2", "beta = 1e-1")
STEPS = [None, 100, None]      # CNN: 100 Newton steps (gap ~1e-5; the tail to 1e-12 takes 200)
RELU = open(os.path.join(ROOT, "relu.bm")).read().replace("patterns = 50", "patterns = 8")


def _mlp(n=41):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 3))
    return bmdsl.parse(MLP).derive().bind({"X": X, "Y": np.eye(2)[rng.integers(0, 2, n)]})


def _cnn(n=33):
    rng = np.random.default_rng(1)
    images = rng.standard_normal((n, 1, 4, 4))
    return bmdsl.parse(CNN).derive().bind({"I": images, "Y": np.eye(2)[rng.integers(0, 2, n)]})


def _relu(n=33):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((n, 2))
    return bmdsl.parse(RELU).derive().bind({"X": X, "Y": np.sign(X[:, 0] * X[:, 1] + 0.1)})


def _both(recipes):
    """In each rank: the fits, and the samples this rank's bound holds."""
    out = []
    for r, steps in zip(recipes, STEPS):
        b = launch.rebind(r)
        # the CNN: BM steps from random factors (Newton's sharded sums), no warm start
        t = DistributedTrainer(b, device="cpu", progress=False,
                               warm_start=False if b.loss.name == "cross_entropy" else "auto")
        res = t.fit(steps)
        c = res.certificate
        out.append((res.objective, c.objective, c.dual_value, c.gap_bound, res.method,
                    res.warm_start, t.bound.Y.shape[0]))
    return out


@pytest.mark.parametrize("n, size", [(41, 2), (40, 2), (50, 3), (100, 6), (1000, 7),
                                     (100_001, 2), (5_000, 3), (4_097, 256)])
def test_shards_cover_every_sample_once(n, size):
    blocks = [distributed.shard(n, r, size) for r in range(size)]
    covered = np.concatenate([np.arange(a, b) for a, b in blocks])
    assert covered.tolist() == list(range(n))
    lengths = [b - a for a, b in blocks]
    # whole blocks of the Gram sums (fixed by n alone: min(n // 16, 256) of them)
    starts = {block_start(n, k) for k in range(block_count(n) + 1)}
    assert {a for a, _ in blocks} <= starts and {b for _, b in blocks} <= starts
    assert min(lengths) >= 16 and max(lengths) - min(lengths) <= n // block_count(n) + 1


def _tree_as_rank(ranges, me, leaves, sent):
    """gram.tree_sum in rank `me`: the sums of its own subtrees go to `sent` (by call
    number, as the broadcasts would order them), the others' are read from it."""
    calls = iter(range(1000))

    def share(x, owner, numel):
        i = next(calls)
        if owner == me:
            sent[i] = x.clone()
        return sent.get(i, torch.zeros(numel)).clone()
    return tree_sum(ranges, me, lambda k: leaves[k].clone(), share, 3)


def test_the_gram_sums_are_the_same_bits_for_any_sharing():
    """gram.tree_sum adds the blocks in one order however they are shared among ranks."""
    rng = np.random.default_rng(0)
    leaves = [torch.tensor(rng.standard_normal(3) * 10.0 ** rng.integers(-8, 8, 3))
              for _ in range(37)]
    whole = _tree_as_rank([(0, 37)], 0, leaves, {})
    for ranges in ([(0, 19), (19, 37)], [(0, 5), (5, 6), (6, 30), (30, 37)]):
        sent = {}
        for me in range(len(ranges)):             # each rank's own subtrees
            _tree_as_rank(ranges, me, leaves, sent)
        for me in range(len(ranges)):             # then every rank adds the same tree
            assert torch.equal(_tree_as_rank(ranges, me, leaves, dict(sent)), whole)
    assert not torch.equal(whole, sum(leaves[1:], leaves[0].clone()))   # another order


def test_two_processes_reach_the_one_process_objective():
    """Gated MLP (squared loss: Gram path, lifted ADMM warm start), a CNN with
    cross-entropy (Newton on the sharded loss, gradient and Gauss-Newton blocks) and a
    scalar-output ReLU MLP (the cone interior point, its sums all-reduced), n odd so the
    shards differ in size: the objective and the certificate's gap bound equal one
    process's to 1e-10 relative (the gap relative to the objective: `_same_gap`); every
    rank binds its shard only, the ReLU MLP's cone rows too."""
    bounds = [_mlp(), _cnn(), _relu()]
    single = []
    for b, steps in zip(bounds, STEPS):
        # the CNN tests Newton's sharded sums: no warm start (test_distributed_lifted.py
        # has the lifted warm starts on shards)
        bm = b.loss.name == "cross_entropy"
        r = b.to_torch(device="cpu", progress=False,
                       **({"warm_start": False} if bm else {})).fit(steps)
        c = r.certificate
        single.append((r.objective, c.objective, c.dual_value, c.gap_bound, r.method,
                       r.warm_start, b.Y.shape[0]))
    many = launch.spawn(_both, 2, ([launch.recipe(b) for b in bounds],), timeout=60)
    assert single[0][5]["method"] == many[0][5]["method"] == "lifted ADMM"
    assert single[1][4] == many[1][4] == "newton" and bounds[1].loss.name == "cross_entropy"
    assert single[2][5]["method"] == many[2][5]["method"] == "interior point"
    assert [m[6] for m in many] == [20, 16, 16]     # rank 0's samples: its shard
    for (f1, p1, d1, g1, *_), (f2, p2, d2, g2, *_) in zip(single, many):
        assert abs(f1 - f2) <= 1e-10 * abs(f1)
        assert 0 <= g1 < 1e-4 and 0 <= g2 < 1e-4
        assert _same_gap(p1, d1, g1, g2)


def _same_gap(p, d, g1, g2):
    """Gap bounds g = (p - d)/d equal to 1e-10 relative to the objective p: the duality
    gaps g d they bound differ by at most 1e-10 p (docs/distributed.md)."""
    return abs(g1 - g2) * abs(d) <= 1e-10 * abs(p)


def _certified(recipes, factors, iters):
    """In each rank: the certificate of given factors, its sums over this rank's shard."""
    out = []
    for r, (U, V) in zip(recipes, factors):
        b = launch.rebind(r)
        assert b.shard[:2] == distributed.shard(b.shard[2])     # the shard only
        samples = ShardSamples(b, b)
        c = certify(b, U, V, refine_iters=iters, samples=samples)
        out.append((c.objective, c.gap_bound, c.dual_value, c.refinement, c.dual_source,
                    samples.Y.shape[0]))
    return out


def test_the_sharded_certificate_equals_one_process():
    """The same factors certified by one process on all samples and by 2 ranks on their
    shards (loss, G_k, F*, the dual ray's sums all-reduced; FISTA refinement without the
    Gram statistics, so its sums are sharded too): the same refinement decisions and dual
    point, the same objective to 1e-10 and gap bound to the rounding floor."""
    bounds = [_mlp(), _cnn(), _relu()]
    factors = []
    for b, steps in zip(bounds, STEPS):
        r = b.to_torch(device="cpu", progress=False, warm_start=False).fit(steps)
        factors.append((r.U, r.V))
    one = [certify(b, U, V, refine_iters=100) for b, (U, V) in zip(bounds, factors)]
    two = launch.spawn(_certified, 2, ([launch.recipe(b) for b in bounds], factors, 100),
                       timeout=60)
    assert [t[5] for t in two] == [20, 16, 16]          # rank 0's shard, not all samples
    assert one[0].refine_iterations == one[1].refine_iterations == 100
    for c, (p, gap, d, refinement, source, _) in zip(one, two):
        assert abs(c.objective - p) <= 1e-10 * c.objective
        assert abs(c.dual_value - d) <= 1e-10 * c.dual_value
        assert (c.refinement, c.dual_source) == (refinement, source)
        assert 0 <= c.gap_bound < 1e-4 and _same_gap(c.objective, c.dual_value,
                                                     c.gap_bound, gap)


def _shard_sizes(recipe_):
    b = launch.rebind(recipe_)
    t = DistributedTrainer(b, device="cpu", progress=False, warm_start=False)
    return (t.shard, int(b.Y.shape[0]), int(b.arrays["X"].shape[0]), int(b.masks.shape[1]),
            int(t.problem.Y.shape[0]), int(t.problem.D.shape[1])), b.masks


def test_each_rank_trains_on_its_own_shard():
    bound = _mlp(41)
    got = launch.spawn(_gather_shards, 2, (launch.recipe(bound),), timeout=60)
    assert [g[0] for g in got] == [((0, 20),) + (20,) * 5, ((20, 41),) + (21,) * 5]
    # each rank's masks, made from the gates on its samples, are those rows of the whole's
    assert np.array_equal(np.concatenate([g[1] for g in got], axis=1), bound.masks)


def _gather_shards(recipe_):
    mine = _shard_sizes(recipe_)
    box = [None] * distributed.world()
    torch.distributed.all_gather_object(box, mine)
    return box


def test_what_cannot_equal_one_process_is_refused():
    for bound, options, what in [(_mlp(), {"batch_size": 8},
                                 "--batch-size"), (_mlp(), {"method": "als"}, "als")]:
        with pytest.raises(bmdsl.BmdslError, match=what):
            DistributedTrainer(bound, **options)
    with pytest.raises(bmdsl.BmdslError, match="process group"):
        DistributedTrainer(_mlp())
    rng = np.random.default_rng(0)
    biased = bmdsl.parse(MLP + "bias output\n").derive().bind(
        {"X": rng.standard_normal((9, 3)), "Y": np.eye(2)[rng.integers(0, 2, 9)]})
    with pytest.raises(bmdsl.BmdslError, match="output bias"):
        DistributedTrainer(biased)
    with pytest.raises(bmdsl.BmdslError, match="ReLU cones .* need the cone interior point"):
        launch.fit(_relu(), 2, warm_start=False, progress=False, timeout=60)
    with pytest.raises(DistributedError, match="20 samples cannot be shared by 2 processes"):
        launch.fit(_mlp(20), 2, progress=False, timeout=60)      # blocks of >= 16 samples


def _killed(recipe_, path, kill_step, sig):
    """Newton without the Gram path (collectives every step); rank 1 is killed (or
    stopped) after `kill_step` steps."""
    def callback(step, t):
        if distributed.rank() == 1 and step == kill_step:
            os.kill(os.getpid(), sig)
    t = DistributedTrainer(launch.rebind(recipe_), progress=False, warm_start=False,
                           gram=False, checkpoint=path, checkpoint_every=1)
    return t.fit(callback=callback).objective


def _resumed(recipe_, path):
    t = DistributedTrainer(launch.rebind(recipe_), progress=False, warm_start=False,
                           gram=False)
    return t.fit(resume=path).objective


@pytest.mark.parametrize("sig, what", [(signal.SIGKILL, "rank 1 died (signal SIGKILL)"),
                                       (signal.SIGSTOP, "rank(s) 1 did not arrive")])
def test_a_dead_or_stalled_rank_ends_the_job_and_the_checkpoint_resumes(tmp_path, sig, what):
    bound = _mlp()
    path = str(tmp_path / "run.pt")
    start = time.monotonic()
    with pytest.raises(DistributedError, match=what.replace("(", r"\(").replace(")", r"\)")):
        launch.spawn(_killed, 2, (launch.recipe(bound), path, 3, sig), timeout=8)
    assert time.monotonic() - start < 60          # timeout 8 s + start-up + grace
    saved = checkpoint.read(path)                 # intact: its sha256 verifies
    assert saved["config"]["nproc"] == 2 and saved["run"]["step"] >= 1
    if sig == signal.SIGKILL:
        resumed = launch.spawn(_resumed, 2, (launch.recipe(bound), path), timeout=60)
        single = bound.to_torch(device="cpu", progress=False, warm_start=False,
                                gram=False).fit().objective
        assert abs(resumed - single) <= 1e-10 * single


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA devices (nccl)")
def test_nccl_on_two_gpus_reaches_the_one_process_objective():
    bound = _mlp()
    single = bound.to_torch(device="cuda", progress=False).fit()
    many = launch.fit(bound, 2, device="cuda", progress=False, timeout=120)
    assert many.device.startswith("cuda")
    assert abs(single.objective - many.objective) <= 1e-10 * abs(single.objective)
    c = single.certificate
    assert _same_gap(c.objective, c.dual_value, c.gap_bound, many.certificate.gap_bound)


def test_cli_nproc_trains_once_and_rank_0_writes(tmp_path, capsys, monkeypatch):
    import json

    from bmdsl.cli import main
    model = tmp_path / "mlp.bm"
    model.write_text(MLP)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((41, 3))
    np.savez(tmp_path / "d.npz", X=X, Y=np.eye(2)[rng.integers(0, 2, 41)])
    args = ["train", str(model), "--data", str(tmp_path / "d.npz"), "--no-progress"]
    assert main(args + ["--output", str(tmp_path / "one.npz")]) == 0
    assert main(args + ["--output", str(tmp_path / "two.npz"), "--nproc", "2",
                        "--dist-timeout", "60"]) == 0
    one, two = (json.loads((tmp_path / f"{k}.json").read_text())["result"]["objective"]
                for k in ("one", "two"))
    assert abs(one - two) <= 1e-10 * one
    # each rank read and bound only its rows, rank 0 too: a data limit below the file's
    # size but above a shard's refuses one process and lets two read (a compressed .npz
    # and .npy files alike), with --test-fraction's split
    np.savez_compressed(tmp_path / "c.npz", X=X, Y=np.load(tmp_path / "d.npz")["Y"])
    monkeypatch.setenv("BMDSL_MAX_DATA_BYTES", "1400")
    capsys.readouterr()
    assert main(args + ["--output", str(tmp_path / "no.npz")]) == 1
    assert "data limit" in capsys.readouterr().err
    split = ["--test-fraction", "0.2", "--split-seed", "3"]
    assert main(["train", str(model), "--data", str(tmp_path / "c.npz"), "--no-progress",
                 "--output", str(tmp_path / "three.npz"), "--nproc", "2"] + split) == 0
    monkeypatch.delenv("BMDSL_MAX_DATA_BYTES")
    assert main(args + ["--output", str(tmp_path / "four.npz")] + split) == 0
    runs = {k: json.loads((tmp_path / f"{k}.json").read_text())
            for k in ("one", "two", "three", "four")}
    saved = {k: np.load(tmp_path / f"{k}.npz") for k in runs}
    for a, b in (("one", "two"), ("four", "three")):
        # the saved patterns: all samples' masks, gathered (the same as one process's)
        assert all(np.array_equal(saved[a][k], saved[b][k]) for k in ("masks", "gates"))
        for part in runs[a]["metrics"]:    # metrics of all samples: sums all-reduced
            for key, value in runs[a]["metrics"][part].items():
                assert abs(runs[b]["metrics"][part][key] - value) <= 1e-12 * abs(value), key
    assert runs["three"]["metrics"]["test"]["n"] == 8 and saved["three"]["masks"].shape[1] == 33
    # a pattern file's gates, on each rank's rows
    assert main(args + ["--output", str(tmp_path / "five.npz"), "--nproc", "2",
                        "--patterns", str(tmp_path / "one.npz")]) == 0
    assert np.array_equal(np.load(tmp_path / "five.npz")["masks"], saved["one"]["masks"])
    monkeypatch.setenv("WORLD_SIZE", "3")        # as torchrun would, with another count
    capsys.readouterr()
    assert main(args + ["--output", str(tmp_path / "x.npz"), "--nproc", "2"]) == 1
    assert "--nproc 2 disagrees with WORLD_SIZE=3" in capsys.readouterr().err


def test_cli_nproc_trains_a_relu_model_on_shards(tmp_path):
    """`bmdsl train --nproc 2` of a model with ReLU cones: the other rank binds its shard
    only (commands/distributed_args.bind), and the result is one process's."""
    import json

    from bmdsl.cli import main
    model = tmp_path / "relu.bm"
    model.write_text(RELU)
    rng = np.random.default_rng(2)
    X = rng.standard_normal((33, 2))
    np.savez(tmp_path / "d.npz", X=X, Y=np.sign(X[:, 0] * X[:, 1] + 0.1))
    args = ["train", str(model), "--data", str(tmp_path / "d.npz"), "--no-progress"]
    assert main(args + ["--output", str(tmp_path / "one.npz")]) == 0
    assert main(args + ["--output", str(tmp_path / "two.npz"), "--nproc", "2",
                        "--dist-timeout", "60"]) == 0
    one, two = (json.loads((tmp_path / f"{k}.json").read_text())["result"]
                for k in ("one", "two"))
    assert abs(one["objective"] - two["objective"]) <= 1e-10 * one["objective"]
    gaps = [r["certificate"]["gap_bound"] for r in (one, two)]
    assert 0 <= gaps[0] < 1e-4 and abs(gaps[0] - gaps[1]) <= 1e-10 * one["objective"]
    # exact patterns: rank 0 enumerates them on every rank's rows of the arrangement
    # matrix (gathered) and broadcasts the gates; the saved masks are one process's
    exact = ["--patterns", "exact", "--m", "2"]
    assert main(args + ["--output", str(tmp_path / "e1.npz")] + exact) == 0
    assert main(args + ["--output", str(tmp_path / "e2.npz"), "--nproc", "2"] + exact) == 0
    e1, e2 = (np.load(tmp_path / f"e{k}.npz") for k in (1, 2))
    assert e1["masks"].shape[0] > 8 and np.array_equal(e1["masks"], e2["masks"])
    assert str(e2["source"]) == "exact"


def test_run_nproc_on_builtin_data_equals_one_process(tmp_path, capsys):
    """`bmdsl run --nproc 2` (built-in data, cut into shards): the convex program is
    skipped (no process holds all samples), the BM objective and the training metrics
    are one process's."""
    import json

    from bmdsl.cli import main
    model = tmp_path / "mlp.bm"
    model.write_text(MLP)
    args = ["run", str(model), "--no-plot", "--no-progress", "--steps", "30"]
    assert main(args + ["--output", str(tmp_path / "one"), "--max-convex-vars", "1"]) == 0
    assert main(args + ["--output", str(tmp_path / "two"), "--nproc", "2"]) == 0
    one, two = (json.loads((tmp_path / k / "mlp_run.json").read_text()) for k in ("one", "two"))
    assert "--nproc" in two["convex"]["status"] and two["convex"]["p_star"] is None
    assert abs(one["bm"]["objective"] - two["bm"]["objective"]) <= 1e-10 * one["bm"]["objective"]
    for key, value in one["metrics"]["train"].items():
        assert abs(two["metrics"]["train"][key] - value) <= 1e-12 * abs(value), key


def test_torchrun_starts_the_cli_on_two_ranks(tmp_path):
    """Under torchrun (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, LOCAL_RANK from its
    agent) `python -m bmdsl train` joins the group: rank 0 writes one process's result."""
    import json
    import subprocess
    import sys

    from bmdsl.cli import main
    from bmdsl.trainer.distributed import free_port
    model = tmp_path / "mlp.bm"
    model.write_text(MLP)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", X=rng.standard_normal((41, 3)),
             Y=np.eye(2)[rng.integers(0, 2, 41)])
    args = ["train", str(model), "--data", str(tmp_path / "d.npz"), "--no-progress"]
    assert main(args + ["--output", str(tmp_path / "one.npz")]) == 0
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1",
                "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
                "--master-port", str(free_port())]
    done = subprocess.run(torchrun + ["-m", "bmdsl"] + args + [
        "--output", str(tmp_path / "two.npz"), "--device", "cpu", "--dist-timeout", "60"],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    one, two = (json.loads((tmp_path / f"{k}.json").read_text()) for k in ("one", "two"))
    assert abs(one["result"]["objective"] - two["result"]["objective"]) <= \
        1e-10 * one["result"]["objective"]
    saved = [np.load(tmp_path / f"{k}.npz") for k in ("one", "two")]
    assert np.array_equal(saved[0]["masks"], saved[1]["masks"])
