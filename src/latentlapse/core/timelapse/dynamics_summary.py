"""End-of-run outputs of the training dynamics: ``dynamics.csv``, the data map, the suspects.

``dynamics.csv`` has one row per source (training and validation splits), most suspect first;
``dynamics.png`` is the data map (Swayamdipta et al. 2020): variability of the true-class
probability against its mean, colour the fraction of epochs right, marker the class, suspects
ringed in red. The suspects' summary also feeds the diagnosis and ``report.html``.
"""

from __future__ import annotations

import csv
import html
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latentlapse.core import atomic
from latentlapse.core.runs import read_metadata
from latentlapse.core.timelapse import dynamics
from latentlapse.core.timelapse.dynamics import DynamicsHistory, SourceStats

TOP_SUSPECTS = 20
COLUMNS = ("id", "split", "true_class", "final_prediction", "confidence", "variability", "correctness",
           "forgetting_events", "learned_epoch", "aum", "region", "suspect_score", "suspect_rank", "suspect",
           "model_says", "model_says_share")
SUSPECT_COLOR = "#d62728"


@dataclass(frozen=True)
class Suspect:
    """One source whose label the training history doubts."""

    rank: int
    id: str
    split: str
    label: str
    final_prediction: str
    model_says: str
    share: float
    score: float


SHORT_RUN_EPOCHS = 10  # fewer recorded epochs: suspects are mostly sources not learned yet (the diagnosis's bar too)


@dataclass(frozen=True)
class SuspectSummary:
    """How many suspects, in which classes (by their label), and the top of them by suspect score
    (flagged suspects only: a source the history doubts less is not listed)."""

    n_sources: int
    n_suspects: int
    by_class: dict[str, int]
    top: tuple[Suspect, ...]
    n_epochs: int = 0  # recorded epochs: in a short run the first third is the first epoch or two

    def sentence(self) -> str:
        if not self.n_suspects:
            return f"no source of {self.n_sources} has a training history that doubts its label"
        classes = ", ".join(f"{name} {count}" for name, count in self.by_class.items() if count)
        short = (f" — only {self.n_epochs} epoch{'s' if self.n_epochs != 1 else ''} recorded, so the first third is "
                 f"the start of learning, when most sources are still wrong: read the suspects of a longer run"
                 if 0 < self.n_epochs < SHORT_RUN_EPOCHS else "")
        return (f"{self.n_suspects} of {self.n_sources} sources are label suspects (area under the margin "
                f"below {dynamics.SUSPECT_AUM:g} over the first third of training and right in under "
                f"{dynamics.SUSPECT_CORRECTNESS:.0%} of epochs); by their label: {classes}{short}")

    def heading(self) -> str:
        """What the list below the sentence holds: all the suspects, or the top N of them."""
        return dynamics.suspects_heading(len(self.top), self.n_suspects)


def _name(names: tuple[str, ...], index: int) -> str:
    return names[index] if 0 <= index < len(names) else ("" if index < 0 else str(index))


def summary_rows(history: DynamicsHistory, stats: SourceStats) -> list[dict[str, str]]:
    """The rows of ``dynamics.csv``, most suspect first."""
    names = history.class_names
    rows = []
    for i in np.argsort(stats.rank, kind="stable"):
        rows.append({
            "id": str(history.ids[i]),
            "split": str(history.split[i]),
            "true_class": _name(names, int(history.labels[i])),
            "final_prediction": _name(names, int(stats.final_pred[i])),
            "confidence": f"{stats.confidence[i]:.4f}",
            "variability": f"{stats.variability[i]:.4f}",
            "correctness": f"{stats.correctness[i]:.4f}",
            "forgetting_events": str(int(stats.forgetting[i])),
            "learned_epoch": "" if stats.learned_epoch[i] < 0 else str(int(stats.learned_epoch[i])),
            "aum": f"{stats.aum[i]:.4f}",
            "region": str(stats.region[i]),
            "suspect_score": f"{stats.score[i]:.4f}",
            "suspect_rank": str(int(stats.rank[i])),
            "suspect": "1" if stats.suspect[i] else "0",
            "model_says": _name(names, int(stats.other_class[i])),
            "model_says_share": f"{stats.other_share[i]:.4f}",
        })
    return rows


def csv_text(rows: list[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def suspects(history: DynamicsHistory, stats: SourceStats, top: int = TOP_SUSPECTS) -> SuspectSummary:
    names = history.class_names
    order = dynamics.top_suspects(stats, top)
    n_classes = max(len(names), int(history.labels.max(initial=0)) + 1)
    counts = np.bincount(history.labels[stats.suspect], minlength=n_classes)
    return SuspectSummary(
        n_sources=len(history.ids), n_suspects=int(stats.suspect.sum()),
        by_class={_name(names, c): int(counts[c]) for c in range(n_classes)},
        top=tuple(Suspect(rank=int(stats.rank[i]), id=str(history.ids[i]), split=str(history.split[i]),
                          label=_name(names, int(history.labels[i])),
                          final_prediction=_name(names, int(stats.final_pred[i])),
                          model_says=_name(names, int(stats.other_class[i])), share=float(stats.other_share[i]),
                          score=float(stats.score[i])) for i in order),
        n_epochs=len(history.epochs),
    )


def write_summary(run_dir: str | os.PathLike) -> tuple[Path, Path, SuspectSummary]:
    """Write ``dynamics.csv`` and ``dynamics.png`` from the recorded history; return both paths and
    the suspects' summary. FileNotFoundError when the run recorded no dynamics."""
    folder = Path(run_dir)
    history = dynamics.load_history(folder)
    stats = dynamics.source_stats(history)
    csv_path = folder / dynamics.DYNAMICS_CSV
    atomic.write_text(csv_path, csv_text(summary_rows(history, stats)))
    png_path = folder / dynamics.DYNAMICS_PNG
    atomic.write_bytes(png_path, data_map_png(history, stats, read_metadata(folder)))
    return csv_path, png_path, suspects(history, stats)


def load_suspects(run_dir: str | os.PathLike, top: int = TOP_SUSPECTS) -> SuspectSummary | None:
    """The suspects' summary of a run, or None when it recorded no dynamics."""
    try:
        history = dynamics.load_history(run_dir)
    except FileNotFoundError:
        return None
    return suspects(history, dynamics.source_stats(history), top)


def data_map_png(history: DynamicsHistory, stats: SourceStats, metadata: dict | None = None) -> bytes:
    """The data map: confidence against variability, colour = correctness, marker = class."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    from latentlapse.core.timelapse.render import png_bytes
    from latentlapse.core.timelapse.runfiles import class_style

    names = history.class_names
    style = class_style(names, metadata)
    fig = Figure(figsize=(7.5, 6.0))
    ax = fig.add_subplot()
    scatter = None
    for c, name in enumerate(names):
        mask = history.labels == c
        if not mask.any():
            continue
        scatter = ax.scatter(stats.variability[mask], stats.confidence[mask], c=stats.correctness[mask],
                             cmap="viridis", vmin=0, vmax=1, marker=style.markers[c], s=14, alpha=0.75,
                             linewidths=0)
    ring = stats.suspect
    if ring.any():
        ax.scatter(stats.variability[ring], stats.confidence[ring], s=45, alpha=0.8, facecolors="none",
                   edgecolors=SUSPECT_COLOR, linewidths=1.0)
    ax.axvline(dynamics.AMBIGUOUS_VARIABILITY, color="#999999", lw=0.8, ls="--")
    ax.axhline(dynamics.EASY_CONFIDENCE, color="#999999", lw=0.8, ls=":")
    ax.axhline(dynamics.HARD_CONFIDENCE, color="#999999", lw=0.8, ls=":")
    ax.text(0.01, 0.98, "easy to learn", transform=ax.transAxes, va="top", fontsize=8, color="#555555")
    ax.text(0.01, 0.02, "hard to learn", transform=ax.transAxes, va="bottom", fontsize=8, color="#555555")
    ax.text(0.99, 0.5, "ambiguous", transform=ax.transAxes, ha="right", fontsize=8, color="#555555")
    ax.set_xlim(0, max(0.5, float(stats.variability.max(initial=0)) * 1.05))
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("variability (std of the true-class probability over epochs)")
    ax.set_ylabel("confidence (mean true-class probability)")
    ax.set_title(f"Data map: {len(history.ids)} sources over {len(history.epochs)} epochs")
    # grey class markers in the legend: the marker names the class, the colour is correctness
    handles = [Line2D([], [], marker=style.markers[c], color="#555555", linestyle="none", label=name)
               for c, name in enumerate(names) if (history.labels == c).any()]
    if ring.any():
        handles.append(Line2D([], [], marker="o", markerfacecolor="none", markeredgecolor=SUSPECT_COLOR,
                              linestyle="none", markersize=9, label=f"label suspect ({int(ring.sum())})"))
    ax.legend(handles=handles, loc="lower right", fontsize=8)
    if scatter is not None:
        fig.colorbar(scatter, ax=ax, label="correctness (fraction of epochs right)")
    fig.tight_layout()
    return png_bytes(fig)


def suspects_html(summary: SuspectSummary | None) -> str:
    """The report's section body: the sentence, a table of the top suspects, the data map note."""
    if summary is None:
        return "<p>This run recorded no per-source training dynamics.</p>"
    e = html.escape
    rows = "".join(
        f"<tr><td>{s.rank}</td><td>{e(s.id)}</td><td>{e(s.split)}</td><td>{e(s.label)}</td>"
        f"<td>{e(s.model_says or '-')} ({s.share:.0%} of epochs)</td><td>{e(s.final_prediction)}</td>"
        f"<td>{s.score:.3f}</td></tr>" for s in summary.top)
    heading = summary.heading()
    table = (f"<p>{e(heading[:1].upper() + heading[1:])}:</p><table><thead><tr><th>rank</th><th>id</th>"
             "<th>split</th><th>label</th><th>model says</th><th>final prediction</th><th>score</th></tr></thead>"
             "<tbody>" + rows + "</tbody></table>") if rows else ""
    return (f"<p>{e(summary.sentence())}.</p>"
            "<p>A suspect is a source to look at again, not proof that its label is wrong: a rare or "
            "unusual source of the right class can look the same. Every source is in dynamics.csv; "
            "dynamics.png is the data map.</p>" + table)


def report_html(run_dir: str | os.PathLike) -> str:
    """The report's section: the data map (when drawn) and the suspects."""
    import base64

    png = Path(run_dir) / dynamics.DYNAMICS_PNG
    image = ""
    if png.is_file():
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        image = (f'<img src="data:image/png;base64,{data}" alt="data map: variability against confidence of '
                 f'every source" style="max-width:100%">')
    return suspects_html(load_suspects(run_dir)) + image


def suspect_findings(run_dir: str | os.PathLike) -> list:
    """The diagnosis's finding about label suspects (none when the run recorded no dynamics)."""
    from latentlapse.core.timelapse.trends import Finding

    summary = load_suspects(run_dir)
    if summary is None:
        return []
    evidence = [summary.sentence()] + ([f"{summary.heading()}:"] if summary.top else []) + [
        f"#{s.rank} {s.id} ({s.split}): labelled {s.label}, model says {s.model_says or '-'} in {s.share:.0%} "
        f"of epochs, final prediction {s.final_prediction}" for s in summary.top]
    remedy = (f"look at these sources again ({_what_to_check(read_metadata(run_dir))}); a suspect is not proof of "
              f"a wrong label. dynamics.csv ranks every source") if summary.n_suspects else ""
    title = f"Label suspects: {summary.n_suspects} source{'s' if summary.n_suspects != 1 else ''}"
    return [Finding("label_suspects", "info", title, tuple(evidence), remedy,
                    {"n_suspects": summary.n_suspects, "by_class": summary.by_class,
                     "top": [s.id for s in summary.top]})]


def _what_to_check(metadata: dict) -> str:
    """What of a suspect to look at again, by the kind of data the run read (its metadata's data.kind)."""
    kind = (metadata.get("data") or {}).get("kind")
    return {"spectra": "spectrum, literature class",
            "catalog": "their catalogue values, literature class"}.get(kind, "their inputs, the source of their labels")
