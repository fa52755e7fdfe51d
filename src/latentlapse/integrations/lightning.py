"""``TimelapseCallback``: a :class:`latentlapse.Timelapse` for a Lightning ``Trainer``.

At the end of each validation epoch (not the sanity check) it collects features through a
forward hook on the named module (:func:`latentlapse.features`) over an unshuffled training
loader and the validation loader; it logs the epoch at the end of the training epoch, once
Lightning has totalled the epoch's logged metrics (at the end of validation the training
metrics are still the previous epoch's). Only on global rank zero, so a multi-process run films
once. Needs the ``lightning`` extra: ``pip install 'latentlapse[lightning]'``.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Sequence

try:
    from lightning.pytorch.callbacks import Callback
except ImportError:  # pragma: no cover - the message a user without the extra sees
    raise ImportError("latentlapse.integrations.lightning needs Lightning: pip install 'latentlapse[lightning]'") from None

from latentlapse.core.hooks import features
from latentlapse.core.timelapse.live import Timelapse


class TimelapseCallback(Callback):
    """Film the latent space of ``module`` (a submodule name, e.g. ``"encoder"``).

    ``train_loader`` must iterate the training set in a fixed order (no shuffling): the frames'
    fixed sample and the per-source dynamics are positions in it. ``val_loader`` defaults to the
    trainer's (first) validation loader. Other keywords go to :class:`Timelapse` (``method``,
    ``every``, ``seed``, ``tensorboard``, ...); the epochs are the trainer's ``max_epochs``.
    """

    def __init__(self, runs_dir: str | os.PathLike = "runs", *, module: str, class_names: Sequence[str],
                 train_loader: Iterable, val_loader: Iterable | None = None, **timelapse: Any):
        self.runs_dir, self.module, self.class_names = runs_dir, module, list(class_names)
        self.train_loader, self.val_loader = train_loader, val_loader
        self.options = timelapse
        self.timelapse: Timelapse | None = None
        self._pending: tuple | None = None  # (epoch, train, val) collected at validation, logged at epoch end
        self._flush_after_log = False  # a checkpoint was saved between the two: it covers this epoch

    @property
    def run_dir(self):
        """The run folder (None before fitting starts, and on ranks other than zero)."""
        return None if self.timelapse is None else self.timelapse.run_dir

    def on_fit_start(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        epochs = trainer.max_epochs
        if epochs is None or epochs < 1:
            raise ValueError("TimelapseCallback needs Trainer(max_epochs=N): the schedule and titles use the run's length")
        self.timelapse = Timelapse(self.runs_dir, class_names=self.class_names, epochs=epochs, signals=False,
                                   **self.options)
        self.timelapse.open()

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if self.timelapse is None or trainer.sanity_checking:
            return
        val_loader = self.val_loader
        if val_loader is None:
            loaders = trainer.val_dataloaders
            val_loader = loaders[0] if isinstance(loaders, (list, tuple)) else loaders
        device = pl_module.device
        train = features(pl_module, self.module, self.train_loader, device=device)
        val = features(pl_module, self.module, val_loader, device=device)
        self._pending = (trainer.current_epoch + 1, train, val)  # the last validation of the epoch wins

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._log_pending(trainer)

    def _log_pending(self, trainer) -> None:
        if self.timelapse is None or self._pending is None:
            return
        (epoch, train, val), self._pending = self._pending, None
        self.timelapse.log_epoch(epoch, train=train, val=val, metrics=logged_metrics(trainer))
        if self._flush_after_log:
            self._flush_after_log = False
            self.timelapse.flush()

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        """Write the epochs logged so far with the checkpoint (and, saved after this epoch's
        validation, this epoch once it is logged), so a hard kill loses nothing it covers."""
        if self.timelapse is not None:
            self.timelapse.flush()
            self._flush_after_log = self._pending is not None

    def on_fit_end(self, trainer, pl_module) -> None:
        if self.timelapse is not None:
            self._log_pending(trainer)  # training stopped inside an epoch (max_steps)
            self.timelapse.close("interrupted" if trainer.interrupted else "completed")

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if self.timelapse is not None:
            interrupted = isinstance(exception, KeyboardInterrupt)
            self.timelapse.close("interrupted" if interrupted else "failed", error=None if interrupted else exception)


# The history computes these over each whole split; a value the module logs per step is one batch's.
OWN_COLUMNS = ("train_loss", "val_loss")


def logged_metrics(trainer) -> dict[str, float]:
    """The trainer's scalar logged metrics for the history row; those named like the history's own
    losses keep a ``lightning_`` prefix instead of replacing them."""
    metrics = {}
    for key, value in trainer.callback_metrics.items():
        if getattr(value, "numel", lambda: 1)() == 1:
            metrics[f"lightning_{key}" if key in OWN_COLUMNS else key] = float(value)
    return metrics
