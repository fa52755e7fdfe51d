"""The Lightning callback with a tiny LightningModule (the digits example), when Lightning is installed."""

from __future__ import annotations

import pytest

from tests.api.conftest import assert_complete_run, load_example

pytest.importorskip("lightning", reason="Lightning is not installed: pip install 'latentlapse[lightning]' (CI installs it)")
pytest.importorskip("sklearn")


def test_lightning_example_films_each_validation_epoch_into_a_complete_run(tmp_path):
    example = load_example("digits_lightning")
    run = example.main(str(tmp_path / "runs"), epochs=4, method="pca", every=2)
    assert run == tmp_path / "runs" / "run_001"
    assert_complete_run(run, frames=[1, 2, 4], n_classes=10)
    history = (run / "history.csv").read_text().splitlines()
    assert history[0].split(",")[0] == "epoch" and "val_loss" in history[0] and len(history) == 5
