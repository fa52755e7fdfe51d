"""``report.html``: one self-contained page per run — the time-lapse, its reading and its results.

Everything is inside the file (frames and curves as base64 data URIs, inline CSS and script, a
Content-Security-Policy that forbids any fetch), so it opens from disk, offline, and can be
mailed or archived on its own. Sections: header, diagnosis, frame player (slider, play/pause,
arrow keys, the frame's key numbers), curves, final results (confusion matrix, classification
report), class counts, configuration. All text from files is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import re
from pathlib import Path

from latentlapse import __version__
from latentlapse.core import atomic
from latentlapse.core.results import completed_refit
from latentlapse.core.results import REPORT as REPORT_TXT
from latentlapse.core.timelapse import diagnose as diagnosis_module
from latentlapse.core.timelapse import dynamics_summary, explorer
from latentlapse.core.timelapse.animate import frame_files
from latentlapse.core.timelapse.curves import METRICS_PNG, best_epoch, curves_png
from latentlapse.core.timelapse.render import METHOD_LABELS
from latentlapse.core.timelapse.runfiles import RunFiles, flat_config, load_run
from latentlapse.core.timelapse.report_assets import PLAYER_SCRIPT, STYLE

REPORT_HTML = "report.html"
# Numbers of the current frame shown under the player: (column, label, digits).
FRAME_NUMBERS = (
    ("val_acc", "validation accuracy", 4), ("val_errors", "validation errors", 0),
    ("silhouette", "silhouette", 3), ("knn_acc", "5-NN accuracy", 3), ("spread_ratio", "spread ÷ class distance", 3),
    ("trustworthiness", "map trustworthiness", 3), ("displacement", "points moved (of map size)", 3),
)
PNG_HOW = """<p class="how">Left: the training sample, coloured by true class. Right: the validation sample; a large
<b style="color:#d62728">red X</b> is a source the model got wrong, on a ring in the colour of its true class. Over
the epochs, look for clusters tightening, classes moving apart and fewer red X's. Keys: ← → step, Home/End jump,
space plays.</p>"""
EXPLORER_HOW = """<p class="how">Every point is a source: hover it for its id, classes and probabilities at this epoch;
click it for its spectrum (or features), its path over all frames and its training history. Points glide
to their next positions as the frames change. Filter by class, errors or suspects, or find an id.</p>"""
_BADGES = {"good": "good", "warning": "warning", "info": "note"}  # words: emoji fonts are often missing


def write_report(run_dir: str | os.PathLike, *, status: str | None = None,
                 diagnosis: diagnosis_module.Diagnosis | None = None) -> Path:
    """Write ``report.html`` into the run folder; returns its path.

    ``status`` overrides the metadata's (the worker writes the report just before the run is
    marked completed); ``diagnosis`` is computed from the run's files when not given.
    """
    run = load_run(run_dir)
    return save_report(run, diagnosis if diagnosis is not None else diagnosis_module.diagnose_files(run), status=status)


def save_report(run: RunFiles, diagnosis: diagnosis_module.Diagnosis, *, status: str | None = None) -> Path:
    """Write ``report.html`` of an already loaded and diagnosed run; returns its path."""
    path = run.run_dir / REPORT_HTML
    atomic.write_text(path, render_html(run, diagnosis, status=status))
    return path


def render_html(run: RunFiles, diagnosis: diagnosis_module.Diagnosis, *, status: str | None = None) -> str:
    """The whole page as a string."""
    meta = run.metadata
    title = f"{run.name} — latent-space time-lapse report"
    body = "\n".join((
        _header(run, status or meta.get("status", "unknown")),
        _section("Diagnosis", _diagnosis(diagnosis)),
        _section("Latent space, epoch by epoch", _player(run)),
        _section("Learning curves", _curves(run)),
        _section("Training dynamics and label suspects", dynamics_summary.report_html(run.run_dir)),
        _section("Final results", _results(run)),
        _section("Class counts", _class_counts(meta)),
        _section("Configuration", _configuration(run)),
        f'<footer>Written by latentlapse {_e(__version__)} from the files in {_e(str(run.run_dir))}.</footer>',
    ))
    csp = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


# ------------------------------------------------------------------------------------ sections
def _header(run: RunFiles, status: str) -> str:
    meta, final = run.metadata, run.final
    data = meta.get("data") or {}
    facts = [
        ("status", status), ("started", meta.get("start_time")), ("resumed", _resumed(meta)),
        ("ended", meta.get("end_time")),
        ("projection", METHOD_LABELS.get(meta.get("method"), meta.get("method"))), ("data", data.get("source")),
        ("model", (meta.get("model_description") or {}).get("name") or meta.get("model")), ("device", meta.get("device")),
        ("command", meta.get("command")),
    ]
    items = "".join(f"<div><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>" for k, v in facts if v not in (None, ""))
    cards = ""
    if final:
        best = best_epoch(run)
        cards = '<div class="cards">' + "".join(
            f'<div class="card"><div class="value">{_e(v)}</div><div class="label">{_e(k)}</div></div>' for k, v in (
                ("best epoch", f"{best} of {final.get('epochs_run', len(run.history))}"),
                ("accuracy", _num(final.get("acc"), 4)), ("balanced accuracy", _num(final.get("balanced_acc"), 4)),
                ("macro-F1", _num(final.get("macro_f1"), 4)))) + "</div>"
        evaluated = final.get("evaluated") or "best checkpoint on the validation split"
        cards += f'<p class="note">Scores of the {_e(evaluated)}.</p>'
    return (f'<header><h1>{_e(run.name)} <span class="status status-{_e(status)}">{_e(status)}</span></h1>'
            f'<p class="subtitle">Latent-space time-lapse report</p><dl class="facts">{items}</dl>{cards}</header>')


def _resumed(meta: dict) -> str | None:
    """When and from which epoch a resumed run went on, each time (runs from before the list
    was kept name only their last resume)."""
    resumes = meta.get("resumes") or (
        [{"from_epoch": meta["resumed_from_epoch"], "at": meta.get("resumed_at")}]
        if meta.get("resumed_from_epoch") is not None else [])
    parts = [(f"after epoch {r['from_epoch']}" if r["from_epoch"] else "from the start")
             + (f", {r['at']}" if r.get("at") else "") for r in resumes]
    if len(parts) > 1:
        return f"{len(parts)} times: " + "; ".join(parts)
    return parts[0] if parts else None


def _diagnosis(diagnosis: diagnosis_module.Diagnosis) -> str:
    parts = [f'<p class="verdict">{_e(diagnosis.verdict)}</p>']
    for finding in diagnosis.findings:
        evidence = "".join(f"<li>{_e(line)}</li>" for line in finding.evidence)
        remedy = f'<p class="remedy"><b>Solution:</b> {_e(finding.remedy)}</p>' if finding.remedy else ""
        parts.append(f'<div class="finding {_e(finding.severity)}"><h3><span class="badge">{_BADGES[finding.severity]}</span> '
                     f'{_e(finding.title)}</h3>'
                     f"<ul>{evidence}</ul>{remedy}</div>")
    parts.append('<p class="note">Read automatically from history.csv and latent_metrics.csv (also saved as '
                 "diagnosis.txt and diagnosis.json). Spread and distances are measured in the network's feature "
                 "space, not on the 2-D map.</p>")
    return "\n".join(parts)


def _player(run: RunFiles) -> str:
    files = frame_files(run.run_dir)
    if not files:
        return ('<p class="note">No frames were drawn in this run: frames were off (<code>--visualize_training</code> on '
                'the command line, <code>frames=True</code> in the library turns them on), or every frame was skipped '
                '(the log says why).</p>')
    by_epoch = {int(row["epoch"]): row for row in run.metrics}
    frames = []
    for epoch, path in files:
        row = by_epoch.get(epoch, {})
        numbers = [[label, _num(row.get(key), digits)] for key, label, digits in FRAME_NUMBERS]
        frames.append({"epoch": epoch, "name": path.name, "src": _data_uri(path.read_bytes(), "image/png"),
                       "numbers": numbers})
    data = json.dumps({"total": run.total_epochs, "frames": frames}).replace("<", "\\u003c")
    last = len(frames) - 1
    explorer_html, has_explorer = _explorer(run)
    how = (EXPLORER_HOW if has_explorer else "") + PNG_HOW
    return f"""{how}
<div class="player">
  <div class="controls">
    <button type="button" id="prev" aria-label="previous frame">◀</button>
    <button type="button" id="play" aria-label="play or pause">▶ Play</button>
    <button type="button" id="next" aria-label="next frame">▶</button>
    <input type="range" id="slider" min="0" max="{last}" step="1" value="0" aria-label="frame">
    <span id="epoch-label" class="epoch-label"></span>
  </div>
  {explorer_html}
  <details id="png-frame"{"" if has_explorer else " open"}><summary>The drawn frame (PNG)</summary>
  <img id="frame" alt="latent-space frame" src="{frames[0]['src']}"></details>
  <table class="numbers" id="frame-numbers"></table>
</div>
<script type="application/json" id="frames-data">{data}</script>
<script>{PLAYER_SCRIPT}</script>"""


def _explorer(run: RunFiles) -> tuple[str, bool]:
    """The explorer's markup, data and script, and whether there is one (a run drawn before
    layouts were kept has only its PNG frames)."""
    data = explorer.explorer_data(run, **explorer.run_dynamics(run.run_dir))
    if data is None:
        return "", False
    payload = json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")
    return f"""<div class="explorer" id="explorer">
  <div class="ex-tools"><span id="ex-classes" class="ex-classes"></span>
    <label><input type="checkbox" id="ex-errors"> errors only</label>
    <label><input type="checkbox" id="ex-suspects"> suspects only</label>
    <input type="search" id="ex-search" placeholder="find a source id" aria-label="find a source id">
    <span id="ex-count" class="note"></span></div>
  <div class="ex-body"><div class="ex-map"><canvas id="ex-canvas"></canvas><div id="ex-tip" class="ex-tip" hidden></div></div>
    <aside id="ex-panel" class="ex-panel"></aside></div>
</div>
<script type="application/json" id="explorer-data">{payload}</script>
<script>{explorer.script()}</script>""", True


def _curves(run: RunFiles) -> str:
    if not run.history:
        return '<p class="note">No epoch finished, so there are no curves.</p>'
    stored = run.run_dir / METRICS_PNG
    png = stored.read_bytes() if stored.is_file() else curves_png(run)
    kept = ("best.pt holds this training repeated on every labelled source" if completed_refit(run.final or {})
            else "kept as best.pt")
    return (f'<img class="curves" alt="learning curves" src="{_data_uri(png, "image/png")}">'
            f'<p class="note">Grey lines: epochs with a frame; dashed green: the best epoch ({kept}). '
            "Bottom row: cluster spread relative to class distances (lower is tighter), separation (silhouette, "
            "5-NN accuracy; higher is better) and the validation error count.</p>")


def _results(run: RunFiles) -> str:
    final = run.final
    if not final:
        return '<p class="note">No final results (the run did not complete).</p>'
    scored = "model before its refit" if completed_refit(final) else "best checkpoint"
    names = final.get("class_names") or run.class_names
    matrix = final.get("confusion_matrix") or []
    head = "".join(f"<th>{_e(n)}</th>" for n in names)
    rows = []
    for i, (name, counts) in enumerate(zip(names, matrix)):
        total = sum(counts) or 1
        # shade by the share of the true class: green on the diagonal (correct), red off it
        cells = "".join(
            f'<td style="background:rgba({"44,160,44" if i == j else "214,39,40"},{0.6 * c / total:.2f})">{c}</td>'
            for j, c in enumerate(counts))
        rows.append(f"<tr><th>{_e(name)}</th>{cells}<td class='dim'>{sum(counts)}</td></tr>")
    confusion = (f'<table class="matrix"><caption>Confusion matrix of the {scored} (rows: true class, columns: predicted class)</caption>'
                 f"<tr><th></th>{head}<th class='dim'>total</th></tr>{''.join(rows)}</table>")
    per_class = final.get("per_class") or {}
    table = "".join(f"<tr><th>{_e(n)}</th>" + "".join(f"<td>{_num(per_class.get(n, {}).get(k), 4)}</td>"
                                                        for k in ("precision", "recall", "f1"))
                    + f"<td>{_e(per_class.get(n, {}).get('support', ''))}</td></tr>" for n in names)
    scores = (f'<table class="scores"><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>'
              f"{table}</table>")
    report_path = run.run_dir / REPORT_TXT
    report = (f"<details><summary>classification_report.txt</summary><pre>{_e(report_path.read_text(encoding='utf-8'))}</pre>"
              "</details>") if report_path.is_file() else ""
    note = " ".join(_sentence(final.get(key)) for key in ("evaluated", "note") if final.get(key))
    note = f'<p class="note">{_e(note)}</p>'
    return f'<div class="side">{confusion}{scores}</div>{note}{report}'


def _class_counts(meta: dict) -> str:
    counts = meta.get("class_counts") or {}
    if not counts:
        return '<p class="note">Not recorded.</p>'
    columns = list(counts)
    names = list(meta.get("class_names") or next(iter(counts.values())).keys())
    head = "".join(f"<th>{_e(c.replace('_', ' '))}</th>" for c in columns)
    body = "".join(f"<tr><th>{_e(n)}</th>" + "".join(f"<td>{_e(counts[c].get(n, ''))}</td>" for c in columns) + "</tr>"
                   for n in names)
    return f'<table class="scores"><tr><th>class</th>{head}</tr>{body}</table>'


def _configuration(run: RunFiles) -> str:
    config = flat_config(run.config)
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(_value(v))}</td></tr>" for k, v in config.items())
    data = run.metadata.get("data") or {}
    data_rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(_value(v))}</td></tr>" for k, v in data.items())
    versions = run.metadata.get("versions") or {}
    version_rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in versions.items())
    return (f'<div class="side"><table class="config"><caption>settings</caption>{rows}</table>'
            f'<table class="config"><caption>data</caption>{data_rows}</table>'
            f'<table class="config"><caption>versions</caption>{version_rows}</table></div>')


# ------------------------------------------------------------------------------------- helpers
def _section(title: str, content: str) -> str:
    anchor = re.sub(r"[^a-z]+", "-", title.lower()).strip("-")
    return f'<section id="{anchor}"><h2>{_e(title)}</h2>\n{content}\n</section>'


def _e(value) -> str:
    """HTML-escaped text of any value (None as an empty string)."""
    return html.escape("" if value is None else str(value), quote=True)


def _sentence(text: str) -> str:
    """``text`` with a capital first letter and a full stop."""
    text = str(text).strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _value(value) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return "–" if value is None else str(value)


def _num(value, digits: int) -> str:
    if value is None or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "–"
    return f"{value:.{digits}f}"


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
