"""Convergence plots as PNG without a plotting dependency.

A numpy RGB canvas, line segments, a 5x7 bitmap font, log-scale axes, and a PNG encoder
(zlib + CRC chunks). Enough for `bmdsl run`'s two panels: objective against iterations and
the certificate bounds (with the true gap when p* is known) against iterations.
"""
from __future__ import annotations

import math
import struct
import zlib

import numpy as np

# 5x7 glyphs, rows top to bottom; '#' is ink. Upper case is drawn as lower case.
_GLYPHS = {
    "0": ".###. #...# #..## #.#.# ##..# #...# .###.", "1": "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
    "2": ".###. #...# ....# ...#. ..#.. .#... #####", "3": "####. ....# ....# .###. ....# ....# ####.",
    "4": "...#. ..##. .#.#. #..#. ##### ...#. ...#.", "5": "##### #.... ####. ....# ....# #...# .###.",
    "6": ".###. #.... #.... ####. #...# #...# .###.", "7": "##### ....# ...#. ..#.. .#... .#... .#...",
    "8": ".###. #...# #...# .###. #...# #...# .###.", "9": ".###. #...# #...# .#### ....# ....# .###.",
    "a": "..... ..... .###. ....# .#### #...# .####", "b": "#.... #.... ####. #...# #...# #...# ####.",
    "c": "..... ..... .###. #.... #.... #...# .###.", "d": "....# ....# .#### #...# #...# #...# .####",
    "e": "..... ..... .###. #...# ##### #.... .###.", "f": "..##. .#..# .#... ###.. .#... .#... .#...",
    "g": "..... .#### #...# #...# .#### ....# .###.", "h": "#.... #.... #.##. ##..# #...# #...# #...#",
    "i": "..#.. ..... .##.. ..#.. ..#.. ..#.. .###.", "j": "...#. ..... ..##. ...#. ...#. #..#. .##..",
    "k": "#.... #.... #..#. #.#.. ##... #.#.. #..#.", "l": ".##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
    "m": "..... ..... ##.#. #.#.# #.#.# #...# #...#", "n": "..... ..... #.##. ##..# #...# #...# #...#",
    "o": "..... ..... .###. #...# #...# #...# .###.", "p": "..... ..... ####. #...# ####. #.... #....",
    "q": "..... ..... .#### #...# .#### ....# ....#", "r": "..... ..... #.##. ##..# #.... #.... #....",
    "s": "..... ..... .#### #.... .###. ....# ####.", "t": ".#... .#... ###.. .#... .#... .#..# ..##.",
    "u": "..... ..... #...# #...# #...# #..## .##.#", "v": "..... ..... #...# #...# #...# .#.#. ..#..",
    "w": "..... ..... #...# #...# #.#.# #.#.# .#.#.", "x": "..... ..... #...# .#.#. ..#.. .#.#. #...#",
    "y": "..... ..... #...# #...# .#### ....# .###.", "z": "..... ..... ##### ...#. ..#.. .#... #####",
    ".": "..... ..... ..... ..... ..... .##.. .##..", "-": "..... ..... ..... ##### ..... ..... .....",
    "+": "..... ..#.. ..#.. ##### ..#.. ..#.. .....", "(": "...#. ..#.. .#... .#... .#... ..#.. ...#.",
    ")": ".#... ..#.. ...#. ...#. ...#. ..#.. .#...", "=": "..... ..... ##### ..... ##### ..... .....",
    "/": "..... ....# ...#. ..#.. .#... #.... .....", "_": "..... ..... ..... ..... ..... ..... #####",
    ":": "..... .##.. .##.. ..... .##.. .##.. .....", ",": "..... ..... ..... ..... .##.. ..#.. .#...",
    "*": "..... ..#.. #.#.# .###. #.#.# ..#.. .....", "<": "...#. ..#.. .#... #.... .#... ..#.. ...#.",
    ">": ".#... ..#.. ...#. ....# ...#. ..#.. .#...", " ": "..... ..... ..... ..... ..... ..... .....",
}
_FONT = {c: np.array([[ch == "#" for ch in row] for row in g.split()], dtype=bool)
         for c, g in _GLYPHS.items()}
COLORS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14)]


class Canvas:
    def __init__(self, width: int, height: int):
        self.pixels = np.full((height, width, 3), 255, dtype=np.uint8)

    def text(self, x: int, y: int, s: str, color=(0, 0, 0), scale: int = 1) -> None:
        for i, ch in enumerate(s.lower()):
            glyph = _FONT.get(ch, _FONT["*"])
            big = np.kron(glyph, np.ones((scale, scale), dtype=bool))
            x0 = x + i * 6 * scale
            h, w = big.shape
            region = self.pixels[y:y + h, x0:x0 + w]
            region[big[:region.shape[0], :region.shape[1]]] = color

    def line(self, x0, y0, x1, y1, color, width: int = 2) -> None:
        n = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
        xs = np.rint(np.linspace(x0, x1, n)).astype(int)
        ys = np.rint(np.linspace(y0, y1, n)).astype(int)
        H, W, _ = self.pixels.shape
        for dx in range(width):
            for dy in range(width):
                ok = (xs + dx >= 0) & (xs + dx < W) & (ys + dy >= 0) & (ys + dy < H)
                self.pixels[ys[ok] + dy, xs[ok] + dx] = color

    def png(self) -> bytes:
        h, w, _ = self.pixels.shape
        raw = b"".join(b"\x00" + self.pixels[r].tobytes() for r in range(h))

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def _fmt(v: float) -> str:
    return f"{v:.0e}".replace("e-0", "e-").replace("e+0", "e")


def panel(c: Canvas, box, series: dict, title: str, *, log: bool = True, xlabel: str = "",
          markers: bool = False) -> None:
    """Draw named (x, y) series in box = (left, top, right, bottom) with axes and a legend."""
    left, top, right, bottom = box
    pts = {k: (np.asarray(x, float), np.asarray(y, float)) for k, (x, y) in series.items()}
    ys = np.concatenate([y[np.isfinite(y) & ((y > 0) if log else True)] for _, y in pts.values()]
                        or [np.array([1.0])])
    xs = np.concatenate([x for x, _ in pts.values()] or [np.array([0.0, 1.0])])
    if ys.size == 0:
        ys = np.array([1e-16, 1.0])
    lo, hi = (math.floor(math.log10(ys.min())), math.ceil(math.log10(ys.max()))) if log \
        else (ys.min(), ys.max())
    if hi <= lo:
        hi = lo + 1
    x0, x1 = xs.min(), max(xs.max(), xs.min() + 1)
    fy = lambda y: bottom - (((math.log10(y) if log else y) - lo) / (hi - lo)) * (bottom - top)  # noqa: E731
    fx = lambda x: left + (x - x0) / (x1 - x0) * (right - left)  # noqa: E731
    for a, b in (((left, top), (right, top)), ((left, bottom), (right, bottom)),
                 ((left, top), (left, bottom)), ((right, top), (right, bottom))):
        c.line(*a, *b, (0, 0, 0), 1)
    c.text(left, top - 14, title)
    step = max(1, (hi - lo) // 6) if log else (hi - lo) / 4
    k = lo
    while k <= hi + 1e-12:
        y = fy(10.0 ** k) if log else fy(k)
        c.line(left - 4, y, left, y, (0, 0, 0), 1)
        c.text(4, int(y) - 3, _fmt(10.0 ** k) if log else f"{k:.3g}")
        k += step
    for t in np.linspace(x0, x1, 5):
        c.line(fx(t), bottom, fx(t), bottom + 4, (0, 0, 0), 1)
        label = f"{t:.0f}"
        c.text(int(fx(t)) - 3 * len(label), bottom + 8, label)
    if xlabel:
        c.text((left + right) // 2 - 3 * len(xlabel), bottom + 20, xlabel)
    for i, (name, (x, y)) in enumerate(pts.items()):
        color = COLORS[i % len(COLORS)]
        keep = np.isfinite(y) & ((y > 0) if log else True)
        x, y = x[keep], y[keep]
        if markers:  # a small cross per point
            for xj, yj in zip(x, y):
                c.line(fx(xj) - 3, fy(yj) - 3, fx(xj) + 3, fy(yj) + 3, color)
                c.line(fx(xj) - 3, fy(yj) + 3, fx(xj) + 3, fy(yj) - 3, color)
        else:
            for j in range(len(x) - 1):
                c.line(fx(x[j]), fy(y[j]), fx(x[j + 1]), fy(y[j + 1]), color)
        if len(x) == 1 and not markers:
            c.line(fx(x[0]) - 2, fy(y[0]), fx(x[0]) + 2, fy(y[0]), color, 3)
        c.line(right - 170, top + 10 + 12 * i, right - 150, top + 10 + 12 * i, color, 3)
        c.text(right - 144, top + 7 + 12 * i, name[:24], color)


def convergence_png(path, history: dict, title: str) -> None:
    """history: {"step": [...], "objective": [...], and any bounds by name: [...]} -> PNG."""
    steps = history["step"]
    c = Canvas(760, 560)
    c.text(60, 6, title, scale=2)
    obj = {"objective": (steps, history["objective"])}
    panel(c, (70, 50, 740, 250), obj, "objective", log=False)
    # a series is either aligned with `step` or its own (x, y) pair
    bounds = {k: (v if isinstance(v, tuple) else (steps, v)) for k, v in history.items()
              if k not in ("step", "objective")}
    panel(c, (70, 310, 740, 510), bounds, "relative gap and certificate bounds (log)",
          xlabel="iteration")
    with open(path, "wb") as f:
        f.write(c.png())
