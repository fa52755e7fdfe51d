"""The pictures and page of ``latentlapse compare``: maps side by side, overlaid curves, tables.

The PNG holds, for the chosen epoch, each run's validation map (errors as red X's) and training
map in the same orientation and limits, then both runs' validation accuracy, balanced accuracy
and loss against epoch, and the final recall of each class. The HTML page embeds the PNG and
adds the final metrics with differences, the config values that differ and both diagnoses.
"""

from __future__ import annotations

import base64
import html
import math
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from latentlapse.core.timelapse.layouts import FrameLayout
from latentlapse.core.timelapse.render import METHOD_LABELS, draw_map, png_bytes
from latentlapse.core.timelapse.report_assets import STYLE
from latentlapse.core.timelapse.runfiles import RunFiles, column

RUN_COLORS = ("#37474f", "#00a0a0")
RUN_STYLES = ("-", "--")
_W, _H, _MAP, _DPI = 16.0, 19.0, 5.9, 100
_MAP_X = (0.45, 6.55)  # inches: left run, right run (its legend, shared by both, goes to the right)
# Runs with different class schemes need a legend each: narrower maps, each legend to its map's right.
_SPLIT_MAP, _SPLIT_MAP_X = 5.3, (0.3, 8.1)
_MAP_Y = (11.55, 4.95)  # validation row, training row
_CURVES_Y, _CURVES_H = 0.75, 3.0


def labels(runs: Sequence[RunFiles], differences: Sequence[tuple]) -> list[str]:
    """Legend labels of the two runs, each with up to two of the values that differ and, for a
    run that did not complete, how it ended."""
    out = []
    for side, run in enumerate(runs):
        values = [f"{key.split('.')[-1]} {pair[side]}" for key, *pair in differences[:2]]
        out.append(_marked(run, f"{run.name} ({', '.join(values)})" if values else run.name))
    return out


def _marked(run: RunFiles, label: str) -> str:
    """``label`` followed by how the run ended when it did not complete (no error text: a picture)."""
    state = run.unfinished(reason=False)
    return f"{label} · {state}" if state else label


def figure_png(runs, layouts: Sequence[FrameLayout], alignment, epoch: int, differences, note: str,
               different_data: bool = False) -> bytes:
    """The comparison picture as PNG bytes (``note`` says how the maps were aligned).

    Runs with the same classes share one legend (without a count of misclassified points: each
    validation map's title gives its own); runs with different class schemes get one legend
    each, so no panel is read against another scheme's colours. ``different_data``
    labels the curves as being of different validation sources.
    """
    fig = Figure(figsize=(_W, _H), dpi=_DPI, facecolor="white")
    FigureCanvasAgg(fig)
    names = labels(runs, differences)
    if different_data:
        names = [f"{name} · different data" for name in names]
    same_scheme = runs[0].class_names == runs[1].class_names
    size, xs = (_MAP, _MAP_X) if same_scheme else (_SPLIT_MAP, _SPLIT_MAP_X)
    maps = ((layouts[0].val_xy, layouts[0].train_xy), (alignment.val_xy, alignment.train_xy))
    for side, (run, layout, (val_xy, train_xy)) in enumerate(zip(runs, layouts, maps)):
        style = run.style
        row = _row(run, epoch)
        legend = side == 1 or not same_scheme
        n_wrong = int(np.sum(layout.val_pred != layout.val_labels))
        draw_map(_axes(fig, xs[side], _MAP_Y[0], size), val_xy, layout.val_labels, style, pred=layout.val_pred,
                 title=f"{names[side]}\nvalidation · epoch {epoch} · acc {_fmt(row.get('val_acc'), 4)} · "
                       f"{n_wrong} of {len(layout.val_labels)} wrong", legend=legend,
                 count_in_legend=not same_scheme)  # a shared legend: each title gives its run's count
        draw_map(_axes(fig, xs[side], _MAP_Y[1], size), train_xy, layout.train_labels, style,
                 title=f"{names[side]}\ntraining · epoch {epoch} · silhouette {_fmt(row.get('silhouette'), 2)}",
                 legend=legend)
    fig.text(0.5, (_MAP_Y[1] - 0.3) / _H, _wrap(note, 170), ha="center", va="top",  # up to 3 lines
             fontsize=10, color="#555555")
    if different_data:  # short legend labels that still say which data each curve is of
        curve_names = [_marked(run, f"{run.name} · data {((run.metadata.get('data') or {}).get('sha256') or '?')[:8]}")
                       for run in runs]
    else:
        curve_names = names
    _curves(fig, runs, curve_names, epoch)
    method = METHOD_LABELS.get(layouts[0].method, layouts[0].method)
    maps_are = "maps in one orientation" if alignment.aligned else "maps not aligned"
    fig.suptitle(f"{runs[0].name} vs {runs[1].name} · epoch {epoch} · {method} {maps_are}"
                 f"{' · different data' if different_data else ''}",
                 x=0.5, y=1 - 0.2 / _H, va="top", fontsize=17, fontweight="bold")
    return png_bytes(fig, _DPI)


def _axes(fig: Figure, x_in: float, y_in: float, size: float = _MAP):
    return fig.add_axes((x_in / _W, y_in / _H, size / _W, size / _H))


def _curves(fig: Figure, runs, names, epoch: int) -> None:
    width, gap, left = 3.05, 0.85, 0.6
    panels = [fig.add_axes(((left + k * (width + gap)) / _W, _CURVES_Y / _H, width / _W, _CURVES_H / _H)) for k in range(4)]
    for ax, key, title in zip(panels, ("val_acc", "val_balanced_acc", "val_loss"),
                              ("validation accuracy", "validation balanced accuracy", "validation loss")):
        for side, run in enumerate(runs):
            ax.plot(column(run.history, "epoch"), column(run.history, key), RUN_STYLES[side], color=RUN_COLORS[side],
                    linewidth=1.6, label=names[side])
        ax.axvline(epoch, color="#999999", linestyle=":", linewidth=1.0)
        ax.set_title(title, fontsize=11)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.25)
    panels[0].legend(fontsize=8, loc="lower right")
    _recall_bars(panels[3], runs)


def _recall_bars(ax, runs) -> None:
    classes = list(dict.fromkeys([*runs[0].class_names, *runs[1].class_names]))
    x = np.arange(len(classes))
    for side, run in enumerate(runs):
        recall = [_recall(run, c) for c in classes]
        ax.bar(x + (side - 0.5) * 0.38, recall, width=0.38, color=RUN_COLORS[side], label=run.name)
    # slanted, so that the names of up to 12 classes (two schemes) never run into each other
    ax.set_xticks(x, [c if len(c) <= 10 else c[:9] + "…" for c in classes], fontsize=8, rotation=40,
                  ha="right", rotation_mode="anchor")
    ax.set_ylim(0, 1.05)
    ax.set_title("final recall per class (best checkpoint)", fontsize=11)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.25)


def _row(run: RunFiles, epoch: int) -> dict:
    return next((r for r in run.metrics if int(r["epoch"]) == epoch), {})


# ------------------------------------------------------------------------------------- the page
def metric_rows(runs, epoch: int) -> list[tuple[str, float, float, int]]:
    """(label, value A, value B, digits) for the table: final scores, per-class recall, the frame."""
    a, b = runs
    rows = [(label, (a.final or {}).get(key, math.nan), (b.final or {}).get(key, math.nan), 4)
            for key, label in (("acc", "accuracy"), ("balanced_acc", "balanced accuracy"), ("macro_f1", "macro-F1"))]
    rows += [("best epoch", (a.final or {}).get("best_epoch", math.nan), (b.final or {}).get("best_epoch", math.nan), 0)]
    for name in dict.fromkeys([*a.class_names, *b.class_names]):
        rows.append((f"recall {name}", _recall(a, name), _recall(b, name), 4))
    frame_a, frame_b = _row(a, epoch), _row(b, epoch)
    for key, label, digits in (("val_errors", "validation errors", 0), ("silhouette", "silhouette", 3),
                               ("knn_acc", "5-NN accuracy", 3), ("spread_ratio", "spread ÷ class distance", 3)):
        rows.append((f"{label} (epoch {epoch})", frame_a.get(key, math.nan), frame_b.get(key, math.nan), digits))
    return rows


def _recall(run: RunFiles, name: str) -> float:
    """The class's final recall; NaN where it is not recorded or the class had no support (null)."""
    recall = ((run.final or {}).get("per_class") or {}).get(name, {}).get("recall")
    return math.nan if recall is None else recall


def page_html(runs, epoch: int, differences, note: str, png: bytes, same_validation: bool = True) -> str:
    """The self-contained comparison page (the PNG embedded, no external references);
    ``same_validation`` False says by the score table that the runs scored different sources."""
    from latentlapse.core.timelapse import diagnose

    a, b = runs
    lower_is_better = ("validation errors", "spread ÷ class distance")
    body = []
    for label, va, vb, digits in metric_rows(runs, epoch):
        delta = vb - va if _finite(va) and _finite(vb) else math.nan
        better = (delta < 0) if label.startswith(lower_is_better) else (delta > 0)
        css = "" if not _finite(delta) or delta == 0 or label == "best epoch" else ("delta-up" if better else "delta-down")
        body.append(f"<tr><th>{_e(label)}</th><td>{_fmt(va, digits)}</td><td>{_fmt(vb, digits)}</td>"
                    f"<td class='{css}'>{_fmt(delta, digits, sign=True)}</td></tr>")
    metrics = (f"<table><tr><th></th><th>{_e(_marked(a, a.name))}</th><th>{_e(_marked(b, b.name))}</th>"
               f"<th>{_e(b.name)} − {_e(a.name)}</th></tr>"
               f"{''.join(body)}</table><p class='note'>Green: {_e(b.name)} is better; red: worse. Final scores are of "
               f"each run's best checkpoint on its validation split.{'' if same_validation else _OTHER_SOURCES}</p>")
    if differences:
        rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(va)}</td><td>{_e(vb)}</td></tr>" for k, va, vb in differences)
        config = (f"<table><tr><th>setting</th><th>{_e(_marked(a, a.name))}</th><th>{_e(_marked(b, b.name))}</th></tr>"
                  f"{rows}</table>")
    else:
        config = "<p>The two runs have the same configuration and data.</p>"
    verdicts = []
    for run in runs:
        found = diagnose.diagnose_files(run)
        items = "".join(f"<li class='{f.severity}'>{_e(f.severity.upper())}: {_e(f.title)}</li>" for f in found.findings)
        verdicts.append(f"<div><h3>{_e(_marked(run, run.name))}</h3><p class='verdict'>{_e(found.verdict)}</p>"
                        f"<ul>{items}</ul></div>")
    image = f"data:image/png;base64,{base64.b64encode(png).decode('ascii')}"
    csp = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    title = f"{a.name} vs {b.name} at epoch {epoch}"
    return (f"<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
            f"<meta http-equiv='Content-Security-Policy' content=\"{csp}\">\n<title>{_e(title)}</title>\n"
            f"<style>{STYLE}</style>\n</head>\n<body>\n<header><h1>{_e(title)}</h1>"
            f"<p class='subtitle'>{_e(str(a.run_dir))} and {_e(str(b.run_dir))}</p></header>\n"
            f"<p class='verdict'>{_e(summary(runs, differences))}</p>\n"
            f"<section><h2>What differs</h2>{config}</section>\n"
            f"<section><h2>Results</h2>{metrics}</section>\n"
            f"<section><h2>Diagnosis</h2><div class='side'>{''.join(verdicts)}</div></section>\n"
            f"<section><h2>Latent space and curves</h2><p class='note'>{_e(note)}. "
            f"Top: validation sources (red X = misclassified); middle: training sources, by true class.</p>"
            f"<img class='wide' alt='comparison' src='{image}'></section>\n</body>\n</html>\n")


_OTHER_SOURCES = (" The two validation splits are not the same sources, so part of each difference is which "
                  "sources were scored, not only how well.")


def summary(runs, differences) -> str:
    """One sentence: what differs and how the headline scores moved; then one for each run that
    did not complete, saying how it ended."""
    a, b = runs
    changed = ", ".join(f"{key} {va} → {vb}" for key, va, vb in differences[:3]) or "the same settings"
    moves = []
    for key, label in (("balanced_acc", "balanced accuracy"), ("acc", "accuracy"), ("macro_f1", "macro-F1")):
        va, vb = (a.final or {}).get(key), (b.final or {}).get(key)
        if _finite(va) and _finite(vb):
            moves.append(f"{label} {va:.4f} → {vb:.4f} ({vb - va:+.4f})")
    scores = "; ".join(moves) if moves else "no final scores to compare"
    ended = "".join(f" {run.name} did not complete: {run.unfinished()}." for run in runs if run.unfinished())
    return f"{b.name} against {a.name} ({changed}): {scores}.{ended}"


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _fmt(value, digits: int, sign: bool = False) -> str:
    if not _finite(value):
        return "–"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))
