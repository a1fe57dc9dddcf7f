"""How a stage's latent representation is down-sampled before the next stage (registry).

    parse(2) == parse("2") == "average:2"      # 2 x 2 average pooling (lossy)
    parse("invertible") == "invertible:2"      # space-to-depth, f = 2 (exactly invertible)
    apply("invertible:2", H)                   # [n, C, h, w] -> [n, 4 C, h / 2, w / 2]

* `average:w`: the mean over non-overlapping w x w windows, partial windows dropped
  (w = 1: nothing is done). It loses the detail inside each window.
* `invertible:f`: space-to-depth (Dinh et al. 2016; torch.nn.functional.pixel_unshuffle):
  each f x f block of pixels becomes f^2 channels, so the grid shrinks by f and nothing is
  lost (pixel_shuffle undoes it exactly). A grid that f does not divide is first padded
  with zero rows and columns at the bottom and right, which keeps it invertible. This is
  the down-sampling of Belilovsky et al. 2019, used between the stages of Sahiner et al.
  2024, appendix C.2.

A down-sampling is stored as its canonical text `name:factor` (plain literals in the saved
stage and network files); an int w is read as `average:w`, as in files of version 1.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as tf

from ..core.errors import BmdslError
from ..core.limits import RANGES


def _average(H, f: int):
    return H if f == 1 else tf.avg_pool2d(H, f)


def _space_to_depth(H, f: int):
    pad_h, pad_w = -H.shape[-2] % f, -H.shape[-1] % f
    if pad_h or pad_w:
        H = tf.pad(H, (0, pad_w, 0, pad_h))      # zeros: still exactly invertible
    return tf.pixel_unshuffle(H, f)


@dataclass(frozen=True)
class Downsample:
    name: str
    apply: Callable             # (H [n, C, h, w], factor) -> the next stage's image
    shape: Callable             # (C, h, w, factor) -> its shape [C', h', w']
    default: int                # the factor of a bare name ("invertible")
    invertible: bool
    description: str


DOWNSAMPLES = {d.name: d for d in (
    Downsample("average", _average, lambda c, h, w, f: (c, h // f, w // f), 1, False,
               "average over non-overlapping f x f windows (partial windows dropped)"),
    Downsample("invertible", _space_to_depth,
               lambda c, h, w, f: (c * f * f, -(-h // f), -(-w // f)), 2, True,
               "space-to-depth: each f x f block becomes f^2 channels (pixel_unshuffle)"),
)}
WORDS = ("a whole number w >= 1 (w x w average pooling), 'invertible' (space-to-depth by 2) "
         "or 'invertible:f'")


def parse(token) -> str:
    """The canonical `name:factor` of an int, 'W', 'name' or 'name:F' (BmdslError if not)."""
    if isinstance(token, bool):
        raise BmdslError(f"a down-sampling is {WORDS}, not {token!r}")
    if isinstance(token, int):
        token = f"average:{token}"
    name, _, factor = str(token).strip().partition(":")
    if name.isdigit() and not factor:
        name, factor = "average", name
    entry = DOWNSAMPLES.get(name)
    try:
        f = entry.default if entry is not None and not factor else int(factor)
    except ValueError:
        f = None
    if entry is None or f is None or f not in RANGES["window"]:
        raise BmdslError(f"a down-sampling is {WORDS}, not {token!r}")
    return f"{name}:{f}"


def _entry(spec: str):
    name, factor = parse(spec).split(":")
    return DOWNSAMPLES[name], int(factor)


def apply(spec, H: torch.Tensor) -> torch.Tensor:
    entry, f = _entry(spec)
    return entry.apply(H, f)


def shape(spec, channels: int, height: int, width: int) -> tuple[int, int, int]:
    entry, f = _entry(spec)
    return entry.shape(channels, height, width, f)
