"""Test metrics chosen by the loss: what `bmdsl evaluate`, `run` and `train` report.

Each loss in `bmdsl.atoms.losses` declares `metrics` (keys of `METRICS`): a classification loss
an accuracy (cross_entropy: argmax over the class axis, the last; logistic: the sign of a
score against targets -1/+1), a regression loss the mean squared error and R^2. Every
report also carries n (samples) and the loss per sample, F(Yhat, Y) / n, the data term of
the training objective (F a sum over entries, docs/theory.md).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from ..core.errors import DataError


def _class_accuracy(yh, y):
    return float(np.mean(np.argmax(yh, axis=-1) == np.argmax(y, axis=-1)))


def _sign_accuracy(yh, y):
    return float(np.mean(np.where(yh >= 0, 1.0, -1.0) == np.sign(y)))


def _mse(yh, y):
    return float(np.mean((yh - y) ** 2))


def _r2(yh, y):
    """1 - SS_res / SS_tot with each output's mean over the samples (axis 0); NaN when
    the targets are constant (R^2 undefined)."""
    total = float(np.sum((y - y.mean(axis=0)) ** 2))
    return 1.0 - float(np.sum((y - yh) ** 2)) / total if total > 0 else math.nan


def _ratio(s):
    return float(s[0] / s[1]) if s[1] > 0 else math.nan


@dataclass(frozen=True)
class Metric:
    label: str                        # the name printed and stored in JSON records
    value: Callable                   # (Yhat, Y) -> float, arrays of the same shape
    doc: str
    decide: Optional[Callable] = None   # Yhat -> the predicted class (classification)
    # the metric from sums over samples, for samples held by several processes:
    # parts(Yhat, Y, mean of Y over all samples) -> sums, combine(sums of all) -> value
    parts: Optional[Callable] = None
    combine: Callable = _ratio


def _hits(hit):
    return [float(np.sum(hit)), float(np.size(hit))]


METRICS = {
    "accuracy": Metric("accuracy", _class_accuracy, "share of rows whose largest score is "
                       "the target's class", lambda yh: np.argmax(yh, axis=-1),
                       lambda yh, y, mean: _hits(np.argmax(yh, axis=-1) == np.argmax(y, axis=-1))),
    "sign_accuracy": Metric("accuracy", _sign_accuracy, "share of scores with the target's "
                            "sign (-1/+1)", lambda yh: np.where(yh >= 0, 1.0, -1.0),
                            lambda yh, y, mean: _hits(np.where(yh >= 0, 1.0, -1.0) == np.sign(y))),
    "mse": Metric("mse", _mse, "mean of (Yhat - Y)^2 over all entries",
                  parts=lambda yh, y, mean: [float(np.sum((yh - y) ** 2)), float(y.size)]),
    "r2": Metric("r2", _r2, "1 - sum (Y - Yhat)^2 / sum (Y - mean Y)^2",
                 parts=lambda yh, y, mean: [float(np.sum((y - yh) ** 2)),
                                            float(np.sum((y - mean) ** 2))],
                 combine=lambda s: 1.0 - float(s[0] / s[1]) if s[1] > 0 else math.nan),
}


def aligned(Yhat, Y, target="the target"):
    """Y in Yhat's shape: a target [n] for a prediction [n, 1] gains its axis."""
    Yhat, Y = np.asarray(Yhat, dtype=np.float64), np.asarray(Y, dtype=np.float64)
    if Y.ndim == Yhat.ndim - 1 and Yhat.shape[-1] == 1:
        Y = Y[..., None]
    if Y.shape != Yhat.shape:
        raise DataError(f"{target} has shape {Y.shape}, but the network predicts "
                        f"{Yhat.shape}; give one target row per input sample")
    return Yhat, Y


def scores(loss, Yhat, Y, target="the target") -> dict:
    """{"n", "loss", <metric labels>...} for predictions Yhat of targets Y (samples first)."""
    Yhat, Y = aligned(Yhat, Y, target)
    problem = loss.target_check(Y)
    if problem:
        raise DataError(f"{target}: {problem}")
    out = {"n": int(Y.shape[0]), "loss": loss.value(Yhat, Y) / max(Y.shape[0], 1)}
    out.update({METRICS[k].label: METRICS[k].value(Yhat, Y) for k in loss.metrics})
    # undefined (R^2 of constant targets) or overflowed values are None: valid JSON, "-"
    return {k: v if math.isfinite(v) else None for k, v in out.items()}


def sharded_scores(loss, Yhat, Y, total, target="the target") -> dict:
    """`scores` of the samples of all processes, each holding some (Yhat, Y: its own);
    total(array) -> its sum over the processes. Two reductions: n and the target's sum
    over samples (its mean, for R^2), then every metric's sums and the loss."""
    Yhat, Y = aligned(Yhat, Y, target)
    problem = loss.target_check(Y)
    if problem:
        raise DataError(f"{target}: {problem}")
    first = total(np.concatenate([[Y.shape[0]], Y.sum(axis=0).reshape(-1)]))
    n = int(round(first[0]))
    mean = (first[1:] / max(n, 1)).reshape(Y.shape[1:])
    parts = [loss.value(Yhat, Y)]
    for k in loss.metrics:
        parts += list(METRICS[k].parts(Yhat, Y, mean))
    sums = total(np.asarray(parts, dtype=np.float64))
    out, at = {"n": n, "loss": float(sums[0]) / max(n, 1)}, 1
    for k in loss.metrics:
        width = len(METRICS[k].parts(Yhat[:0], Y[:0], mean))
        out[METRICS[k].label] = METRICS[k].combine(sums[at:at + width])
        at += width
    return {k: v if math.isfinite(v) else None for k, v in out.items()}


def decisions(loss, Yhat) -> dict:
    """The predicted classes for a classification loss ({"class": ...}), else {}."""
    return {"class": METRICS[k].decide(np.asarray(Yhat)) for k in loss.metrics
            if METRICS[k].decide is not None}


def rows(reports: dict) -> list:
    """Table rows (name, value, note) for {"train": scores, "test": scores}; the key ""
    gives unprefixed names."""
    out = []
    for split, report in reports.items():
        for key, value in report.items():
            if key != "n":
                note = f"{report['n']} samples" + (", per sample" if key == "loss" else "")
                out.append((f"{split} {key}".strip(), value, note))
    return out
