"""latentlapse compare on real runs that should not be read as one: different data files (refused
unless --force, and then never aligned by id) and different class schemes (a legend each)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from latentlapse.xray import cli, pipeline
from latentlapse.xray.config import TrainConfig, VizConfig
from latentlapse.core.timelapse import compare, compare_view
from latentlapse.core.timelapse.layouts import layout_files, load_layout
from latentlapse.core.timelapse.runfiles import load_run


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory):
    """Two-epoch PCA runs: A (data 1, 4 classes), B (data 2, 8 classes), C (data 1, 8 classes).
    Both data files name their sources SIM000001, ... — the same ids for different spectra."""
    from latentlapse.xray.data.simulate import simulate_dataset
    from latentlapse.xray.data.writers import write_dataset

    root = tmp_path_factory.mktemp("mismatch")
    runs = {}
    for name, seed, classes in (("A", 1, 4), ("B", 2, 8), ("C", 1, 8)):
        data = root / f"data{seed}.txt"
        if not data.exists():
            write_dataset(data, simulate_dataset(n=300, seed=seed))
        viz = VizConfig(enabled=True, every=1, method="pca", train_samples=60, val_samples=40)
        config = TrainConfig(classes=classes, epochs=2, data=str(data), runs_dir=str(root / "runs"), device="cpu",
                             viz=viz)
        result = pipeline.train(config)
        assert result.status == "completed"
        runs[name] = result.run_dir
    return runs


def test_the_runs_share_ids_but_not_data(real_runs):
    ids = [set(load_layout(layout_files(real_runs[k])[2]).val_ids.astype(str)) for k in ("A", "B")]
    assert ids[0] & ids[1]  # what made the old alignment "succeed" on unrelated sources


def test_different_data_is_refused_in_one_line_with_exit_1(real_runs, capsys):
    a, b = real_runs["A"], real_runs["B"]
    sha_a, sha_b = compare.data_checksums([load_run(a), load_run(b)])
    assert sha_a and sha_b and sha_a != sha_b
    assert cli.main(["compare", str(a), str(b)]) == 1
    err = capsys.readouterr().err
    assert err == (f"latentlapse compare: error: {a} and {b} were trained on different data (data sha256 "
                   f"{sha_a[:12]} vs {sha_b[:12]}), so their maps cannot be aligned by source id; compare runs on "
                   f"the same data, or add --force to set their curves and scores side by side without aligning "
                   f"the maps\n")
    assert not list(a.parent.glob("compare_*"))


def test_force_overlays_the_curves_as_different_data_without_aligning(real_runs, monkeypatch):
    a, b = real_runs["A"], real_runs["B"]
    seen = {}
    figure_png = compare_view.figure_png

    def spy(runs, layouts, alignment, epoch, differences, note, different_data=False):
        seen.update(alignment=alignment, layout_b=layouts[1], note=note, different_data=different_data)
        return figure_png(runs, layouts, alignment, epoch, differences, note, different_data)

    monkeypatch.setattr(compare_view, "figure_png", spy)
    png, page = compare.compare_runs(a, b, force=True)
    assert seen["different_data"] and not seen["alignment"].aligned and seen["alignment"].shared == 0
    np.testing.assert_array_equal(seen["alignment"].val_xy, seen["layout_b"].val_xy)  # B's map as it was
    assert seen["note"].startswith("different data (sha256 ")
    assert "need not be the same source" in seen["note"]
    assert "sources both runs show" not in page.read_text()
    assert "different data" in page.read_text()
    with Image.open(png) as image:
        assert image.size == (1600, 1900)


def test_different_schemes_get_a_legend_each(real_runs):
    a, c = load_run(real_runs["A"]), load_run(real_runs["C"])
    files = [layout_files(r.run_dir)[2] for r in (a, c)]
    layouts = [load_layout(f) for f in files]
    alignment = compare.align(layouts[0], layouts[1])
    fig_png = compare_view.figure_png([a, c], layouts, alignment, 2, [], "note")
    assert fig_png.startswith(b"\x89PNG")
    from matplotlib.figure import Figure

    captured = []
    original = Figure.savefig

    def keep(fig, *args, **kwargs):
        captured.append(fig)
        return original(fig, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Figure, "savefig", keep)
        compare_view.figure_png([a, c], layouts, alignment, 2, [], "note")
    fig = captured[0]
    legends = [[t.get_text() for t in ax.get_legend().get_texts()] for ax in fig.axes if ax.get_legend() is not None
               and ax.get_title(loc="center").find("\n") > 0]
    assert len(legends) == 4  # validation and training map of each run
    four = ["AGN", "HM/LM", "YSO/CV", "NS/HMXB/LMXB/NS_BIN"]
    eight = ["AGN", "CV", "HM-STAR", "HMXB", "LM-STAR", "LMXB", "NS", "YSO"]
    assert [legend[:len(four)] for legend in legends if len(legend) in (4, 5)] == [four, four]
    assert [legend[:len(eight)] for legend in legends if len(legend) in (8, 9)] == [eight, eight]
    bars = fig.axes[-1]
    ticks = [t for t in bars.get_xticklabels() if t.get_text()]
    assert len(ticks) == 11  # AGN is in both schemes
    # slanted labels stay apart when the gap between neighbouring ticks, measured across the
    # slant, is more than a line of text
    x = [bars.transData.transform((tick.get_position()[0], 0))[0] for tick in ticks]
    gap = min(np.diff(x)) * np.sin(np.radians(ticks[0].get_rotation()))
    line = max(t.get_fontsize() for t in ticks) * fig.dpi / 72
    assert gap > 1.2 * line, (gap, line)


def test_another_class_scheme_on_the_same_data_is_scored_on_another_split(real_runs):
    a, c = load_run(real_runs["A"]), load_run(real_runs["C"])
    assert compare.data_checksums([a, c])[0] == compare.data_checksums([a, c])[1]
    note = compare.different_splits_note([a, c])
    assert note is not None and note.startswith("different validation splits (")
    assert compare.different_splits_note([a, a]) is None
