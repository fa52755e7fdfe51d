"""latentlapse compare: B's map turned onto A's, files next to the runs, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from synthetic_runs import N_TRAIN, N_VAL, base_layout, write_run

from latentlapse.xray import cli
from latentlapse.core.errors import InputError
from latentlapse.core.timelapse import compare, compare_view, runfiles
from latentlapse.core.timelapse.layouts import layout_files, load_layout

ANGLE = 0.7
ROTATE_AND_REFLECT = np.array([[np.cos(ANGLE), -np.sin(ANGLE)], [np.sin(ANGLE), np.cos(ANGLE)]]) @ np.diag([1.0, -1.0])
# B's sources in another order, as a run that listed them differently would store them.
SHUFFLED = (np.random.default_rng(3).permutation(N_TRAIN), np.random.default_rng(4).permutation(N_VAL))


def turned(xy):
    return xy @ ROTATE_AND_REFLECT + np.array([0.05, -0.02])


@pytest.fixture
def runs(tmp_path):
    a = write_run(tmp_path / "run_001", epochs=12)
    b = write_run(tmp_path / "run_002", epochs=12, transform=turned, ids_order=SHUFFLED,
                  config_changes={"oversample_target": 1.0})
    return a, b


def test_alignment_undoes_a_rotation_and_reflection_exactly(runs):
    a, b = runs
    layout_a, layout_b = (load_layout(layout_files(run)[12]) for run in (a, b))
    assert not np.allclose(layout_b.train_xy, layout_a.train_xy)
    aligned = compare.align(layout_a, layout_b)
    assert aligned.aligned and aligned.shared == N_TRAIN + N_VAL
    train_a, val_a = base_layout()
    order_t, order_v = SHUFFLED
    np.testing.assert_allclose(aligned.train_xy, train_a[order_t], atol=1e-9)
    np.testing.assert_allclose(aligned.val_xy, val_a[order_v], atol=1e-9)
    assert aligned.residual == pytest.approx(0.0, abs=1e-9)
    assert np.linalg.det(aligned.rotation) == pytest.approx(-1.0)  # a reflection was undone


def test_too_few_shared_sources_leave_the_map_unaligned(runs):
    a, b = runs
    layout_a, layout_b = (load_layout(layout_files(run)[12]) for run in (a, b))
    aligned = compare.align(layout_a, layout_b, min_shared=N_TRAIN + N_VAL + 1)
    assert not aligned.aligned
    np.testing.assert_array_equal(aligned.train_xy, layout_b.train_xy)
    note = compare.alignment_note([type("R", (), {"name": "run_001"}), type("R", (), {"name": "run_002"})], aligned)
    assert "drawn unaligned" in note


def test_files_go_into_the_parent_and_nothing_into_either_run(runs, tmp_path):
    a, b = runs
    before = {run: sorted(p.name for p in run.rglob("*")) for run in (a, b)}
    paths = compare.compare_runs(a, b)
    assert paths == [tmp_path / "compare_run_001_vs_run_002.png", tmp_path / "compare_run_001_vs_run_002.html"]
    assert {run: sorted(p.name for p in run.rglob("*")) for run in (a, b)} == before
    with Image.open(paths[0]) as image:
        assert image.size == (1600, 1900)
    page = paths[1].read_text()
    assert "run_001 vs run_002 at epoch 12" in page
    assert "<tr><th>oversample_target</th><td>0.7</td><td>1.0</td></tr>" in page
    assert "http://" not in page and "https://" not in page and "data:image/png;base64," in page
    assert "rotated/reflected onto run_001" in page and "64 sources" in page
    assert "<th>accuracy</th><td>0.8956</td><td>0.8956</td><td class=''>+0.0000</td>" in page


def test_the_shared_legend_gives_no_count_of_one_run_as_if_for_both(runs, monkeypatch):
    """Runs with the same classes share one legend beside both validation maps: the number
    misclassified is in each map's title, not in the legend (it would be run B's only)."""
    from matplotlib.figure import Figure

    captured = []
    original = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda fig, *a, **k: captured.append(fig) or original(fig, *a, **k))
    compare.compare_runs(*runs)
    fig, = captured
    legends = [[t.get_text() for t in ax.get_legend().get_texts()] for ax in fig.axes if ax.get_legend() is not None
               and "epoch" in ax.get_title()]
    assert len(legends) == 2  # beside run B's validation and training maps, shared with run A's
    assert "misclassified\nring = true class" in legends[0] and not any("(" in text for text in legends[0])
    titles = [ax.get_title() for ax in fig.axes if "validation · epoch" in ax.get_title()]
    assert len(titles) == 2 and all(f"3 of {N_VAL} wrong" in title for title in titles)


def test_a_run_that_did_not_complete_is_marked_next_to_its_name(runs, caplog):
    a, b = runs
    meta = json.loads((b / "run_metadata.json").read_text())
    meta.update(status="failed", error="RuntimeError: the loop broke")
    (b / "run_metadata.json").write_text(json.dumps(meta))
    caplog.set_level("WARNING", logger="latentlapse")
    page = compare.compare_runs(a, b)[1].read_text()
    assert "<h3>run_001</h3>" in page and "<h3>run_002 · failed after epoch 12 of 12</h3>" in page
    assert "run_002 did not complete: failed after epoch 12 of 12 (RuntimeError: the loop broke)." in page
    assert [r.getMessage() for r in caplog.records] == [
        "run_002 did not complete: failed after epoch 12 of 12 (RuntimeError: the loop broke); the comparison "
        "shows what it recorded"]
    loaded = [runfiles.load_run(run) for run in (a, b)]
    assert compare_view.labels(loaded, []) == ["run_001", "run_002 · failed after epoch 12 of 12"]


def test_default_is_the_last_epoch_both_drew_and_epoch_can_be_chosen(tmp_path):
    a = write_run(tmp_path / "run_001", epochs=12, frames=(1, 5, 10, 12))
    b = write_run(tmp_path / "run_002", epochs=20, frames=(1, 5, 10, 20))
    assert "at epoch 10" in compare.compare_runs(a, b)[1].read_text()
    assert "at epoch 5" in compare.compare_runs(a, b, epoch=5)[1].read_text()


def test_epoch_not_drawn_lists_the_epochs_available(runs):
    a, b = runs
    with pytest.raises(InputError, match=r"run_001: no frame at epoch 7; its frames are at epochs 1, 5, 10, 12; "
                                         r"pass one of them to --epoch"):
        compare.compare_runs(a, b, epoch=7)


def test_missing_folder(runs, tmp_path):
    with pytest.raises(InputError, match=r"run_404: no such run folder"):
        compare.compare_runs(runs[0], tmp_path / "run_404")


def test_not_a_run(runs, tmp_path):
    (tmp_path / "notes").mkdir()
    with pytest.raises(InputError, match=r"notes: not a latentlapse run \(no run_metadata.json\)"):
        compare.compare_runs(tmp_path / "notes", runs[1])


def test_same_run_twice(runs):
    with pytest.raises(InputError, match=r"are the same run; give two different run folders"):
        compare.compare_runs(runs[0], runs[0] / ".." / "run_001")


def test_run_without_frames(runs, tmp_path):
    plain = write_run(tmp_path / "run_003", write_layouts=False)
    with pytest.raises(InputError, match=r"run_003: no frames to compare \(no layouts/epoch_\*.npz\)"):
        compare.compare_runs(runs[0], plain)


def test_command_line_prints_both_paths_and_errors_in_one_line(runs, tmp_path, capsys):
    a, b = runs
    assert cli.main(["compare", str(a), str(b), "--quiet"]) == 0
    assert capsys.readouterr().out.splitlines() == [str(tmp_path / "compare_run_001_vs_run_002.png"),
                                                    str(tmp_path / "compare_run_001_vs_run_002.html")]
    assert cli.main(["compare", str(a), str(b), "--epoch", "3", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "no frame at epoch 3" in err
    assert json.loads((a / "run_metadata.json").read_text())["status"] == "completed"


def test_runs_scored_on_different_validation_splits_say_so(tmp_path, monkeypatch, caplog):
    """Another --seed or class scheme draws another split of the same data: the deltas are of
    different sources, said in the picture's note, the page and the log; the same split says nothing."""
    a = write_run(tmp_path / "run_001", epochs=12, dynamics=True)
    b = write_run(tmp_path / "run_002", epochs=12, dynamics=True, config_changes={"seed": 7})
    notes = []
    figure_png = compare_view.figure_png

    def spy(runs, layouts, alignment, epoch, differences, note, different_data=False):
        notes.append(note)
        return figure_png(runs, layouts, alignment, epoch, differences, note, different_data)

    monkeypatch.setattr(compare_view, "figure_png", spy)
    page = compare.compare_runs(a, b)[1].read_text()
    assert "different validation" not in notes[-1] and "not the same sources" not in page
    sources = b / "dynamics" / "sources.csv"
    lines = sources.read_text().splitlines()
    sources.write_text("\n".join(line.replace(",val,", ",train,") if line.startswith("V00") else line
                                 for line in lines) + "\n")  # V000-V009 moved into training
    caplog.set_level("INFO", logger="latentlapse")
    page = compare.compare_runs(a, b)[1].read_text()
    note = ("different validation splits (15 sources in both, of 25 and 15: another seed or class scheme draws "
            "another split): curves and scores are of different validation sources")
    assert notes[-1].endswith(note)
    assert note in page and "The two validation splits are not the same sources" in page
    assert note in caplog.records[-1].getMessage()
