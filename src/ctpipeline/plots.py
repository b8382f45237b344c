"""Figures logged to MLflow, where people would rather look than read."""

from __future__ import annotations

import numpy as np


def _figure():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(6, 4.5), dpi=100)


def comparison_plot(task: str, metric: str, y, challenger_scores, champion_scores=None,
                    labels: tuple[str, str] = ("challenger", "champion")):
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
