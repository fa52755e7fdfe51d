"""The time-lapse end to end: the guide's files in the run folder, exactly as the issue lists."""

from __future__ import annotations

import csv
import json
import logging
import os

import pytest
from PIL import Image

from latentlapse.xray import cli, pipeline
from latentlapse.xray.config import TrainConfig, VizConfig


@pytest.fixture(scope="module")
def guide_run(tmp_path_factory):
    """``python main.py --classes 4 --epochs 12 --viz_every 5 --visualize_training --runs_dir D``."""
    root = tmp_path_factory.mktemp("viz")
    code = cli.train_main(["--classes", "4", "--epochs", "12", "--viz_every", "5", "--visualize_training",
                           "--runs_dir", str(root), "--quiet"])
    assert code == 0
    return root / "run_001"


def test_frames_for_epochs_1_5_10_12_named_with_validation_accuracy(guide_run):
    frames = sorted(p.name for p in guide_run.glob("epoch_*.png"))
    assert [name[:9] for name in frames] == ["epoch_001", "epoch_005", "epoch_010", "epoch_012"]
    history = {int(r["epoch"]): r for r in csv.DictReader((guide_run / "history.csv").open())}
    for name in frames:
        epoch = int(name[6:9])
        assert name == f"epoch_{epoch:03d}_acc{float(history[epoch]['val_acc']):.4f}.png"
        with Image.open(guide_run / name) as image:
            assert image.size == (1600, 700)


def test_metadata_has_the_guides_fields(guide_run):
    meta = json.loads((guide_run / "run_metadata.json").read_text())
    assert meta["run_directory"] == str(guide_run)
    assert meta["num_classes"] == 4 and meta["method"] == "tsne"
    assert isinstance(meta["has_umap"], bool) and meta["status"] == "completed"
    assert meta["start_time"][:4].isdigit() and "T" in meta["start_time"]


def test_progress_table_has_the_guides_header_and_four_rows(guide_run):
    lines = (guide_run / "training_progress.txt").read_text().splitlines()
    assert lines[0] == "Epoch | Train Acc | Val Acc | Train Loss | Val Loss"
    assert lines[1] == "-" * 60
    assert [int(line.split("|")[0]) for line in lines[2:]] == [1, 5, 10, 12]
    history = {int(r["epoch"]): r for r in csv.DictReader((guide_run / "history.csv").open())}
    cells = [c.strip() for c in lines[4].split("|")]
    assert cells == ["10"] + [f"{float(history[10][k]):.4f}" for k in ("train_acc", "val_acc", "train_loss", "val_loss")]


def test_latent_metrics_samples_script_and_animation(guide_run):
    rows = list(csv.DictReader((guide_run / "latent_metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 5, 10, 12]
    assert rows[0]["displacement"] == "" and float(rows[-1]["displacement"]) >= 0
    samples = list(csv.DictReader((guide_run / "viz_samples.csv").open()))
    assert sum(r["split"] == "train" for r in samples) == 500
    assert sum(r["split"] == "val" for r in samples) == 300
    assert {r["class"] for r in samples if r["split"] == "val"} == {"AGN", "HM/LM", "YSO/CV", "NS/HMXB/LMXB/NS_BIN"}
    assert os.access(guide_run / "create_animation.sh", os.X_OK)
    with Image.open(guide_run / "training_animation.gif") as gif:
        assert gif.n_frames == 4


def test_sample_holds_rare_classes_in_full_and_only_original_sources(guide_run):
    samples = list(csv.DictReader((guide_run / "viz_samples.csv").open()))
    ids = [r["id"] for r in samples]
    assert len(set(ids)) == len(ids)  # no oversampled copies, no overlap between the splits
    def count(split, name):
        return sum(r["split"] == split and r["class"] == name for r in samples)

    rare = "NS/HMXB/LMXB/NS_BIN"
    assert count("val", rare) == 20  # the validation split's 20 NS-group sources, all of them
    assert count("train", rare) >= 41  # at least a third of an equal share, far above its 4% proportion
    assert count("train", "AGN") > count("train", "YSO/CV") > count("train", rare)  # still stratified


def test_missing_umap_falls_back_to_tsne_with_one_warning(tmp_path, monkeypatch, caplog):
    from latentlapse.xray.data.simulate import simulate_dataset
    from latentlapse.xray.data.writers import write_dataset
    from latentlapse.core.timelapse import projection

    data = tmp_path / "d.txt"
    write_dataset(data, simulate_dataset(n=300, seed=1))
    monkeypatch.setattr(projection, "umap_available", lambda: False)
    config = TrainConfig(classes=2, epochs=1, data=str(data), runs_dir=str(tmp_path / "r"),
                         viz=VizConfig(enabled=True, method="umap", train_samples=40, val_samples=20))
    with caplog.at_level(logging.WARNING, logger="latentlapse"):
        result = pipeline.train(config)
    warnings = [r.getMessage() for r in caplog.records if "UMAP not found" in r.getMessage()]
    assert warnings == ["UMAP not found, using t-SNE: pip install 'latentlapse[umap]' to use --viz_method umap"]
    meta = json.loads((result.run_dir / "run_metadata.json").read_text())
    assert meta["method"] == "tsne" and meta["has_umap"] is False


def test_stacked_imbalance_corrections_warn_once(tmp_path, caplog):
    from latentlapse.xray.data.simulate import simulate_dataset
    from latentlapse.xray.data.writers import write_dataset

    data = tmp_path / "d.txt"
    write_dataset(data, simulate_dataset(n=300, seed=1))
    config = TrainConfig(classes=2, epochs=1, data=str(data), runs_dir=str(tmp_path / "r"),
                         oversample_target=1.0, alpha="inverse", sampler="balanced")
    with caplog.at_level(logging.WARNING, logger="latentlapse"):
        pipeline.train(config)
    stacked = [r.getMessage() for r in caplog.records if "stacked" in r.getMessage()]
    assert len(stacked) == 1
    assert "oversampling to 1 x the majority + a balanced sampler + inverse-frequency alpha" in stacked[0]


def test_layouts_keep_probabilities_and_the_inputs_are_the_samples_rows(guide_run):
    import numpy as np

    from latentlapse.xray.data.simulate import simulate_dataset
    from latentlapse.core.timelapse import dynamics, explorer, layouts

    frame = layouts.load_layout(layouts.layout_files(guide_run)[12])
    assert frame.val_proba.shape == (300, 4) and frame.train_proba.shape == (500, 4)
    assert (frame.val_proba.argmax(axis=1) == frame.val_pred).mean() > 0.98  # float16 may tie a close call
    history = dynamics.load_history(guide_run)  # the training predictions are the run's own record
    column = {(s, i): k for k, (s, i) in enumerate(zip(history.split, history.ids))}
    recorded = history.pred[list(history.epochs).index(12), [column["train", i] for i in frame.train_ids]]
    assert frame.train_pred.tolist() == recorded.tolist()
    np.testing.assert_allclose(frame.train_proba.astype(np.float64).sum(axis=1), 1, atol=5e-3)
    inputs = explorer.load_inputs(guide_run)
    samples = list(csv.DictReader((guide_run / "viz_samples.csv").open()))
    assert inputs["train_ids"].tolist() == [r["id"] for r in samples if r["split"] == "train"]
    assert inputs["val_ids"].tolist() == [r["id"] for r in samples if r["split"] == "val"] == frame.val_ids.tolist()
    data = simulate_dataset(seed=42)
    row = {i: k for k, i in enumerate(data.ids)}[inputs["val_ids"][7]]
    assert inputs["val_X"].dtype == np.float16 and inputs["energy"].shape == (380,)
    np.testing.assert_allclose(inputs["val_X"][7], data.X[row], rtol=2e-3, atol=1e-7)
    assert inputs["val_counts"][7] == data.counts[row]
    page = (guide_run / "report.html").read_text()
    assert 'id="explorer-data"' in page and '"dynamics":{"epochs":[1,2,3,4,5,6,7,8,9,10,11,12]' in page


@pytest.mark.browser
def test_the_reports_explorer_answers_in_chromium(guide_run):
    """The guide run's report.html in headless Chromium: hovering a point known from its layout
    file shows its id, clicking opens its spectrum, "errors only" leaves exactly the frame's
    validation errors, searching an id finds it, and nothing is logged as an error."""
    import shutil

    import numpy as np

    from latentlapse.core.timelapse import layouts

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); .ci/run installs it")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    frame = layouts.load_layout(layouts.layout_files(guide_run)[12])
    val_ids = frame.val_ids.astype(str).tolist()
    errors: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            tab = browser.new_page(viewport={"width": 1300, "height": 900})
            tab.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            tab.on("pageerror", lambda error: errors.append(str(error)))
            tab.goto((guide_run / "report.html").as_uri())
            tab.keyboard.press("End")  # the last frame, epoch 12
            for _ in range(100):
                if not tab.evaluate("window.explorer.animating()"):
                    break
                tab.wait_for_timeout(20)
            assert tab.evaluate("window.explorer.frame()")["epoch"] == 12
            tab.locator("#explorer").scroll_into_view_if_needed()
            everything = tab.evaluate("window.explorer.positions()")
            drawn = {i: (x, y) for i, x, y in everything[len(frame.train_ids):]}
            pixels = np.array([drawn[i] for i in val_ids])
            scale = np.polyfit(frame.val_xy[:, 0], pixels[:, 0], 1)[0]
            assert scale > 100 and np.allclose(pixels - pixels.mean(axis=0),  # the map is the layout file's
                                               (frame.val_xy - frame.val_xy.mean(axis=0)) * [scale, -scale], atol=0.01)
            isolated = [(i, x, y) for i, x, y in tab.evaluate("window.explorer.positions(1)")
                        if sum(abs(px - x) + abs(py - y) <= 12 for _, px, py in everything) == 1]
            point_id, x, y = isolated[0]
            tab.mouse.move(x, y)
            assert tab.inner_text("#ex-tip").splitlines()[0] == point_id and point_id in val_ids
            tab.mouse.click(x, y)
            assert tab.get_attribute("#ex-panel", "data-id") == point_id
            assert int(tab.get_attribute("#ex-spectrum", "data-points")) > 100  # counts per keV, bins with counts
            assert "net counts" in tab.inner_text("#ex-panel") and "suspect rank: " in tab.inner_text("#ex-panel")
            tab.check("#ex-errors")
            wrong = sorted(i for i, t, p in zip(val_ids, frame.val_labels, frame.val_pred) if t != p)
            assert sorted(tab.evaluate("window.explorer.visibleIds(1)")) == wrong
            tab.uncheck("#ex-errors")
            target = str(frame.train_ids[-1])
            tab.fill("#ex-search", target)
            tab.press("#ex-search", "Enter")
            assert tab.get_attribute("#ex-panel", "data-id") == target
        finally:
            browser.close()
    assert errors == []
