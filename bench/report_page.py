"""Size and time-to-interactive of report.html with its explorer, in headless Chromium.

Bars (issue 10): the page of the default 150-epoch run (19 frames, 500 training + 300 validation
points) is at most 8 MB and interactive within 2 s in headless Chromium on this machine.

With a RUN folder, its report is written and measured. Without one, a stand-in of the default
run's shape is built in a temporary folder — for when a real 150-epoch run cannot finish on the
shared machine: the guide's data and sample (the built-in simulated set, 4 classes, seed 42, the
visualiser's own stratified 500 + 300 choice and its ``viz_inputs.npz``), the 19 frames of
``--viz_every 10``, each a real 1600 x 700 PNG drawn by ``render.render_frame`` and a layout file
with probabilities, from synthetic 64-D features whose classes separate over the epochs (PCA
maps, to keep the build short), and per-source dynamics of all 2730 sources for all 150 epochs
(``dynamics/``, ``dynamics.csv``) from synthetic logits. History, metrics and metadata come from the test suite's run writer.

Time to interactive: a fresh page per round opens the file; the explorer's script records
``performance.now()`` (milliseconds since navigation start) when its first frame is drawn and its
handlers are attached (``window.explorer.readyAt``); the page's load event end is printed too.
Medians over the rounds (default 5).

Run: ``python bench/report_page.py [RUN] [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import types
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
EPOCHS, EVERY = 150, 10


def stand_in_run(folder: Path) -> Path:
    """A run folder of the default run's shape (see the module docstring)."""
    sys.path.insert(0, str(HERE.parent / "tests" / "timelapse"))
    from synthetic_runs import write_run

    from latentlapse.xray.config import TrainConfig, VizConfig
    from latentlapse.xray.prepare import prepare
    from latentlapse.core.timelapse import layouts, projection, render
    from latentlapse.core.timelapse.schedule import frame_name, visualized_epochs
    from latentlapse.core.timelapse.snapshot import Snapshot
    from _common import collecting_visualizer

    epochs = visualized_epochs(EPOCHS, EVERY)
    run = write_run(folder, epochs=EPOCHS, frames=tuple(epochs), write_layouts=False, inputs=False)
    for png in run.glob("epoch_*.png"):
        png.unlink()
    config = TrainConfig(epochs=EPOCHS, oversample_target=1.0, viz=VizConfig(enabled=True, every=EVERY))
    prepared = prepare(config)
    visualizer = collecting_visualizer(run, config, prepared, "pca")
    visualizer.on_train_start(types.SimpleNamespace(epoch=0))  # writes the sample's inputs
    spec = visualizer.worker.spec
    generator = np.random.default_rng(0)  # the stand-in features (not a library stream)
    labels = np.concatenate([spec.train_labels, spec.val_labels])
    centres = generator.normal(size=(len(spec.class_names), 64))
    noise = generator.normal(size=(len(labels), 64))
    previous = None
    for f, epoch in enumerate(epochs):
        separation = 0.15 + 0.25 * f / (len(epochs) - 1)  # validation accuracy about 0.65 to 0.95
        noise += 0.15 * generator.normal(size=noise.shape)
        features = (noise + separation * centres[labels]).astype(np.float32)
        logits = -((features[:, None, :] - separation * centres[None]) ** 2).sum(axis=2) / 40
        proba = np.exp(logits - logits.max(axis=1, keepdims=True))
        proba /= proba.sum(axis=1, keepdims=True)
        n_train = len(spec.train_labels)
        val_pred = proba[n_train:].argmax(axis=1)
        scores = {"train_acc": 0.8, "val_acc": float((val_pred == spec.val_labels).mean()), "train_loss": 0.3,
                  "val_loss": 0.3}
        snapshot = Snapshot(epoch=epoch, train_features=features[:n_train], val_features=features[n_train:],
                            val_pred=val_pred, val_true_all=spec.val_labels, val_pred_all=val_pred, scores=scores,
                            train_proba=proba[:n_train], val_proba=proba[n_train:])
        layout = projection.project(snapshot.train_features, snapshot.val_features, "pca", previous, spec.seed)
        render.render_frame(run / frame_name(epoch, EPOCHS, scores["val_acc"]), snapshot, spec, layout, {})
        layouts.save_layout(run, snapshot, spec, layout)
        previous = layout
    _stand_in_dynamics(run, prepared, generator)
    return run


def _stand_in_dynamics(run: Path, prepared, generator: np.random.Generator) -> None:
    """All 150 epochs of every training and validation source, as the recorder writes them, and
    ``dynamics.csv``/``.png`` from them: logits that favour the label more as training goes on."""
    from latentlapse.core.timelapse import dynamics, dynamics_summary

    p = prepared
    rows = np.concatenate([p.split.train, p.split.val])
    labels = p.y[rows]
    split = np.array(["train"] * len(p.split.train) + ["val"] * len(p.split.val))
    dynamics.write_sources(run, p.dataset.ids[rows], split, labels, p.scheme.names)
    ease = generator.normal(size=len(rows))  # each source's own difficulty
    for epoch in range(1, EPOCHS + 1):
        logits = generator.normal(scale=0.7, size=(len(rows), p.scheme.n_classes))
        logits[np.arange(len(rows)), labels] += (1 + ease) * 3 * epoch / EPOCHS
        proba = np.exp(logits - logits.max(axis=1, keepdims=True))
        proba /= proba.sum(axis=1, keepdims=True)
        dynamics.write_epoch(run, epoch, dynamics.epoch_record(labels, proba, logits))
    dynamics_summary.write_summary(run)


def measure(page: Path, rounds: int) -> tuple[list[float], list[float], list[str]]:
    """Explorer-ready and load-event times (ms) of fresh pages, and any console errors."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("chromium is not installed (apt-get install chromium)")
    ready, loaded, errors = [], [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            for _ in range(rounds):
                tab = browser.new_page(viewport={"width": 1300, "height": 900})
                tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                tab.on("pageerror", lambda e: errors.append(str(e)))
                tab.goto(page.resolve().as_uri())
                tab.wait_for_load_state("load")
                ready.append(tab.evaluate("window.explorer.readyAt"))
                loaded.append(tab.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd"))
                tab.close()
        finally:
            browser.close()
    return ready, loaded, errors


def breakdown(page: Path) -> str:
    """Megabytes of the page's parts: PNG frames, the explorer's data by key, the rest."""
    import json
    import re

    text = page.read_text(encoding="utf-8")
    frames = re.search(r'id="frames-data">(.*?)</script>', text, re.S).group(1)
    data_text = re.search(r'id="explorer-data">(.*?)</script>', text, re.S).group(1)
    data = json.loads(data_text)
    parts = {key: len(json.dumps(value, separators=(",", ":"))) for key, value in data.items()}
    big = sorted(parts.items(), key=lambda kv: -kv[1])[:5]
    rest = len(text) - len(frames) - len(data_text)
    return (f"PNG frames {len(frames) / 1e6:.2f} MB, explorer data {len(data_text) / 1e6:.2f} MB ("
            + ", ".join(f"{k} {v / 1e6:.2f}" for k, v in big) + f"), everything else {rest / 1e6:.2f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", help="a run folder (default: build a stand-in of the default run)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    from latentlapse.core.timelapse import report

    with tempfile.TemporaryDirectory(prefix="report_page_") as tmp:
        run = Path(args.run).resolve() if args.run else stand_in_run(Path(tmp) / "run_001")
        page = report.write_report(run)
        size = page.stat().st_size
        parts = breakdown(page)
        ready, loaded, errors = measure(page, args.rounds)
    print(f"load average {os.getloadavg()[0]:.1f} (1 min) on {os.cpu_count()} cores")
    print(f"report.html: {size / 1e6:.2f} MB (bar <= 8 MB) — {'met' if size <= 8e6 else 'NOT met'}")
    print(f"  of which {parts}")
    print(f"explorer interactive after {statistics.median(ready):.0f} ms (median of {len(ready)}; "
          f"{min(ready):.0f}-{max(ready):.0f}); load event end {statistics.median(loaded):.0f} ms "
          f"(bar <= 2000 ms) — {'met' if max(statistics.median(ready), statistics.median(loaded)) <= 2000 else 'NOT met'}")
    print(f"console errors: {len(errors)}" + (f" (first: {errors[0]})" if errors else ""))


if __name__ == "__main__":
    main()
