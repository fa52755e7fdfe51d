"""report.html: self-contained, every frame inside, text escaped, all sections present."""

from __future__ import annotations

import base64
import json
import re

import pytest
from synthetic_runs import write_run

from latentlapse.core.errors import InputError
from latentlapse.core.timelapse import report
from latentlapse.core.timelapse.animate import frame_paths

HOSTILE = "<script>alert('x')</script> & \"quotes\""


def frames_data(page: str) -> dict:
    match = re.search(r'<script type="application/json" id="frames-data">(.*?)</script>', page, re.S)
    return json.loads(match.group(1))


@pytest.fixture(scope="module")
def many_frames(tmp_path_factory):
    """A 40-epoch run with 20 frames whose data source is hostile HTML; its report's text."""
    folder = write_run(tmp_path_factory.mktemp("report") / "run_001", epochs=40, frames=tuple(range(1, 41, 2)),
                       source=HOSTILE)
    return folder, report.write_report(folder).read_text(encoding="utf-8")


def test_the_page_needs_nothing_from_outside(many_frames):
    _, page = many_frames
    for reference in ("http://", "https://", 'src="/', "src='/", "<link", "url(", "@import", "file:"):
        assert reference not in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    for tag in re.findall(r'<img[^>]*\ssrc="([^"]*)"', page):
        assert tag.startswith("data:image/png;base64,")


def test_every_frame_is_inside_in_epoch_order(many_frames):
    folder, page = many_frames
    data = frames_data(page)
    paths = frame_paths(folder)
    assert len(paths) == 20
    assert [f["epoch"] for f in data["frames"]] == list(range(1, 41, 2))
    assert data["total"] == 40
    for path, frame in zip(paths, data["frames"]):
        encoded = base64.b64encode(path.read_bytes()).decode("ascii")
        assert frame["src"] == f"data:image/png;base64,{encoded}"
        assert frame["name"] == path.name
    assert dict(data["frames"][-1]["numbers"])["validation errors"] == "33"  # epoch 39: round(150 - 120 * 38 / 39)
    assert 'max="19"' in page


def test_text_from_files_is_escaped(many_frames):
    _, page = many_frames
    assert HOSTILE not in page and "<script>alert" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;quotes&quot;" in page
    assert "&lt;b&gt;not bold&lt;/b&gt;" in page  # classification_report.txt


def test_sections_diagnosis_results_counts_and_config(many_frames):
    _, page = many_frames
    for heading in ("Diagnosis", "Latent space, epoch by epoch", "Learning curves", "Final results", "Class counts",
                    "Configuration"):
        assert f"<h2>{heading}</h2>" in page
    assert "model learning well" in page and "Clusters tightening over time" in page
    assert "<th>AGN</th><td" in page and ">250</td>" in page  # confusion matrix, AGN row
    assert "Scores of the best checkpoint (chosen by validation balanced accuracy) on the validation split." in page
    assert "<th>oversample_target</th><td>0.7</td>" in page and "<th>viz.every</th><td>10</td>" in page
    assert "train before oversampling" in page and ">1072<" in page
    assert page.count('id="slider"') == 1 and 'id="play"' in page


def test_one_frame_and_a_status_override(tmp_path):
    folder = write_run(tmp_path / "run_002", epochs=3, frames=(3,))
    page = report.write_report(folder, status="completed").read_text()
    assert [f["epoch"] for f in frames_data(page)["frames"]] == [3]
    assert 'max="0"' in page and "status-completed" in page
    assert "too short to judge" in page


def test_a_resumed_run_says_from_which_epoch_and_a_fresh_one_says_nothing(tmp_path):
    folder = write_run(tmp_path / "run_002", epochs=3, frames=(3,))
    assert "<dt>resumed</dt>" not in report.write_report(folder).read_text()
    meta = json.loads((folder / "run_metadata.json").read_text())
    meta.update(resumed_from_epoch=2, resumed_at="2026-11-25T11:00:00")
    (folder / "run_metadata.json").write_text(json.dumps(meta))
    page = report.write_report(folder).read_text()
    assert "<dt>resumed</dt><dd>after epoch 2, 2026-11-25T11:00:00</dd>" in page  # a run from before the list
    meta["resumes"] = [{"from_epoch": 0, "at": "2026-11-25T10:00:00"}, {"from_epoch": 2, "at": "2026-11-25T11:00:00"}]
    (folder / "run_metadata.json").write_text(json.dumps(meta))
    page = report.write_report(folder).read_text()
    assert ("<dt>resumed</dt><dd>2 times: from the start, 2026-11-25T10:00:00; after epoch 2, "
            "2026-11-25T11:00:00</dd>") in page


def test_run_without_frames_still_gets_a_report(tmp_path):
    folder = write_run(tmp_path / "run_003", epochs=5, frames=(1, 5))
    for path in frame_paths(folder):
        path.unlink()
    (folder / "latent_metrics.csv").unlink()
    page = report.write_report(folder).read_text()
    assert "No frames were drawn in this run" in page and "frames-data" not in page
    assert "data:image/png;base64," in page  # the curves, drawn on the fly


def test_not_a_run(tmp_path):
    with pytest.raises(InputError, match=r"no such run folder"):
        report.write_report(tmp_path / "missing")


def test_the_explorer_is_inside_and_old_runs_keep_the_png_player(many_frames, tmp_path):
    _, page = many_frames
    match = re.search(r'<script type="application/json" id="explorer-data">(.*?)</script>', page, re.S)
    data = json.loads(match.group(1))
    assert data["epochs"] == list(range(1, 41, 2)) and data["inputs"]["kind"] == "spectra"
    assert 'id="ex-canvas"' in page and "window.explorer" in page and '<details id="png-frame">' in page
    folder = write_run(tmp_path / "run_004", epochs=5, frames=(1, 5), write_layouts=False, inputs=False)
    old = report.write_report(folder).read_text()
    assert "explorer-data" not in old and '<details id="png-frame" open>' in old and 'id="slider"' in old
