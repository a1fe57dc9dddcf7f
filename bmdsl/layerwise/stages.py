"""Greedy layerwise training from convex stages (Sahiner et al. 2024, section 4.2).

    result = train_layerwise(model, train, test, stages=3, downsample=(2, "invertible"))
    result.network(images)          # the stacked torch.nn.Module; result.stages: records

Stage s trains its stage model -- any two-layer CNN the language accepts; one model for
every stage, or a list (stage s takes the s-th, the last one every later stage) -- on x_s:
its convex program (23) solved through the BM factorization (24) by `bmdsl.trainer.Trainer`
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
from dataclasses import dataclass, field

import numpy as np
import torch

from ..core.errors import BmdslError
from ..trainer.checkpoint import digest_arrays, digest_literal
from ..trainer.spec import build_spec
from .downsample import WORDS, parse
from .latent import check_stage_spec, representation
from .network import LayerwiseNetwork
from .solve import check_units, train_stage
from .store import StageStore

log = logging.getLogger("bmdsl.layerwise")
MAX_STAGES = 50


@dataclass
class StageOptions:
    """Trainer options shared by every stage (docs/trainer.md); `m` units per pattern (None:
    the model's; "full": min(p, q) of each stage, solve.py); a full-batch stage stops once
    its duality-gap bound is <= `cert_tol` (None: the trainer's default target, 1e-6);
    `refine_iters` bounds the dual-point refinement of an uncertified stage's (or a
    mini-batch stage's) certificate (each iteration is a pass over the data);
    `max_steps`, `epochs` and `time_limit` are per stage."""
    method: str = "auto"
    m: int | str | None = None
    seed: int = 0
    dtype: str = "float64"
    device: object = None
    lr: float | None = None
    batch_size: int | None = None
    max_steps: int | None = None
    epochs: int | None = None
    time_limit: float | None = None
    tol: float = 1e-12
    cert_tol: float | None = None
    refine_iters: int = 50
    checkpoint_every: int | None = None
    progress: object = None
    memory_budget: object = None

    def digest(self) -> dict:
        """What a resumed run must share (not the device, progress or time limit)."""
        return {k: getattr(self, k) for k in ("method", "m", "seed", "dtype", "lr",
                                               "batch_size", "max_steps", "epochs", "tol",
                                               "cert_tol", "refine_iters")}


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


def models_for(model) -> list:
    """The stage models: one model (every stage), or a non-empty list whose s-th is stage
    s's and whose last serves every later stage (so a resumed run may add stages)."""
    models = list(model) if isinstance(model, (list, tuple)) else [model]
    if not models:
        raise BmdslError("no stage model given", hint="pass one model, or one per stage")
    return models


def stage_model(models: list, s: int):
    return models[min(s, len(models)) - 1]


def config_of(models, specs, train, test, options: StageOptions) -> dict:
    """The digest a resumed run is checked against (stages excluded: they may grow; one
    model keeps the record of runs made before per-stage models)."""
    data = {"train_images": train["images"], "train_labels": train["labels"]}
    if test is not None:
        data.update(test_images=test["images"], test_labels=test["labels"])
    names, digests = [m.name for m in models], [digest_literal(s) for s in specs]
    one = len(models) == 1
    return {"model": names[0] if one else names,
            "model_digest": digests[0] if one else digests,
            "data_digest": digest_arrays(data), **options.digest()}


def train_layerwise(model, train: dict, test: dict | None, stages: int, downsample=1,
                    options: StageOptions | None = None, directory=None,
                    resume: bool = False) -> LayerwiseResult:
    """Train `stages` stages of `model` (one model, or a list: models_for) on {"images",
    "labels"} (module doc); with a `directory`, each finished stage is saved there and
    `resume` continues from it."""
    if isinstance(stages, bool) or not isinstance(stages, int) or \
            not 1 <= stages <= MAX_STAGES:
        raise BmdslError(f"the number of stages must be a whole number from 1 to "
                         f"{MAX_STAGES}, not {stages!r}")
    options = options or StageOptions()
    downsamples = downsamples_for(downsample, stages)
    models = models_for(model)
    specs = [build_spec(m.derive()) for m in models]
    for spec in specs:
        check_stage_spec(spec)
    check_units(options.m)                   # a bad m before any work
    for part, d in (("train", train), ("test", test)):
        _check_images(part, d)
    classes = int(train["labels"].max()) + 1
    store = None if directory is None else StageStore(directory, config_of(
        models, specs, train, test, options))
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
            net, record = train_stage(stage_model(models, s), s, xs["train"],
                                      train["labels"], classes, options, store, resume,
                                      stage_model(specs, s))
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
