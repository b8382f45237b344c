"""Figures logged to MLflow, where people would rather look than read."""

from __future__ import annotations

import numpy as np


def _figure():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(6, 4.5), dpi=100)


def warm_up() -> None:
    """Import matplotlib and draw one empty figure now (a second or so), rather than on the first plot."""
    fig, _ = _figure()
    close(fig)


def comparison_plot(
    task: str,
    metric: str,
    y,
    challenger_scores,
    champion_scores=None,
    labels: tuple[str, str] = ("challenger", "champion"),
):
    """Classification: ROC curves of challenger and champion on the same batch.
    Regression: predicted against actual for both."""
    fig, ax = _figure()
    y = np.asarray(y)
    series = [(labels[0], challenger_scores)] + ([(labels[1], champion_scores)] if champion_scores is not None else [])
    if task == "classification":
        from sklearn.metrics import roc_auc_score, roc_curve

        for name, s in series:
            if len(np.unique(y)) < 2:
                continue
            fpr, tpr, _ = roc_curve(y, s)
            ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y, s):.3f})")
        ax.plot([0, 1], [0, 1], linestyle=":", color="grey", linewidth=1)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title("ROC on the evaluation batch")
    else:
        lo, hi = float(np.nanmin(y)), float(np.nanmax(y))
        for name, s in series:
            ax.scatter(y, s, s=4, alpha=0.3, label=name)
        ax.plot([lo, hi], [lo, hi], linestyle=":", color="grey", linewidth=1)
        ax.set_xlabel("actual")
        ax.set_ylabel("predicted")
        ax.set_title("Predicted vs actual on the evaluation batch")
    ax.legend(loc="lower right" if task == "classification" else "upper left")
    fig.tight_layout()
    return fig


def backtest_plot(bt, champion_label: str = "champion"):
    """Metric per back-test window, challenger against champion, with the interval on the gain in the title."""
    fig, ax = _figure()
    x = [w.index for w in bt.windows]
    ax.plot(x, [w.challenger for w in bt.windows], marker="o", label="challenger")
    if bt.champion is not None:
        ax.plot(x, [w.champion for w in bt.windows], marker="s", label=champion_label)
    ax.set_xticks(x, [f"{w.index}\n{w.start[5:10]}..{w.end[5:10]}" for w in bt.windows], fontsize=8)
    ax.set_xlabel("back-test window")
    ax.set_ylabel(bt.metric)
    title = f"{bt.metric} per window"
    if bt.ci_low is not None and bt.ci_low == bt.ci_low:
        title += f"; gain {bt.gain:+.4f}, {bt.confidence:.0%} CI [{bt.ci_low:+.4f}, {bt.ci_high:+.4f}]"
    ax.set_title(title, fontsize=10)
    ax.legend()
    fig.tight_layout()
    return fig


def slices_plot(slices, metric: str):
    """Gain of the challenger per slice (positive = better), with each slice's tolerance."""
    fig, ax = _figure()
    rows = [s for s in slices if s.gain is not None]
    rows.sort(key=lambda s: (s.column, s.gain))
    labels = [f"{s.column}={s.value} ({s.rows})" for s in rows]
    colors = ["tab:grey" if not s.judged else ("tab:green" if s.passed else "tab:red") for s in rows]
    ax.barh(range(len(rows)), [s.gain for s in rows], color=colors)
    if rows:  # each slice's own tolerance (slice columns may have different ones)
        ax.scatter(
            [-s.tolerance for s in rows],
            range(len(rows)),
            marker="|",
            s=120,
            color="black",
            zorder=3,
            label="tolerance",
        )
        ax.legend(loc="lower right", fontsize=8)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.set_xlabel(f"challenger gain in {metric} (grey: too few rows to judge)")
    ax.set_title("Per-slice comparison")
    fig.set_size_inches(6, max(3, 0.25 * len(rows) + 1.5))
    fig.tight_layout()
    return fig


def close(fig) -> None:
    """Free a figure once it is logged."""
    import matplotlib.pyplot as plt

    plt.close(fig)
