"""Figures with matplotlib (Agg backend: no display needed), PNG, PDF or SVG by suffix.

`convergence_plot` draws `bmdsl run`'s two panels: the BM objective against iterations,
and the certificate bounds (with the true relative gap when p* is known) on a log axis.
`save_figure` draws any list of `Panel`s (examples/paper_experiment.py uses it).

matplotlib is imported inside the drawing function, so `import bmdsl` stays fast. A series
on a log axis that takes negative values (a true gap below the solver's tolerance, when
p_BM lands under the computed p*) is drawn as its absolute value, labelled `|name|`, with
its negative points marked by a hollow downward triangle: a gap never vanishes from the plot
because it changed sign.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.errors import BmdslError

# output suffix -> matplotlib format name
FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg"}


@dataclass
class Panel:
    """One axes: named series `{name: (x, y)}`, drawn as lines (or markers only)."""
    title: str
    series: dict
    ylabel: str
    xlabel: str = "iteration"
    log: bool = True
    markers: bool = False
    xticks: list = field(default_factory=list)   # optional [(position, label)]
    xlog: bool = False                            # log x axis (e.g. beta on a path)


def figure_format(path) -> str:
    """The format chosen by `path`'s suffix; a BmdslError naming the accepted ones."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise BmdslError(f"cannot write a figure to {path}: unknown format "
                         f"{suffix or '(no suffix)'!r}",
                         hint="name the file .png, .pdf or .svg")
    return FORMATS[suffix]


def _signed_on_log(name: str, x, y):
    """(label, x, |y|, x of negative points, |y| there) for a log axis; zeros and
    non-finite values are left out (a log axis has no place for them)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(y) & (y != 0)
    x, y = x[keep], y[keep]
    negative = y < 0
    label = f"|{name}| (negative: \u25bd)" if negative.any() else name
    return label, x, np.abs(y), x[negative], np.abs(y[negative])


def _draw(ax, panel: Panel) -> None:
    for i, (name, (x, y)) in enumerate(panel.series.items()):
        color = f"C{i}"
        style = dict(marker="x", linestyle="none") if panel.markers else dict(linewidth=1.5)
        if panel.log:
            label, x, y, xn, yn = _signed_on_log(name, x, y)
            if len(xn):
                ax.plot(xn, yn, "v", color=color, markersize=6, markerfacecolor="none")
        else:
            x, y = np.asarray(x, float), np.asarray(y, float)
            keep = np.isfinite(y)
            label, x, y = name, x[keep], y[keep]
        if len(x) == 1 and not panel.markers:
            style = dict(marker="o", linestyle="none")
        ax.plot(x, y, color=color, label=label, **style)
    if panel.log:
        ax.set_yscale("log")
    else:
        ax.ticklabel_format(axis="y", useOffset=False)   # ticks read as values, not offsets
    if panel.xlog:
        ax.set_xscale("log")
    if panel.xticks:
        ax.set_xticks([p for p, _ in panel.xticks], [s for _, s in panel.xticks],
                      rotation=90, fontsize=7)
    ax.set_title(panel.title, fontsize=10)
    ax.set_xlabel(panel.xlabel)
    ax.set_ylabel(panel.ylabel)
    ax.grid(True, which="major", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="best")


def draw(title: str, panels: list[Panel], *, width: float = 8.0, panel_height: float = 3.4):
    """A matplotlib Figure (not attached to pyplot: no global state, no display) with
    `panels` one above the other under `title`."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, panel_height * len(panels) + 0.6), layout="constrained")
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, panel in zip(axes, panels):
        _draw(ax, panel)
    fig.suptitle(title, fontsize=12)
    return fig


def save_figure(path, title: str, panels: list[Panel], **size) -> Path:
    """`draw` and save to `path`, in the format its suffix names (.png, .pdf or .svg).
    Raises BmdslError for another suffix or a file that cannot be written."""
    fmt = figure_format(path)
    fig = draw(title, panels, **size)
    try:
        fig.savefig(path, format=fmt, dpi=120)
    except OSError as exc:
        raise BmdslError(f"cannot write the figure {path}: {exc.strerror or exc}") from None
    return Path(path)


def convergence_panels(history: dict) -> list[Panel]:
    """history: {"step": [...], "objective": [...], and any bounds by name}: each bound is
    aligned with `step` or its own (x, y) pair. Two panels: the objective (log scale when it
    spans more than two decades) and the bounds on a log scale."""
    steps = history["step"]
    objective = np.asarray(history["objective"], float)
    finite = objective[np.isfinite(objective)]
    wide = finite.size and finite.min() > 0 and finite.max() > 100 * finite.min()
    bounds = {k: (v if isinstance(v, tuple) else (steps, v)) for k, v in history.items()
              if k not in ("step", "objective")}
    panels = [Panel("objective", {"objective": (steps, objective)}, "objective",
                    log=bool(wide))]
    if bounds:
        panels.append(Panel("relative gap and certificate bounds", bounds,
                            "relative gap (log scale)"))
    return panels


def convergence_plot(path, history: dict, title: str) -> Path:
    """`bmdsl run`'s figure (see `convergence_panels`) saved to path (.png, .pdf, .svg)."""
    return save_figure(path, title, convergence_panels(history))
