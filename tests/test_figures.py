"""Figures (bmdsl/workflow/plot.py, matplotlib) and the Jupyter displays of a derivation, a bound
model and a training result.

The files are checked as files (magic header, size), the drawings through the matplotlib
Figure: axis labels, log scale, and a true gap that turns negative (p_BM a hair below the
solver's p*) still drawn, as |true gap| with its negative points marked."""
from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

import bmdsl
from bmdsl.bind import datasets
from bmdsl.cli import main
from bmdsl.commands.run import _plot
from bmdsl.workflow.plot import Panel, convergence_panels, draw, save_figure

MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "pdf": b"%PDF-"}
STEPS = list(range(0, 60, 10))
P_STAR = 2.0
# the objective falls through p*: the last two true gaps are negative
OBJECTIVE = [2.5, 2.1, 2.01, 2.0001, 2.0 - 1e-9, 2.0 - 2e-9]
HISTORY = {"step": STEPS, "objective": OBJECTIVE,
           "true gap": [(v - P_STAR) / P_STAR for v in OBJECTIVE],
           "duality-gap bound": ([20, 40, 50], [1e-1, 1e-4, 1e-8])}


def valid(path, fmt: str) -> bytes:
    data = path.read_bytes()
    assert len(data) > 5000, f"{path} is only {len(data)} bytes"
    if fmt == "svg":
        assert data.lstrip().startswith(b"<?xml") and b"<svg" in data[:2000]
    else:
        assert data.startswith(MAGIC[fmt])
    return data


@pytest.mark.parametrize("fmt", ["png", "pdf", "svg"])
def test_the_suffix_chooses_the_format(tmp_path, fmt):
    path = save_figure(tmp_path / f"f.{fmt.upper() if fmt == 'pdf' else fmt}", "title",
                       convergence_panels(HISTORY))
    valid(path, fmt)


def test_a_negative_true_gap_is_drawn_as_its_absolute_value():
    fig = draw("t", convergence_panels(HISTORY))
    top, bottom = fig.axes
    assert top.get_ylabel() == "objective" and top.get_xlabel() == "iteration"
    assert top.get_yscale() == "linear" and bottom.get_yscale() == "log"
    labels = [t.get_text() for t in bottom.get_legend().get_texts()]
    assert labels[0].startswith("|true gap|") and "negative" in labels[0]
    assert labels[1] == "duality-gap bound"
    lines = {ln.get_label(): ln for ln in bottom.get_lines()}
    gap = lines[labels[0]]
    # every non-zero gap is there, the negative ones too: the line did not vanish
    assert np.allclose(gap.get_ydata(), np.abs(HISTORY["true gap"]))
    marked = [ln for ln in bottom.get_lines() if ln.get_marker() == "v"]
    assert len(marked) == 1 and np.allclose(marked[0].get_xdata(), [40, 50])


def test_the_objective_ticks_read_as_values_not_as_one_repeated_label():
    fig = draw("t", convergence_panels({"step": STEPS, "objective": [24.21, 24.2101, 24.2102,
                                                                     24.2103, 24.2104, 24.2105]}))
    fig.canvas.draw()
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels() if t.get_text()]
    assert len(ticks) >= 3 and len(set(ticks)) == len(ticks)
    assert fig.axes[0].yaxis.get_offset_text().get_text() == ""   # no "+2.42e1" offset


def test_an_objective_over_many_decades_gets_a_log_axis():
    panels = convergence_panels({"step": [1, 2, 3], "objective": [1e4, 1.0, 1e-2]})
    assert panels[0].log and len(panels) == 1


@pytest.mark.parametrize("name", ["fig.jpg", "fig"])
def test_an_unknown_suffix_is_a_user_error(tmp_path, name):
    with pytest.raises(bmdsl.BmdslError, match="unknown format") as err:
        save_figure(tmp_path / name, "t", [Panel("p", {"a": ([1], [1.0])}, "y")])
    assert ".png, .pdf or .svg" in err.value.render()


def test_an_unwritable_figure_is_a_user_error(tmp_path):
    with pytest.raises(bmdsl.BmdslError, match="cannot write the figure"):
        save_figure(tmp_path / "no" / "dir" / "f.png", "t", convergence_panels(HISTORY))


def test_run_plot_with_a_negative_true_gap(tmp_path):
    """`bmdsl run`'s figure from a result whose objective ends below p*."""
    history = [(s, v, 0.1 * s) for s, v in zip(STEPS, OBJECTIVE)]
    result = SimpleNamespace(warm_start=None, history=history, steps=STEPS[-1],
                             certificates=[(20, 1e-1), (40, 1e-4)],
                             certificate=SimpleNamespace(gap_bound=1e-8))
    _plot(tmp_path / "run.pdf", "mlp", result, P_STAR)
    valid(tmp_path / "run.pdf", "pdf")


@pytest.mark.usefixtures("one_torch_thread")
def test_bmdsl_run_writes_a_pdf(tmp_path, capsys):
    data = tmp_path / "data.npz"
    np.savez(data, **datasets.spiral(n=30, seed=1))
    # no CVXPY solve and a few BM steps: this checks the figure, test_run.py the numbers
    assert main(["run", "models/mlp.bm", "--data", str(data), "--output", str(tmp_path),
                 "--plot-format", "pdf", "--max-convex-vars", "1", "--no-warm-start",
                 "--steps", "20", "--certificate-every", "5", "-q"]) == 0
    assert f"plot: {tmp_path / 'mlp_run.pdf'}" in capsys.readouterr().out
    valid(tmp_path / "mlp_run.pdf", "pdf")


def test_import_bmdsl_does_not_import_matplotlib():
    code = ("import sys, bmdsl, bmdsl.workflow.plot, bmdsl.cli; "
            "assert 'matplotlib' not in sys.modules and 'tqdm' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# -- Jupyter displays -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def bound():
    return bmdsl.load("models/mlp.bm").derive().bind(datasets.spiral(n=20, seed=0))


def test_derivation_displays_as_latex(bound):
    tex = bound.derivation._repr_latex_()
    assert tex.startswith("$$\\begin{aligned}") and tex.endswith("\\end{aligned}$$")
    assert "convex program" in tex and "(20)" in tex


def test_bound_displays_as_a_markdown_table(bound):
    md = bound._repr_markdown_()
    assert md.startswith("**bound model mlp**")
    assert f"P = {bound.P} patterns" in md and "| lifted Z_k | 2 x 3 (p x q) |" in md
    assert "beta = 0.001, C = l2, R = l2" in md and "n = 20, d = 2, c = 3" in md


@pytest.mark.usefixtures("one_torch_thread")
def test_training_result_displays_its_certificate(bound):
    result = bound.to_torch(device="cpu", progress=False).fit(max_steps=5)
    md = result._repr_markdown_()
    assert md.startswith("**BM training result**")
    assert f"| p_BM (objective) | {result.objective:.10g} |" in md
    assert f"{result.certificate.gap_bound:.6g}" in md and "Theorem 3.4 bound (20)" in md
    assert "cone violation" not in md            # gated ReLU: no cones, no row
    uncertified = bound.to_torch(device="cpu", progress=False, warm_start=False).fit(
        max_steps=2, certify=False)
    assert "| certificate | not computed |" in uncertified._repr_markdown_()
