"""latentlapse visualize: the post-training view of a checkpoint from a tiny real run."""

from __future__ import annotations

import logging
import re

import numpy as np
import pytest
from PIL import Image

from latentlapse.xray import cli, pipeline
from latentlapse.xray.config import TrainConfig
from latentlapse.core.errors import InputError
from latentlapse.xray.inspect_checkpoint import class_overlap, visualize_checkpoint


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One epoch, no time-lapse, on 300 simulated spectra (60 in the validation split)."""
    from latentlapse.xray.data.simulate import simulate_dataset
    from latentlapse.xray.data.writers import write_dataset

    root = tmp_path_factory.mktemp("inspect")
    data = root / "sim.txt"
    write_dataset(data, simulate_dataset(n=300, seed=1))
    result = pipeline.train(TrainConfig(classes=4, epochs=1, data=str(data), runs_dir=str(root / "runs"), device="cpu"))
    assert result.status == "completed"
    return result.run_dir, root


def test_a_run_without_time_lapse_still_gets_its_curves(tiny_run):
    run_dir, _ = tiny_run
    with Image.open(run_dir / "metrics.png") as image:
        assert image.size == (1600, 520)
    assert not (run_dir / "report.html").exists()


def test_folder_name_files_and_statistics(tiny_run):
    run_dir, root = tiny_run
    folder = visualize_checkpoint(run_dir / "best.pt", method="pca", out_root=root / "vis")
    assert re.fullmatch(r"best_run_001_epoch1_acc0\.\d{4}", folder.name)
    assert folder.parent == root / "vis"
    assert sorted(p.name for p in folder.iterdir()) == ["latent_map.png", "separability.png", "statistics.txt"]
    with Image.open(folder / "latent_map.png") as image:
        assert image.size == (1100, 900)
    with Image.open(folder / "separability.png") as image:
        assert image.size == (1400, 740)
    text = (folder / "statistics.txt").read_text()
    rows = re.findall(r"^  (\S+)\s+(\d+) / (\d+)\s", text, flags=re.M)
    per_class = {name: (int(right), int(total)) for name, right, total in rows}
    assert set(per_class) == {"AGN", "HM/LM", "YSO/CV", "NS/HMXB/LMXB/NS_BIN", "all"}
    assert sum(total for name, (_, total) in per_class.items() if name != "all") == per_class["all"][1] == 60
    assert f"acc{per_class['all'][0] / 60:.4f}" in folder.name
    assert f"run            {run_dir}" in text and "epoch          1 of 1" in text
    assert "oversample_target 0.7" in text and "Most confused pairs" in text
    assert "row a, column b = fraction of class a's sources whose nearest other sources are mostly class b" in text


def test_a_second_call_never_overwrites_and_missing_umap_falls_back_once(tiny_run, monkeypatch, caplog):
    from latentlapse.core.timelapse import projection

    run_dir, root = tiny_run
    monkeypatch.setattr(projection, "umap_available", lambda: False)
    projection._warn_umap_missing.cache_clear()
    with caplog.at_level(logging.WARNING, logger="latentlapse"):
        first = visualize_checkpoint(run_dir / "best.pt", method="umap", out_root=root / "again")
        second = visualize_checkpoint(run_dir / "best.pt", method="umap", out_root=root / "again")
    assert second.name == first.name + "_2"
    assert "map by t-SNE of 60 sources" in (first / "statistics.txt").read_text()
    assert sum("UMAP not found, using t-SNE" in r.getMessage() for r in caplog.records) == 1


def test_class_overlap_rows_sum_to_one_and_leave_each_point_out():
    features = np.array([[0.0], [0.1], [0.2], [5.0], [5.1], [5.2], [0.15]])
    labels = np.array([0, 0, 0, 1, 1, 1, 1])  # the last class-1 source sits among class 0
    overlap = class_overlap(features, labels, 3, k=3)
    np.testing.assert_allclose(overlap[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(overlap[1], [0.25, 0.75, 0.0])
    assert np.isnan(overlap[2]).all()


def test_missing_checkpoint(tmp_path):
    with pytest.raises(InputError, match=r"nope.pt: no such checkpoint"):
        visualize_checkpoint(tmp_path / "nope.pt", out_root=tmp_path / "vis")
    assert not (tmp_path / "vis").exists()


def test_data_with_another_feature_count_is_refused(tiny_run, tmp_path):
    run_dir, _ = tiny_run
    other = tmp_path / "ten_bins.txt"
    other.write_text("".join(f"S{i} " + " ".join(["0.1"] * 10) + " 500 AGN\n" for i in range(6)))
    with pytest.raises(InputError, match=r"ten_bins.txt: spectra have 10 bins, the model expects 380"):
        visualize_checkpoint(run_dir / "best.pt", data=str(other), out_root=tmp_path / "vis")
    assert not (tmp_path / "vis").exists()


def test_data_file_shows_its_labelled_sources(tiny_run, tmp_path, capsys):
    run_dir, root = tiny_run
    code = cli.main(["visualize", "--checkpoint", str(run_dir / "best.pt"), "--data", str(root / "sim.txt"),
                     "--method", "pca", "--out", str(tmp_path / "vis"), "--quiet"])
    assert code == 0
    folder = tmp_path / "vis" / capsys.readouterr().out.strip().split("/")[-1]
    text = (folder / "statistics.txt").read_text()
    assert "300 labelled sources of sim.txt" in text
    assert re.search(r"^  all\s+\d+ / 300 ", text, flags=re.M)


def test_data_file_skips_unknown_labels_and_refuses_an_unlabelled_file_as_evaluate_does(tiny_run, tmp_path, capsys):
    """visualize --data and evaluate take the labelled sources of a file by one rule: a QSO row
    is skipped with a note (it refused the file), a file without labels is a usage error (exit 2)."""
    run_dir, root = tiny_run
    lines = (root / "sim.txt").read_text().splitlines()
    lines[2] = lines[2].rsplit(" ", 1)[0] + " QSO"
    (tmp_path / "qso.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "bare.txt").write_text("".join(line.rsplit(" ", 1)[0] + "\n" for line in lines))
    code = cli.main(["visualize", "--checkpoint", str(run_dir / "best.pt"), "--data", str(tmp_path / "qso.txt"),
                     "--method", "pca", "--out", str(tmp_path / "vis")])
    captured = capsys.readouterr()
    assert code == 0
    assert "1 source with a label of no known class (the first: 'QSO' at line 3) skipped: only the model's " \
           "classes are drawn" in captured.err
    for command in ("visualize", "evaluate"):
        code = cli.main([command, "--checkpoint", str(run_dir / "best.pt"), "--data", str(tmp_path / "bare.txt"),
                         "--out", str(tmp_path / command)])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1
        assert err.endswith(f"{command} needs a labelled file (a label column such as True_Class); use predict for "
                            f"unlabelled sources")
        assert not (tmp_path / command).exists()


def test_the_map_draws_the_x_ray_classes_in_the_frames_colours():
    """`visualize` colours an 8-class map as the run's frames do (the scheme's colours), not the
    generic palette, which gives some of those classes other colours."""
    from latentlapse.core.timelapse.styles import default_style
    from latentlapse.xray.data.taxonomy import scheme
    from latentlapse.xray.inspect_checkpoint import class_style_of

    eight = scheme(8)
    style = class_style_of(list(eight.names))
    assert (style.colors, style.markers) == (eight.colors, eight.markers)
    assert style.colors != default_style(8)[0][:8]
    custom = class_style_of(["quiet", "flaring"])
    assert custom.colors == default_style(2)[0][:2]
