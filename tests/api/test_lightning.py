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


@pytest.mark.parametrize("at_epoch_end", [True, False])
def test_a_checkpoint_takes_the_logged_epochs_to_disk(tmp_path, at_epoch_end):
    """ModelCheckpoint saves at the end of the training epoch (its default here: the epoch is
    logged by then and the save flushes it) or at the end of validation (before the epoch is
    logged: it is flushed as soon as it is)."""
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint
    from torch.utils.data import DataLoader

    from latentlapse.core.timelapse import dynamics
    from latentlapse.integrations.lightning import TimelapseCallback

    example = load_example("digits_lightning")
    train_set, val_set = example.digits(0)
    film = TimelapseCallback(tmp_path / "runs", module="net.encoder", class_names=[str(d) for d in range(10)],
                             train_loader=DataLoader(train_set, batch_size=512), frames=False, flush_seconds=3600)
    seen = {"save": [], "epoch end": []}

    class Look(L.Callback):  # listed after the film: sees what a hard kill would leave
        def on_save_checkpoint(self, trainer, pl_module, checkpoint):
            seen["save"].append(dynamics.recorded_epochs(film.run_dir))

        def on_train_epoch_end(self, trainer, pl_module):
            seen["epoch end"].append(dynamics.recorded_epochs(film.run_dir))

    saver = ModelCheckpoint(dirpath=tmp_path / "checkpoints", save_on_train_epoch_end=at_epoch_end)
    trainer = L.Trainer(max_epochs=2, callbacks=[film, Look(), saver],
                        accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(example.DigitsModule(0), DataLoader(train_set, batch_size=64), DataLoader(val_set, batch_size=512))
    # without the flushes the hour-long batch would leave [] and [] in both
    assert seen["save" if at_epoch_end else "epoch end"] == [[1], [1, 2]]


def test_epoch_totals_of_the_training_metrics_land_in_their_own_epoch(tmp_path):
    import csv

    import lightning as L
    from torch.utils.data import DataLoader

    from latentlapse.integrations.lightning import TimelapseCallback

    example = load_example("digits_lightning")
    train_set, val_set = example.digits(0)
    means = []

    class Logged(example.DigitsModule):
        def on_train_epoch_start(self):
            self.losses = []

        def training_step(self, batch, batch_idx):
            loss = super().training_step(batch, batch_idx)
            self.losses.append(float(loss.detach()))
            self.log("epoch_mean_loss", loss, on_step=False, on_epoch=True, batch_size=len(batch[1]))
            self.log("train_loss", loss)  # one step's value: must not replace the history's whole-split loss
            return loss

        def on_train_epoch_end(self):
            means.append(sum(self.losses) / len(self.losses))

    film = TimelapseCallback(tmp_path / "runs", module="net.encoder", class_names=[str(d) for d in range(10)],
                             train_loader=DataLoader(train_set, batch_size=512), frames=False)
    trainer = L.Trainer(max_epochs=2, callbacks=[film], accelerator="cpu", devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    # full batches only, so the per-batch mean is Lightning's sample-weighted mean
    trainer.fit(Logged(0), DataLoader(train_set, batch_size=64, drop_last=True), DataLoader(val_set, batch_size=512))
    rows = list(csv.DictReader((film.run_dir / "history.csv").open()))
    assert [float(r["epoch_mean_loss"]) for r in rows] == pytest.approx(means, rel=1e-5)
    assert all(r["lightning_train_loss"] and r["train_loss"] != r["lightning_train_loss"] for r in rows)
