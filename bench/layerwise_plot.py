"""The figure of bench_layerwise.py: test accuracy per stage against the baseline."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def plot(results: Path, png: Path, earlier=()) -> None:
    """Test accuracy per stage (each seed, mean and sd) against the baseline's mean; each
    existing file of `earlier` (other runs, for comparison) adds its mean per stage. The
    right panel repeats the left from stage 2 on, at a scale where one image shows."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    saved = json.loads(results.read_text())
    conv = np.array([r["test_accuracy"] for r in saved["runs"]["convex"]])
    base = np.array([r["test_accuracy"] for r in saved["runs"]["baseline"]])
    stages = np.arange(1, conv.shape[1] + 1)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
    for ax in axes:
        for row in conv:
            ax.plot(stages, 100 * row, "o", color="tab:blue", alpha=0.35)
        ax.errorbar(stages, 100 * conv.mean(0), yerr=100 * conv.std(0), fmt="-o",
                    color="tab:blue", capsize=3, label="convex layerwise (BM), mean ± sd")
        for path, style in zip([p for p in earlier if p.exists()], ("s:", "^:", "v:")):
            old = json.loads(path.read_text())
            acc = np.array([r["test_accuracy"] for r in old["runs"]["convex"]]).mean(0)
            ax.plot(stages, 100 * acc, style, color="grey",
                    label=f"earlier: {old['setup']['config']['name']}, mean")
            old_base = np.mean([r["test_accuracy"] for r in old["runs"]["baseline"]])
            if style == "s:" and not np.isclose(old_base, base.mean()):
                ax.axhline(100 * old_base, color="tab:red", ls=":", alpha=0.6,
                           label="the earlier designs' end-to-end ReLU CNN (mean)")
        ax.axhline(100 * base.mean(), color="tab:red", ls="--",
                   label=f"end-to-end ReLU CNN, {conv.shape[1]} layers, same design (mean)")
        ax.set_xticks(stages)
        ax.set_xlabel("stage")
        ax.set_ylabel("test accuracy (%)")
    axes[1].set_xlim(1.7, stages[-1] + 0.3)
    axes[1].set_ylim(96, 100)
    axes[1].set_title("from stage 2 on, enlarged", fontsize=9)
    axes[0].set_title(f"digits, 20% test split, {conv.shape[0]} seeds "
                      f"({saved['setup']['config']['name']})", fontsize=9)
    axes[0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(png, dpi=120)
