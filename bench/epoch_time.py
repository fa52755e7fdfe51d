"""Seconds per epoch and validation balanced accuracy: latentlapse's default run vs the reference.

The reference is the issue's baseline: "a straightforward implementation on this 2-core machine
spends ~5 s per epoch on this data (a 3-block conv net of 64/128/256 channels, a DataLoader with
a weighted sampler, and a full evaluation pass over the training set every epoch)". It is written
out below as ``ReferenceCNN`` and ``ReferenceRun``. Target: ours at <= 1/3 of its seconds per
epoch at equal or better validation balanced accuracy after the same number of epochs.

Both train on the built-in data with the default 4-class settings (batch 64, Adam lr 1e-3,
weight decay 1e-4, focal loss gamma 2, ReduceLROnPlateau on validation loss) and the same
stratified split. Ours is the library's own ``Trainer`` (oversampling to 0.7 of the majority with
fresh augmented copies each epoch, evaluation of the unaugmented training split and the
validation split every epoch, a checkpoint written every epoch); the reference draws as many
rows per epoch from the training split through a class-balanced ``WeightedRandomSampler`` and
evaluates the training and validation splits every epoch (at its training batch size, the fast
one here). Epochs alternate, ours then the reference's, so both see the same machine load;
the ratio is taken per epoch pair and its median reported.

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matmuls) on
one batch: forward for evaluation, forward + backward for training. Achieved GFLOP/s is an
epoch's counted FLOPs over its seconds, next to a float32 matmul timed in the same run.

Threads: torch's threads and OpenMP's wait policy are chosen exactly as ``latentlapse train``
chooses them (``latentlapse.core.threads``: a passive wait set before torch loads when other work
fills the cores, then per seed ``choose_for_run`` on our model; ``--threads N`` or
``OMP_NUM_THREADS`` as in ``train``), printed, and used by both models (one process, epochs
alternated). Without this the bench ran torch's default threads with OpenMP's default wait,
which on a busy machine took several times the real run's epoch (9 s against 1.3 s).

Run: ``python bench/epoch_time.py [--epochs 20] [--seeds 42 1 2] [--threads N]`` (about 3 minutes on a quiet machine).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from latentlapse.core import threads  # noqa: E402  (imports nothing heavy)

threads.prepare_environment()  # as `latentlapse train` does, before torch loads: OpenMP reads the policy once

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from _common import flops_per_sample, matmul_gflops, median_range, quiet_logs, table  # noqa: E402

from latentlapse.xray import checkpoints, training  # noqa: E402
from latentlapse.core import evaluation, rng  # noqa: E402
from latentlapse.xray.config import TrainConfig  # noqa: E402
from latentlapse.xray.experiment import build_trainer  # noqa: E402
from latentlapse.xray.losses import FocalLoss  # noqa: E402
from latentlapse.xray.prepare import prepare  # noqa: E402
from latentlapse.xray.training import Callback  # noqa: E402

TARGET_RATIO = 1 / 3
EVAL_BATCHES = (64, 128, 256, 512)


class ReferenceCNN(nn.Module):
    """Three conv blocks of 64/128/256 channels at full resolution (34.6 MFLOP per spectrum)."""

    def __init__(self, n_classes: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(1, 64, 7, padding=3), nn.BatchNorm1d(64), nn.ReLU(), nn.MaxPool1d(2),
            nn.Conv1d(64, 128, 5, padding=2), nn.BatchNorm1d(128), nn.ReLU(), nn.MaxPool1d(2),
            nn.Conv1d(128, 256, 3, padding=1), nn.BatchNorm1d(256), nn.ReLU(), nn.AdaptiveAvgPool1d(1),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(256, 64), nn.ReLU(), nn.Dropout(0.3), nn.Linear(64, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x[:, None, :]))


class ReferenceRun:
    """The baseline's training loop: DataLoader + weighted sampler, full evaluation every epoch."""

    def __init__(self, prepared, config: TrainConfig, rows_per_epoch: int, seed: int):
        from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler

        p = prepared
        X = p.dataset.X
        mean, std = X[p.split.train].mean(axis=0), X[p.split.train].std(axis=0) + 1e-12
        scale = lambda a: torch.from_numpy(((a - mean) / std).astype(np.float32))  # noqa: E731
        self.train_X, self.train_y = scale(X[p.split.train]), torch.from_numpy(p.y[p.split.train])
        self.val_X, self.val_y = scale(X[p.split.val]), torch.from_numpy(p.y[p.split.val])
        counts = np.bincount(p.y[p.split.train], minlength=p.scheme.n_classes)
        weights = torch.from_numpy(1.0 / counts[p.y[p.split.train]])
        generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)  # the reference uses plain nn.Dropout and default init (a script, not the library)
        self.model = ReferenceCNN(p.scheme.n_classes)
        self.loader = DataLoader(
            TensorDataset(self.train_X, self.train_y), batch_size=config.batch_size,
            sampler=WeightedRandomSampler(weights, rows_per_epoch, replacement=True, generator=generator),
        )
        self.batch_size = config.batch_size
        self.loss_fn = FocalLoss(np.ones(p.scheme.n_classes), config.focal_gamma)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(self.optimizer, factor=0.5, patience=5)
        self.n_classes = p.scheme.n_classes
        self.val_scores: list[dict] = []

    def epoch(self) -> None:
        self.model.train()
        for xb, yb in self.loader:
            loss = self.loss_fn(self.model(xb), yb)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        _, _ = self._evaluate(self.train_X, self.train_y)
        val_loss, val_pred = self._evaluate(self.val_X, self.val_y)
        self.scheduler.step(val_loss)
        self.val_scores.append(evaluation.scores(self.val_y.numpy(), val_pred, self.n_classes))

    @torch.no_grad()
    def _evaluate(self, X: torch.Tensor, y: torch.Tensor) -> tuple[float, np.ndarray]:
        from torch.utils.data import DataLoader, TensorDataset

        self.model.eval()
        logits = torch.cat([self.model(xb) for xb, _ in DataLoader(TensorDataset(X, y), batch_size=self.batch_size)])
        return float(self.loss_fn(logits, y)), logits.argmax(dim=1).numpy()


class Alternate(Callback):
    """After each of our epochs, run one reference epoch; time both with the wall clock."""

    def __init__(self, reference: ReferenceRun):
        self.reference = reference
        self.ours: list[float] = []
        self.theirs: list[float] = []
        self._mark = 0.0

    def on_train_start(self, trainer) -> None:
        self._mark = time.perf_counter()

    def on_epoch_end(self, trainer, result) -> None:
        now = time.perf_counter()
        self.ours.append(now - self._mark)  # our train pass + evaluation + schedule + history + checkpoint
        self.reference.epoch()
        self._mark = time.perf_counter()
        self.theirs.append(self._mark - now)


def eval_batch_times(trainer, repeats: int = 5) -> dict[int, float]:
    """Median seconds of one evaluation pass (training + validation splits) per batch size,
    the sizes alternated within each repeat."""
    X = torch.cat([trainer._tensors["eval_X"], trainer._tensors["val_X"]])
    y = torch.cat([trainer._tensors["eval_y"], trainer._tensors["val_y"]])
    saved = training.EVAL_BATCH
    times: dict[int, list[float]] = {b: [] for b in EVAL_BATCHES}
    try:
        for _ in range(repeats):
            for batch in EVAL_BATCHES:
                training.EVAL_BATCH = batch
                start = time.perf_counter()
                trainer._predict(X, y)
                times[batch].append(time.perf_counter() - start)
    finally:
        training.EVAL_BATCH = saved
    return {b: statistics.median(t) for b, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20, help="epochs per run (default 20)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2], help="seeds (split, init, sampling)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="torch threads, as train's --threads (default: chosen as train chooses them)")
    args = parser.parse_args()
    quiet_logs()

    yard_start = matmul_gflops()
    print(f"machine: torch {torch.__version__}, {torch.get_num_threads()} threads by default; "
          f"float32 1024^3 matmul {yard_start:.0f} GFLOP/s (start of run)")
    rows = []
    ratios: list[float] = []
    flops = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            config = TrainConfig(classes=4, epochs=args.epochs, seed=seed)
            prepared = prepare(config)
            ckpt = Path(tmp) / f"seed{seed}"
            ckpt.mkdir()
            save = lambda trainer, name: checkpoints.save(  # noqa: E731
                checkpoints.checkpoint_path(ckpt, name), {"trainer": trainer.state_dict()})
            trainer = build_trainer(prepared, save_checkpoint=save)
            choice = threads.choose_for_run(args.threads, trainer.model, prepared.dataset.n_features,
                                            prepared.config.batch_size)
            torch.set_num_threads(choice.intra_op)  # as the session does; the reference runs with the same
            print(f"seed {seed}: {threads.describe(choice)}", flush=True)
            reference = ReferenceRun(prepared, prepared.config, rows_per_epoch=len(prepared.oversampled.y),
                                     seed=rng.int_seed(seed, "init"))
            if not flops:
                batch = torch.from_numpy(prepared.dataset.X[prepared.split.train][: config.batch_size])
                for name, model in (("ours", trainer.model), ("reference", reference.model)):
                    flops[name] = (flops_per_sample(model, batch), flops_per_sample(model, batch, backward=True))
                eval_times = eval_batch_times(trainer)
            alternate = Alternate(reference)
            trainer.callbacks.append(alternate)
            trainer.fit()
            n_train, n_eval = len(prepared.oversampled.y), len(prepared.split.train) + len(prepared.split.val)
            ours_s, theirs_s = statistics.median(alternate.ours), statistics.median(alternate.theirs)
            ratios.extend(o / t for o, t in zip(alternate.ours, alternate.theirs))
            work = {name: (flops[name][1] * n_train + flops[name][0] * n_eval) for name in flops}
            ours_hist = [r["val_balanced_acc"] for r in trainer.history.rows]
            theirs_hist = [s["balanced_acc"] for s in reference.val_scores]
            for name, seconds, hist in (("ours", ours_s, ours_hist), ("reference", theirs_s, theirs_hist)):
                rows.append([seed, name, f"{seconds:.3f}", f"{work[name] / seconds / 1e9:.0f}",
                             f"{hist[-1]:.3f}", f"{np.mean(hist[-5:]):.3f}", f"{max(hist):.3f}"])
            print(f"seed {seed}: {n_train} rows trained per epoch, {n_eval} evaluated; "
                  f"per-epoch ratio ours/reference {median_range([o / t for o, t in zip(alternate.ours, alternate.theirs)])}",
                  flush=True)
    yard_end = matmul_gflops()

    print()
    print(table(["model", "MFLOP/spectrum fwd", "MFLOP/spectrum train (fwd+bwd)"],
                [[name, f"{f[0] / 1e6:.2f}", f"{f[1] / 1e6:.2f}"] for name, f in flops.items()]))
    print()
    print(table(["seed", "run", "s/epoch (median)", "GFLOP/s achieved", f"val bal.acc @ epoch {args.epochs}",
                 "mean of last 5", f"best <= {args.epochs}"], rows))
    print()
    print("evaluation pass over training + validation splits, median s by EVAL_BATCH: "
          + ", ".join(f"{b}: {t:.3f}" for b, t in eval_times.items())
          + f"  (training.EVAL_BATCH = {training.EVAL_BATCH})")
    print(f"matmul yardstick: {yard_start:.0f} GFLOP/s at start, {yard_end:.0f} at end")
    accuracy = {(run, column): statistics.median(float(r[column]) for r in rows if r[1] == run)
                for run in ("ours", "reference") for column in (4, 5, 6)}
    ratio = statistics.median(ratios)
    not_worse = all(accuracy["ours", column] >= accuracy["reference", column] for column in (4, 5, 6))
    print(f"ours / reference seconds per epoch: median {ratio:.3f} over {len(ratios)} epoch pairs "
          f"(range {min(ratios):.3f}-{max(ratios):.3f}), {1 / ratio:.1f}x faster")
    print(f"val balanced accuracy, medians over seeds (at epoch {args.epochs} / mean of last 5 / best): ours "
          + " / ".join(f"{accuracy['ours', c]:.3f}" for c in (4, 5, 6)) + ", reference "
          + " / ".join(f"{accuracy['reference', c]:.3f}" for c in (4, 5, 6)))
    print(f"target: <= {TARGET_RATIO:.3f} of the reference's seconds at equal or better balanced accuracy: "
          f"{'met' if ratio <= TARGET_RATIO and not_worse else 'MISSED'}")


if __name__ == "__main__":
    main()
