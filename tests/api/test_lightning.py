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


def test_a_checkpoint_takes_the_logged_epochs_to_disk(tmp_path):
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint
    from torch.utils.data import DataLoader

    from latentlapse.core.timelapse import dynamics
    from latentlapse.integrations.lightning import TimelapseCallback

    example = load_example("digits_lightning")
    train_set, val_set = example.digits(0)
    film = TimelapseCallback(tmp_path / "runs", module="net.encoder", class_names=[str(d) for d in range(10)],
                             train_loader=DataLoader(train_set, batch_size=512), frames=False, flush_seconds=3600)
    on_disk = []

    class Look(L.Callback):
        def on_save_checkpoint(self, trainer, pl_module, checkpoint):
            on_disk.append(dynamics.recorded_epochs(film.run_dir))

    trainer = L.Trainer(max_epochs=2, callbacks=[film, Look(), ModelCheckpoint(dirpath=tmp_path / "checkpoints")],
                        accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(example.DigitsModule(0), DataLoader(train_set, batch_size=64), DataLoader(val_set, batch_size=512))
    assert on_disk == [[1], [1, 2]]  # without the flush the hour-long batch would leave [] and []
