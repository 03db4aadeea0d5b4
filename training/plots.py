"""Figures for an evaluation report: the confusion matrix and the precision-recall curves.

Figures are built on matplotlib's object API with the Agg canvas, not pyplot, so plotting never
switches the process-wide backend, needs no display and leaks no open figures on a headless trainer.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pcb_inspect.inspect.metrics import DetectionReport


def _save(fig: Figure, path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)  # attaches the Agg canvas: rendering works whatever the global backend is
    fig.savefig(out, dpi=120)
    return out


def plot_confusion_matrix(report: DetectionReport, path: str | Path) -> Path:
    """Counts of ground truth (rows) against predictions (columns) at the report's operating point.

    Cells are coloured by the share of their row, so rare classes read as clearly as common ones;
    the numbers written in the cells are the raw counts.
    """
    rows = report.confusion_labels["rows"]
    cols = report.confusion_labels["columns"]
    counts = report.confusion
    shares = [[c / sum(r) if sum(r) else 0.0 for c in r] for r in counts]

    fig = Figure(figsize=(7.5, 6.5))
    ax = fig.add_subplot()
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of row")
    for i, row in enumerate(counts):
        for j, n in enumerate(row):
            colour = "white" if shares[i][j] > 0.6 else "black"
            ax.text(j, i, str(n), ha="center", va="center", color=colour, fontsize=9)
    ax.set_xticks(range(len(cols)), labels=cols, rotation=35, ha="right")
    ax.set_yticks(range(len(rows)), labels=rows)
    ax.set_xlabel("predicted class (last column: ground truth missed)")
    ax.set_ylabel("ground-truth class (last row: no defect there)")
    ax.set_title(
        f"Confusion at score >= {report.score_threshold:g}, IoU > {report.iou_threshold:g}"
        f"  (P {report.precision:.3f}, R {report.recall:.3f})",
        fontsize=10,
    )
    fig.tight_layout()
    return _save(fig, path)


def _ap_label(name: str, ap: float | None) -> str:
    return f"{name} (AP {ap:.3f})" if ap is not None else f"{name} (AP -)"


def plot_pr_curves(report: DetectionReport, path: str | Path) -> Path:
    """Pooled precision-recall curve plus one per class with ground truth, AP in the legend.

    The pooled curve's operating point (precision and recall at the score threshold) is marked, so
    the figure shows where the deployed threshold sits on the trade-off.
    """
    fig = Figure(figsize=(7.5, 6.0))
    ax = fig.add_subplot()
    drawn = False
    for name, pts in report.pr_curve.items():
        if not pts.get("recall"):
            if name != "pooled":  # ground truth but no detections: still listed, not silently dropped
                ax.plot([], [], linestyle="none", label=f"{name} (AP 0.000, nothing detected)")
            continue
        drawn = True
        # "pre" steps hold each detection's precision over the recall it adds: the area under the
        # drawn curve is then exactly the DeepPCB (non-interpolated) AP, the default in the legend.
        recall = [0.0, *pts["recall"]]
        precision = [pts["precision"][0], *pts["precision"]]
        if name == "pooled":
            style = {"color": "black", "linewidth": 2.2, "zorder": 3}
            label = _ap_label("all classes, pooled", report.ap)
        else:
            style = {"linewidth": 1.2, "alpha": 0.85}
            label = _ap_label(name, report.per_class.get(name, {}).get("ap"))
        ax.step(recall, precision, where="pre", label=label, **style)
    if report.n_gt:
        ax.plot([report.recall], [report.precision], marker="o", color="crimson", linestyle="none",
                label=f"score >= {report.score_threshold:g}: P {report.precision:.3f}, R {report.recall:.3f}",
                zorder=4)
    if not drawn:
        ax.text(0.5, 0.5, "no predictions or no ground truth", ha="center", va="center",
                transform=ax.transAxes)
    ax.set_xlim(0.0, 1.02)
    ax.set_ylim(0.0, 1.05)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    mean_ap = "-" if report.mean_ap is None else f"{report.mean_ap:.3f}"
    ax.set_title(f"Precision-recall, IoU > {report.iou_threshold:g} (mAP {mean_ap}, {report.ap_method} AP)",
                 fontsize=10)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)
