"""The .bm model texts the tests share: the two-layer MLP (vector output, Sahiner et al. 2024,
eq. (1); scalar output, Pilanci & Ergen 2020), the CNN with im2col patches and linear pooling
(eq. (22)) and one block of self-attention (eq. (8)).

Each builder returns the statements in the order the tests have always written them:
model, input, target, [patches, pool], units, weights, layer, output, then the optional
activation, loss and regularize lines and any `extra_lines`, one statement a line, ending with
a newline. `align` pads each statement keyword (not `model`) to that many columns, as the
shipped .bm files do (`align=8`: "input   X[n, d]"); 0 writes one space. A value may be a
str.format placeholder such as "{act}" for tests that fill the text in later.
"""
from __future__ import annotations

from collections.abc import Iterable


def regularize(beta="0.1", C="l2", R="l2") -> str:
    """The body of a `regularize` line: beta = .., C = .., R = .. (C or R None: left out)."""
    parts = [f"beta = {beta}"] + [f"{k} = {v}" for k, v in (("C", C), ("R", R)) if v is not None]
    return ", ".join(parts)


def _statement(keyword: str, body: str, align: int) -> str:
    return (keyword.ljust(align) if len(keyword) < align else keyword + " ") + body


def _text(name, head, activation, loss, regularize_, extra_lines, align) -> str:
    lines = [f"model {name}"] + [_statement(k, b, align) for k, b in head]
    tail = (("activation", activation), ("loss", loss), ("regularize", regularize_))
    lines += [_statement(k, b, align) for k, b in tail if b is not None]
    return "\n".join(list(lines) + list(extra_lines)) + "\n"


def mlp(name="mlp", m=4, scalar=False, activation=None, loss=None, regularize=None,
        extra_lines: Iterable[str] = (), align=0) -> str:
    """The MLP Yhat = sum_j act(X w1_j) w2_j^T; `scalar`: one output, target Y[n], W2 scalar."""
    target, w2, out = ("Y[n]", "W2", "Yhat[n] = act(A)[n] * W2") if scalar else \
        ("Y[n, c]", "W2[c]", "Yhat[n, o] = act(A)[n] * W2[o]")
    head = (("input", "X[n, d]"), ("target", target), ("units", f"m = {m}"),
            ("weights", f"W1[d], {w2}"), ("layer", "A[n] = X[n, i] * W1[i]"), ("output", out))
    return _text(name, head, activation, loss, regularize, extra_lines, align)


def cnn(name="cnn", m=4, kernel=3, padding=1, pool="average(2x2)", activation=None, loss=None,
        regularize=None, extra_lines: Iterable[str] = (), align=0) -> str:
    """The CNN Yhat_i = sum_j W2_j P act(X_i w1_j), X_i the im2col patches of image i."""
    head = (("input", "I[n, ch, height, width]"), ("target", "Y[n, c]"),
            ("patches", f"X[n, k, h] = im2col(I, kernel = {kernel}, stride = 1, "
                        f"padding = {padding})"),
            ("pool", f"P[a, k] = {pool}"), ("units", f"m = {m}"), ("weights", "W1[h], W2[c, a]"),
            ("layer", "A[n, r] = X[n, r, i] * W1[i]"),
            ("output", "Yhat[n, o] = W2[o, b] * P[b, r] * act(A)[n, r]"))
    return _text(name, head, activation, loss, regularize, extra_lines, align)


def attention(name="attention", m=4, activation=None, loss=None, regularize=None,
              extra_lines: Iterable[str] = (), align=0) -> str:
    """Self-attention Yhat_i = sum_j act(X_i W1_j X_i^T) X_i W2_j, without softmax."""
    head = (("input", "X[n, s, d]"), ("target", "Y[n, s, c]"), ("units", f"m = {m}"),
            ("weights", "W1[d, d], W2[d, c]"),
            ("layer", "A[n, s, t] = X[n, s, e] * W1[e, f] * X[n, t, f]"),
            ("output", "Yhat[n, s, o] = act(A)[n, s, t] * X[n, t, g] * W2[g, o]"))
    return _text(name, head, activation, loss, regularize, extra_lines, align)


BUILDERS = {"mlp": mlp, "mlp_scalar": lambda **kw: mlp(scalar=True, **kw), "cnn": cnn,
            "attention": attention}

# The small gated-ReLU MLP the trainer, CLI and output tests run end to end.
TINY = mlp("tiny", m=5, activation="gated_relu(patterns = 6, seed = 0)", loss="squared",
           regularize=regularize("1e-2"))


def layerwise_stage(name="stage", patterns=3, patches=""):
    """The layerwise tests' stage model: the cnn with global pooling (q = c = 2, so Z_k has
    rank <= 2 and m = 2 units can reach the optimum); `patches` replaces the cnn's."""
    return (f"\nmodel {name}\narchitecture cnn\n{patches}pool P[a, k] = global\nunits m = 2\n"
            f"activation gated_relu(patterns = {patterns}, seed = 0)\nloss squared\n"
            f"regularize beta = 1e-2, C = l2, R = l2\n")


def image_split():
    """The layerwise tests' tiny image split: 16 training and 6 test 1 x 4 x 4 images of 2
    classes, as train_layerwise takes them ({"images", "labels"})."""
    from bmdsl.bind.datasets import images
    d = images(n=16, channels=1, height=4, width=4, classes=2, seed=0)
    t = images(n=6, channels=1, height=4, width=4, classes=2, seed=1)
    return ({"images": d["I"], "labels": d["Y"].argmax(1)},
            {"images": t["I"], "labels": t["Y"].argmax(1)})
