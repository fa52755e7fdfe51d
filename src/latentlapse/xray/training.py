"""The training loop: Adam (or AdamW), the learning rate reduced on plateaus of the validation
loss (or a one-cycle schedule stepped every batch), evaluation every epoch.

It reads top to bottom: re-draw the augmented training rows, shuffle, step through batches,
evaluate the unaugmented training split and the validation split in eval mode, step the
schedule, save checkpoints, call the callbacks.
Side effects beyond checkpoints and ``history.csv`` (pictures, reports) hang off callbacks.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import torch

from latentlapse.core import evaluation
from latentlapse.core.errors import RunFailed
from latentlapse.xray.loop_types import Callback, EpochResult, FitData, FitOptions, History

if TYPE_CHECKING:
    from latentlapse.xray.distributed import World

log = logging.getLogger(__name__)

# Evaluation batch: 64-128 keep a batch's activations in cache. An eval pass over 2730 spectra on
# the 2-core machine: 0.05 s at 64 or 128 always; 256 and 512 matched that on a quiet machine but
# took 0.16 s and 0.76 s when other processes shared the cache (bench/epoch_time.py prints it).
EVAL_BATCH = 128
LR_FACTOR = 0.5
LR_PATIENCE = 5


class TrainingStep(torch.nn.Module):
    """The loss of one batch as a module, so that under torchrun DistributedDataParallel wraps the
    whole step (an ensemble's loss is its members' own losses, not the loss of its output)."""

    def __init__(self, model: torch.nn.Module, loss_fn: torch.nn.Module):
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.model.training_loss(self.loss_fn, x, y)


class Trainer:
    """Holds everything a training run mutates, so it can be checkpointed and resumed exactly."""

    def __init__(
        self,
        model: torch.nn.Module,
        loss_fn: torch.nn.Module,
        data: FitData,
        options: FitOptions,
        *,
        lr: float,
        weight_decay: float,
        device: torch.device,
        optimizer: str = "adam",
        schedule: str = "plateau",
        loader_generator: torch.Generator,
        dropout_generator: torch.Generator,
        augment_generator: np.random.Generator | None = None,
        save_checkpoint: Callable[["Trainer", str], None] | None = None,
        write_history: Callable[[History], None] | None = None,
        callbacks: Sequence[Callback] = (),
        world: "World | None" = None,
    ):
        self.model = model.to(device)
        self.loss_fn = loss_fn.to(device)
        self.options = options
        self.device = device
        # adamw: weight decay decoupled from the adaptive step (Loshchilov & Hutter 2019)
        optimizer_class = torch.optim.AdamW if optimizer == "adamw" else torch.optim.Adam
        self.optimizer = optimizer_class(model.parameters(), lr=lr, weight_decay=weight_decay)
        self.schedule = schedule
        if schedule == "onecycle":  # Smith & Topin 2019: warm up to lr, anneal to ~0 by the last batch
            steps = _steps_per_epoch(len(data.train_X), options.batch_size, world)
            self.scheduler = torch.optim.lr_scheduler.OneCycleLR(self.optimizer, max_lr=lr,
                                                                 total_steps=options.epochs * steps)
        else:
            self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.optimizer, mode="min", factor=LR_FACTOR, patience=LR_PATIENCE
            )
        self.loader_generator = loader_generator
        self.dropout_generator = dropout_generator
        model.set_dropout_generator(dropout_generator)
        self.augmenter = data.augmenter
        if self.augmenter is not None and augment_generator is None:
            raise ValueError("FitData.augmenter is set, so the trainer needs an augment_generator to re-draw the rows")
        self.augment_generator = augment_generator
        self.save_checkpoint = save_checkpoint
        self.write_history = write_history
        self.callbacks = list(callbacks)
        # under torchrun: DDP for the training steps, each rank its shard (see latentlapse.xray.distributed)
        self.world = world
        step = TrainingStep(self.model, self.loss_fn)
        self._train_step = step if world is None else world.wrap(step)
        self._dropout_seed = dropout_generator.initial_seed()
        self.epoch = 0
        self.best_epoch = 0
        self.best_score = -np.inf
        self.epochs_without_improvement = 0
        self.history = History()
        self.callback_seconds = 0.0
        self.loop_seconds = 0.0
        self._tensors = {
            name: torch.as_tensor(getattr(data, name)).to(device)
            for name in ("train_X", "train_y", "eval_X", "eval_y", "val_X", "val_y")
        }
        if self.augmenter is not None:  # re-drawn in place: never write into the caller's array
            self._tensors["train_X"] = self._tensors["train_X"].clone()
        self._eval_y = np.asarray(data.eval_y)
        self._val_y = np.asarray(data.val_y)
        self._weights = None if options.sample_weights is None else torch.as_tensor(options.sample_weights)

    # ------------------------------------------------------------------ state for checkpoints
    def state_dict(self) -> dict[str, object]:
        return {
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "loader_rng": self.loader_generator.get_state(),
            "dropout_rng": self.dropout_generator.get_state(),
            "augment_rng": None if self.augment_generator is None else self.augment_generator.bit_generator.state,
            "best_epoch": self.best_epoch,
            "best_score": self.best_score,
            "epochs_without_improvement": self.epochs_without_improvement,
            "history": list(self.history.rows),
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.loader_generator.set_state(state["loader_rng"])
        self.dropout_generator.set_state(state["dropout_rng"])
        if self.augment_generator is not None and state.get("augment_rng") is not None:
            self.augment_generator.bit_generator.state = state["augment_rng"]
        self.epoch = int(state["epoch"])
        self.best_epoch = int(state["best_epoch"])
        self.best_score = float(state["best_score"])
        self.epochs_without_improvement = int(state["epochs_without_improvement"])
        self.history = History(rows=[dict(row) for row in state["history"]])

    # ------------------------------------------------------------------------------- the loop
    def fit(self) -> None:
        """Train from the epoch after ``self.epoch`` to the last (or until early stopping).
        Exceptions (interrupts, NaN loss) propagate with checkpoints of the last completed epoch
        on disk."""
        from tqdm.auto import tqdm

        opts = self.options
        for callback in self.callbacks:
            callback.on_train_start(self)
        bar = tqdm(total=opts.epochs, initial=self.epoch, unit="epoch", desc="training" if opts.log_epochs else "refit",
                   leave=False, dynamic_ncols=True, disable=None)
        try:
            while self.epoch < opts.epochs:
                started = time.perf_counter()
                epoch = self.epoch + 1
                train_loss = self._train_one_epoch(epoch)
                result = self._evaluate(epoch, train_loss)
                if self.schedule == "plateau":
                    self.scheduler.step(result.scores["val_loss"])
                self.epoch = epoch
                improved, stop = self._track_best(result)
                result.is_last = stop or epoch == opts.epochs
                result.scores["seconds"] = time.perf_counter() - started
                self.history.rows.append(self._history_row(result))
                if self.write_history is not None:
                    self.write_history(self.history)
                if self.save_checkpoint is not None:
                    # best before last: if a save is cut short, last.pt (what --resume reads) still
                    # names the epoch before, and redoing this epoch rewrites best.pt identically
                    if improved:
                        self.save_checkpoint(self, "best")
                    self.save_checkpoint(self, "last")
                self.loop_seconds += time.perf_counter() - started
                callback_started = time.perf_counter()
                for callback in self.callbacks:
                    callback.on_epoch_end(self, result)
                spent = time.perf_counter() - callback_started
                self.callback_seconds += spent
                self.loop_seconds += spent
                if opts.log_epochs:
                    log.info(_epoch_line(result, opts.epochs))
                bar.update(1)
                if stop:
                    log.info("early stopping: %s has not improved for %d epochs (best %.4f at epoch %d)",
                             selection_label(opts.select_by), opts.patience, abs(self.best_score), self.best_epoch)
                    break
        finally:
            bar.close()

    def evaluate_last_epoch(self) -> EpochResult:
        """The evaluation pass of the current model, as at the end of epoch ``self.epoch``, with
        the scores recorded then: for a resumed run to draw a frame its interruption cut off.
        Evaluation mode and no random streams, so training is not changed by it. Under torchrun
        only rank 0 (the visualiser's) calls it, so it evaluates here alone, without the gather."""
        result = self._evaluate(self.epoch, math.nan, alone=True)
        if self.history.rows:
            result.scores = {k: v for k, v in self.history.rows[-1].items() if k != "epoch"}
        result.is_last = self.epoch == self.options.epochs
        return result

    def _train_one_epoch(self, epoch: int) -> float:
        model, opts = self.model, self.options
        model.train()
        X, y = self._tensors["train_X"], self._tensors["train_y"]
        n = X.shape[0]
        if self.augmenter is not None and epoch > 1:
            # New noise on the same sources each epoch, so neither the rare classes' copies nor
            # the originals are memorised; epoch 1 trains on the rows the oversampling made.
            X.copy_(torch.from_numpy(self.augmenter.epoch_rows(self.augment_generator)))
        if opts.sampler == "balanced":
            order = torch.multinomial(self._weights, n, replacement=True, generator=self.loader_generator)
        else:
            order = torch.randperm(n, generator=self.loader_generator)
        order = order.to(self.device)
        batch_size = opts.batch_size
        if self.world is not None:
            order, batch_size = self._shard(order, epoch)
        total, seen = 0.0, 0
        for batch, start in enumerate(range(0, len(order), batch_size), start=1):
            index = order[start:start + batch_size]
            if index.numel() < 2 and n >= 2:
                continue  # batch norm cannot train on a single row
            loss = self._train_step(X[index], y[index])
            if not torch.isfinite(loss):
                kept = f"the checkpoint of epoch {epoch - 1} is kept" if epoch > 1 else "no checkpoint was written"
                raise RunFailed(
                    f"the loss became {loss.item()} at epoch {epoch}, batch {batch}; {kept}; check the data for "
                    f"extreme values, or try a lower --lr"
                )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            if self.schedule == "onecycle":
                self.scheduler.step()
            total += loss.item() * index.numel()
            seen += index.numel()
        if self.world is not None:
            total, seen = self.world.sum(total, seen)
        return total / max(seen, 1)

    def _shard(self, order: torch.Tensor, epoch: int) -> tuple[torch.Tensor, int]:
        """This rank's rows of the epoch's shared order and its share of the batch; its dropout
        masks re-seeded from (seed, rank, epoch) so ranks differ and a resume repeats them."""
        from latentlapse.xray.distributed import epoch_seed, shard_order

        world = self.world
        self.dropout_generator.manual_seed(epoch_seed(self._dropout_seed, world.rank, epoch))
        return shard_order(order, world.rank, world.size), world.per_rank_batch(self.options.batch_size)

    def predict_logits(self, X: np.ndarray) -> np.ndarray:
        """Logits of rows ``X`` with the current weights, in eval mode (calibration fits on them)."""
        tensor = torch.as_tensor(X).to(self.device)
        return self._predict(tensor, tensor.new_zeros(0, dtype=torch.long))[3]

    @torch.inference_mode()
    def _predict(self, X: torch.Tensor, y: torch.Tensor) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
        """Features, class probabilities, mean loss and logits of ``X`` in eval mode."""
        self.model.eval()
        features, logits = [], []
        for start in range(0, X.shape[0], EVAL_BATCH):
            f, z = self.model.features_and_logits(X[start:start + EVAL_BATCH])
            features.append(f)
            logits.append(z)
        f = torch.cat(features)
        z = torch.cat(logits)
        loss = float(self.loss_fn(z, y)) if len(y) else float("nan")
        return f.cpu().numpy(), torch.softmax(z, dim=1).cpu().numpy(), loss, z.cpu().numpy()

    def _predict_gathered(self, X: torch.Tensor, y: torch.Tensor) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
        """:meth:`_predict` split across the ranks: each scores a contiguous slice with rank 0's
        buffers, and the slices are gathered in order, so every row counts exactly once."""
        from latentlapse.xray.distributed import contiguous_slice

        world = self.world
        world.sync_buffers(self.model)
        part = contiguous_slice(X.shape[0], world.rank, world.size)
        features, _, _, logits = self._predict(X[part], y[:0])
        features, logits = world.gather_rows(features), world.gather_rows(logits)
        z = torch.from_numpy(logits)
        with torch.inference_mode():
            loss = float(self.loss_fn(z.to(self.device), y)) if len(y) else float("nan")
        return features, torch.softmax(z, dim=1).numpy(), loss, logits

    def _evaluate(self, epoch: int, train_loss: float, alone: bool = False) -> EpochResult:
        opts = self.options
        t = self._tensors
        predict = self._predict if self.world is None or alone else self._predict_gathered
        train_features, train_proba, train_eval_loss, train_logits = predict(t["eval_X"], t["eval_y"])
        val_features, val_proba, val_loss, val_logits = predict(t["val_X"], t["val_y"])
        train_pred = train_proba.argmax(axis=1)
        val_pred = val_proba.argmax(axis=1)
        train_scores = evaluation.scores(self._eval_y, train_pred, opts.n_classes)
        val_scores = evaluation.scores(self._val_y, val_pred, opts.n_classes)
        recall = evaluation.per_class(evaluation.confusion(self._val_y, val_pred, opts.n_classes))["recall"]
        scores = {
            "train_loss": train_loss,
            "train_eval_loss": train_eval_loss,
            "train_acc": train_scores["acc"],
            "train_balanced_acc": train_scores["balanced_acc"],
            "val_loss": val_loss,
            "val_acc": val_scores["acc"],
            "val_balanced_acc": val_scores["balanced_acc"],
            "val_macro_f1": val_scores["macro_f1"],
            "lr": float(self.optimizer.param_groups[0]["lr"]),
        }
        for name, value in zip(_safe_names(opts.class_names), recall):
            scores[f"val_recall_{name}"] = float(value)
        return EpochResult(
            epoch=epoch, total_epochs=opts.epochs, scores=scores,
            train_features=train_features, train_pred=train_pred,
            val_features=val_features, val_pred=val_pred, val_proba=val_proba, is_last=False,
            train_proba=train_proba, train_logits=train_logits, val_logits=val_logits,
        )

    def _track_best(self, result: EpochResult) -> tuple[bool, bool]:
        """(improved, stop): improvement of the selection score (validation balanced accuracy, or
        the negated validation loss: smooth, so a handful of minority sources cannot swing it),
        and patience used up. ``last`` keeps every epoch (best.pt is the last one): the one-cycle
        schedule ends at a learning rate near zero, so there is no noisy pick among epochs."""
        key = self.options.select_by
        if key == "last":
            self.best_score, self.best_epoch = -result.scores["val_loss"], result.epoch
            return True, False
        score = -result.scores[key] if key == "val_loss" else result.scores[key]
        if score > self.best_score:
            self.best_score, self.best_epoch = score, result.epoch
            self.epochs_without_improvement = 0
            return True, False
        self.epochs_without_improvement += 1
        patience = self.options.patience
        return False, patience is not None and self.epochs_without_improvement >= patience

    @staticmethod
    def _history_row(result: EpochResult) -> dict[str, float]:
        return {"epoch": result.epoch, **result.scores}


def selection_label(select_by: str) -> str:
    """``validation balanced accuracy``, ``validation loss`` or the one-cycle schedule's last epoch, for messages
    and reports."""
    return {"val_loss": "validation loss", "last": "the one-cycle schedule: its last epoch"}.get(
        select_by, "validation balanced accuracy")


def _steps_per_epoch(n_rows: int, batch_size: int, world) -> int:
    """Optimisation steps in one epoch (under torchrun: of one rank's shard), for the one-cycle
    schedule's length; a last batch of one row is skipped by the loop, and steps fewer."""
    if world is None:
        return max(math.ceil(n_rows / batch_size), 1)
    return max(math.ceil(math.ceil(n_rows / world.size) / world.per_rank_batch(batch_size)), 1)


def _safe_names(names: Sequence[str]) -> list[str]:
    from latentlapse.xray.data.taxonomy import safe_name

    return [safe_name(name) for name in names]


def _epoch_line(result: EpochResult, total: int) -> str:
    s = result.scores
    width = len(str(total))
    return (
        f"epoch {result.epoch:>{width}}/{total}  train loss {s['train_loss']:.4f} acc {s['train_acc']:.4f}  "
        f"val loss {s['val_loss']:.4f} acc {s['val_acc']:.4f} bal.acc {s['val_balanced_acc']:.4f} "
        f"macro-F1 {s['val_macro_f1']:.4f}  lr {s['lr']:.2g}  {s['seconds']:.2f}s"
    )


def history_path(run_dir: str | Path) -> Path:
    from latentlapse.core.runs import HISTORY

    return Path(run_dir) / HISTORY
