"""Greedy layerwise training from convex stages (Sahiner et al. 2024, section 4.2).

    result = train_layerwise(model, train, test, stages=3, downsample=(2, "invertible"))
    result.network(images)          # the stacked torch.nn.Module; result.stages: records

Stage s trains the stage model -- any two-layer CNN the language accepts -- on x_s: its
convex program (23) solved through the BM factorization (24) by `bmdsl.trainer.Trainer`
(one objective per stage, certified by `bmdsl.certificates`: the Fenchel duality-gap
bound and Theorem 3.4, eq. (20)). Its weights are then frozen and its BM latent
representation x_{s+1} (latent.py: the m P unit activations, down-sampled -- average-pooled
over w x w windows or by the invertible space-to-depth, downsample.py -- and divided by
their training RMS) is the input of stage s + 1. Each finished stage
is saved (store.py), so a run resumes at the stage it stopped in; inside a stage the
trainer's own checkpoint resumes to the same factors.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..core import footprint, memory
from ..core.errors import BmdslError
from ..trainer import Trainer
from ..trainer.certificate import certify
from ..trainer.checkpoint import digest_arrays, digest_literal
from ..trainer.spec import build_spec
from .data import one_hot
from .downsample import WORDS, parse
from .latent import check_stage_spec, representation
from .network import LayerwiseNetwork
from .store import StageStore

log = logging.getLogger("bmdsl.layerwise")
MAX_STAGES = 50


@dataclass
class StageOptions:
    """Trainer options shared by every stage (docs/trainer.md); `refine_iters` bounds the
    certificate's dual-point refinement (each iteration is a pass over the data);
    `max_steps`, `epochs` and `time_limit` are per stage."""
    method: str = "auto"
    m: int | None = None
    seed: int = 0
    dtype: str = "float64"
    device: object = None
    lr: float | None = None
    batch_size: int | None = None
    max_steps: int | None = None
    epochs: int | None = None
    time_limit: float | None = None
    tol: float = 1e-12
    refine_iters: int = 50
    checkpoint_every: int | None = None
    progress: object = None
    memory_budget: object = None

    def digest(self) -> dict:
        """What a resumed run must share (not the device, progress or time limit)."""
        return {k: getattr(self, k) for k in ("method", "m", "seed", "dtype", "lr",
                                               "batch_size", "max_steps", "epochs", "tol",
                                               "refine_iters")}


@dataclass
class LayerwiseResult:
    network: LayerwiseNetwork
    stages: list = field(default_factory=list)     # one record (dict) per stage

    def table(self) -> str:
        head = (f"{'stage':>5} {'input':>14} {'P':>4} {'m':>3} {'mP':>5} {'Pac':>7} "
                f"{'objective':>12} {'gap bound':>10} {'train':>6} {'test':>6} {'s':>7}")
        rows = [head]
        for r in self.stages:
            test = "-" if r["test_accuracy"] is None else f"{r['test_accuracy']:.4f}"
            rows.append(f"{r['stage']:>5} {'x'.join(map(str, r['input'])):>14} {r['P']:>4} "
                        f"{r['m']:>3} {r['latent_channels']:>5} "
                        f"{r['convex_latent_channels']:>7} {r['objective']:>12.6g} "
                        f"{_num(r['gap_bound']):>10} {r['train_accuracy']:>6.4f} {test:>6} "
                        f"{r['seconds']:>7.1f}")
        return "\n".join(rows)


def _num(x):
    return "-" if x is None else f"{x:.2e}"


def downsamples_for(downsample, stages: int) -> list[str]:
    """One down-sampling per stage transition (downsample.parse: 2, "invertible", ...): a
    single value repeats."""
    given = [downsample] if isinstance(downsample, (int, str)) else list(downsample)
    d = [parse(x) for x in given]
    if len(d) == 1:
        d = d * max(stages - 1, 0)
    if len(d) != max(stages - 1, 0):
        raise BmdslError(f"{stages} stage(s) need {max(stages - 1, 0)} down-sampling(s) (one "
                         f"per stage transition, or one for all), not {given}",
                         hint=f"each is {WORDS}")
    return d


def config_of(model, train, test, options: StageOptions) -> dict:
    """The digest a resumed run is checked against (stages excluded: they may grow)."""
    data = {"train_images": train["images"], "train_labels": train["labels"]}
    if test is not None:
        data.update(test_images=test["images"], test_labels=test["labels"])
    return {"model": model.name, "model_digest": digest_literal(build_spec(model.derive())),
            "data_digest": digest_arrays(data), **options.digest()}


def train_layerwise(model, train: dict, test: dict | None, stages: int, downsample=1,
                    options: StageOptions | None = None, directory=None,
                    resume: bool = False) -> LayerwiseResult:
    """Train `stages` stages of `model` on {"images", "labels"} (module doc); with a
    `directory`, each finished stage is saved there and `resume` continues from it."""
    if isinstance(stages, bool) or not isinstance(stages, int) or \
            not 1 <= stages <= MAX_STAGES:
        raise BmdslError(f"the number of stages must be a whole number from 1 to "
                         f"{MAX_STAGES}, not {stages!r}")
    options = options or StageOptions()
    downsamples = downsamples_for(downsample, stages)
    check_stage_spec(build_spec(model.derive()))
    for part, d in (("train", train), ("test", test)):
        _check_images(part, d)
    classes = int(train["labels"].max()) + 1
    store = None if directory is None else StageStore(directory, config_of(
        model, train, test, options))
    if store is not None:
        store.prepare(resume)
    done = store.resume() if store is not None and resume else []
    if len(done) > stages:
        raise BmdslError(f"{directory} holds {len(done)} finished stages; asked for {stages}",
                         hint=f"pass --stages {len(done)} or more")
    xs = {"train": torch.as_tensor(train["images"]),
          "test": None if test is None else torch.as_tensor(test["images"])}
    nets, scales, records = [], [], []
    for s in range(1, stages + 1):
        down = downsamples[s - 1] if s < stages else None
        if s <= len(done):
            net, saved, scale, record = done[s - 1]
            if saved is not None and down is not None and saved != down:
                raise BmdslError(f"stage {s} of {directory} was saved with down-sampling "
                                 f"{saved}, not {down}")
            log.info("stage %d/%d: resumed from %s", s, stages, directory)
        else:
            net, record = _train_stage(model, s, xs["train"], train["labels"], classes,
                                       options, store, resume)
            scale = None
        if down is not None and scale is None:
            # (a stage saved as the last one had no down-sampling yet: as if run at once)
            scale = _rms(representation(net, xs["train"], down))
        record = dict(record, **_accuracies(net, xs, train, test))
        test_acc = record["test_accuracy"]
        log.info("stage %d/%d: train accuracy %.4f, test accuracy %s", s, stages,
                 record["train_accuracy"], "-" if test_acc is None else f"{test_acc:.4f}")
        if store is not None and s > len(done):
            store.save_stage(s, net, down, scale, record)
        nets.append(net)
        records.append(record)
        if s < stages:
            scales.append(scale)
            xs = {k: None if x is None else representation(net, x, down, scale)
                  for k, x in xs.items()}
    network = LayerwiseNetwork(nets, downsamples, scales)
    return LayerwiseResult(network, records)


def _check_images(part, d) -> None:
    if d is None:
        return
    x, y = np.asarray(d.get("images")), np.asarray(d.get("labels"))
    if x.ndim != 4 or y.ndim != 1 or x.shape[0] != y.shape[0] or x.shape[0] == 0 or \
            not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise BmdslError(f"the {part} data must be images [n, channels, height, width] and "
                         f"whole class labels 0..c-1 [n]; got images {list(x.shape)}, "
                         f"labels {list(y.shape)} of {y.dtype}")


def _rms(x) -> float:
    r = float(torch.sqrt(torch.mean(x.double() ** 2)))
    return r if r > 0 and math.isfinite(r) else 1.0


def _accuracies(net, xs, train, test) -> dict:
    """Accuracy of the stage's own classifier on its inputs (argmax over classes)."""
    out = {}
    for part, labels in (("train", train["labels"]), ("test", None if test is None
                                                       else test["labels"])):
        if labels is None:
            out[f"{part}_accuracy"] = None
            continue
        with torch.no_grad():
            yhat = torch.cat([net(xs[part][i:i + 1024]).cpu()
                              for i in range(0, len(labels), 1024)])
        out[f"{part}_accuracy"] = float(np.mean(yhat.argmax(-1).cpu().numpy() == labels))
    return out


def _train_stage(model, s, x, labels, classes, options, store, resume):
    spec = build_spec(model.derive())
    name, target = spec["inputs"][0][0], spec["target"]
    p = spec["patches"][0]
    # the stage's patches are built by bind: checked against the budget first
    memory.require(footprint.patches(tuple(x.shape), p["kernel"], p["stride"], p["padding"]),
                   options.memory_budget, prefix=f"stage {s}: ")
    bound = model.derive().bind({name: x.cpu().numpy(), target: one_hot(labels, classes)})
    method, batch = _batches(bound, options)
    ckpt = None if store is None else store.checkpoint(s)
    trainer = Trainer(bound, device=options.device, dtype=options.dtype, method=method,
                      m=options.m, seed=options.seed, lr=options.lr, batch_size=batch,
                      checkpoint=ckpt, checkpoint_every=options.checkpoint_every,
                      interrupt_checkpoint=ckpt, progress=options.progress,
                      memory_budget=options.memory_budget)
    log.info("stage %d: input %s, P = %d, m = %d, p = %d, q = %d; %s on %s%s", s,
             list(x.shape[1:]), bound.P, trainer.m, bound.p, bound.q, trainer.method_name,
             trainer.device, "" if trainer.batch_size is None else
             f", mini-batches of {trainer.batch_size}")
    steps = options.max_steps
    if steps is None and options.epochs is not None:
        steps = options.epochs * trainer.batches_per_epoch
    resume = ckpt if resume and ckpt is not None and ckpt.exists() else None
    if resume is not None:
        log.info("stage %d: resuming its training from %s", s, ckpt)
    result = trainer.fit(steps, tol=options.tol, resume=resume,
                         time_limit=options.time_limit, certify=False)
    start = time.perf_counter()
    cert = certify(bound, result.U, result.V, refine_iters=options.refine_iters,
                   gram=trainer.problem.gram)
    log.info("stage %d: objective %.10g, (p - p*)/p* <= %.3e", s, result.objective,
             cert.gap_bound)
    record = {"stage": s, "input": list(x.shape[1:]), "n": int(x.shape[0]), "P": bound.P,
              "m": trainer.m, "p": bound.p, "q": bound.q,
              "latent_channels": bound.P * trainer.m, "convex_latent_channels": bound.P * bound.q,
              "method": trainer.method_name, "batch_size": trainer.batch_size,
              "device": str(trainer.device), "steps": result.steps,
              "seconds": result.seconds, "certificate_seconds": time.perf_counter() - start,
              "stopped": result.stopped, "objective": result.objective,
              "gap_bound": _finite(cert.gap_bound), "thm34_bound": _finite(cert.thm34_bound),
              "thm34_applicable": bool(cert.thm34_applicable)}
    return trainer.network(prune=False), record


def _finite(x):
    x = float(x)
    return x if math.isfinite(x) else None


def _batches(bound, options):
    """(method, batch size): the full batch when the trainer's estimate fits the memory
    budget, else the largest halving of n that fits (adam when the method is auto)."""
    itemsize = 8 if options.dtype == "float64" else 4
    m = options.m or bound.m
    if options.batch_size is not None or memory.fits(
            footprint.trainer_for(bound, m, itemsize, options.method, None),
            options.memory_budget):
        return options.method, options.batch_size
    method = "adam" if options.method == "auto" else options.method
    n = bound.Y.shape[0]
    b = n // 2
    while b >= 1:
        if memory.fits(footprint.trainer_for(bound, m, itemsize, method, b),
                       options.memory_budget):
            log.info("the full batch does not fit the memory budget: %s on mini-batches "
                     "of %d", method, b)
            return method, b
        b //= 2
    return options.method, None      # nothing fits: the Trainer names the estimate
