"""Training without a run folder: a ready trainer from a config, and one cross-validation fold.

``build_trainer`` turns a config and its :class:`~latentlapse.xray.prepare.Prepared` data into a
:class:`~latentlapse.xray.training.Trainer` with every random stream wired from the seed.
``fit_on_split`` trains on given rows and scores held-out rows; the epoch it keeps is chosen on
an inner validation split of the training rows, so the held-out rows never steer training.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from latentlapse.xray import calibration
from latentlapse.core import evaluation, rng
from latentlapse.xray.config import TrainConfig
from latentlapse.xray.data.balance import Split, stratified_split
from latentlapse.xray.data.dataset import Dataset
from latentlapse.xray.data.schema import FeatureSchema
from latentlapse.xray.operating import both_points
from latentlapse.xray.prepare import Prepared, prepare_split

log = logging.getLogger(__name__)


def build_trainer(
    prepared: Prepared,
    device: str = "cpu",
    *,
    save_checkpoint: Callable | None = None,
    write_history: Callable | None = None,
    callbacks: Sequence = (),
    augment_each_epoch: bool = True,
    world=None,
    log_epochs: bool = True,
):
    """A :class:`Trainer` for ``prepared`` as its config says (``prepared.config``: the run's
    config with the model's defaults filled in): model and scaling fitted on the training split, the
    (focal) loss, optimiser and schedule, and the init/loader/dropout/oversample generators of the seed.

    ``augment_each_epoch=False`` trains on the oversampling's rows unchanged every epoch (the
    earlier design, kept for comparisons in ``bench/imbalance.py``). ``world`` (a
    :class:`~latentlapse.xray.distributed.World`) trains this rank's shard under DDP.
    """
    import torch

    from latentlapse.xray.losses import FocalLoss
    from latentlapse.xray.model import build_model
    from latentlapse.xray.training import FitData, FitOptions, Trainer

    p, c = prepared, prepared.config
    data = p.dataset
    init = torch.Generator().manual_seed(rng.int_seed(c.seed, "init"))
    model = build_model(p.model_kind, data.n_features, p.scheme.n_classes, init, **p.model_options)
    if p.model_options:  # the ensemble scales its hardness ratios and colours too, on the training split
        model.fit_scaling(data.X[p.split.train], None if p.schema is None else np.asarray(p.schema.log10, dtype=bool))
    elif p.schema is not None:  # the catalogue schema's log10 and scaling, learned on the training split
        model.scaler.set_statistics(p.schema.log10, p.schema.mean, p.schema.std)
    else:
        model.scaler.fit(data.X[p.split.train])
    fit_data = FitData(
        train_X=p.oversampled.X, train_y=p.oversampled.y,
        eval_X=data.X[p.split.train], eval_y=p.y[p.split.train],
        val_X=data.X[p.split.val], val_y=p.y[p.split.val],
        augmenter=p.oversampled.augmenter if augment_each_epoch else None,
    )
    options = FitOptions(
        epochs=c.epochs, batch_size=c.batch_size, n_classes=p.scheme.n_classes, class_names=p.scheme.names,
        sampler=c.sampler, patience=c.patience, sample_weights=p.sample_weights,
        select_by="last" if c.schedule == "onecycle" else "val_loss" if p.model_kind == "mlp" else "val_balanced_acc",
        log_epochs=log_epochs,
    )
    torch_device = torch.device(device)
    return Trainer(
        model, FocalLoss(p.alpha, c.focal_gamma), fit_data, options,
        lr=c.lr, weight_decay=c.weight_decay, device=torch_device, optimizer=c.optimizer, schedule=c.schedule,
        loader_generator=torch.Generator().manual_seed(rng.int_seed(c.seed, "loader")),
        dropout_generator=torch.Generator(device=torch_device).manual_seed(rng.int_seed(c.seed, "dropout")),
        augment_generator=rng.generator(c.seed, "oversample"),
        save_checkpoint=save_checkpoint, write_history=write_history, callbacks=callbacks, world=world,
    )


def refit(prepared: Prepared, device: str = "cpu"):
    """``prepared``'s model trained again from its initial weights on every labelled row
    (``--refit``): the data prepared anew with all of them as the training split
    (:func:`~latentlapse.xray.prepare.for_refit`), the same seeds, settings and epochs, and the
    last epoch's weights kept, so nothing is chosen on the rows it now trains on. Returns the
    finished :class:`Trainer` (it logs no line per epoch) and the data it trained on."""
    from latentlapse.xray.prepare import for_refit

    again = for_refit(prepared)
    trainer = build_trainer(again, device, log_epochs=False)
    trainer.fit()
    return trainer, again


@dataclass(frozen=True)
class FoldResult:
    """Scores of the held-out rows (``evaluation.report``), their class probabilities, logits and
    calibrated probabilities, the epoch whose weights produced them, and every row's model inputs
    (for catalogues, made by the schema fitted on the training rows) — for baselines compared on
    the same inputs."""

    metrics: dict
    proba: np.ndarray
    best_epoch: int
    epochs_run: int
    inputs: Dataset
    logits: np.ndarray
    calibrated: np.ndarray
    schema: FeatureSchema | None = None
    threads: object = None  # the ThreadChoice the fold trained with
    operating_points: dict = field(default_factory=dict)
    refit: bool = False  # the scored model was trained again on all training rows (--refit)


def fit_on_split(
    config: TrainConfig, labelled: Dataset, y: np.ndarray, train_idx: np.ndarray, test_idx: np.ndarray,
    device: str = "cpu", thread_choice=None,
) -> FoldResult:
    """Train on rows ``train_idx`` of ``labelled`` and score rows ``test_idx``.

    Everything fitted — a catalogue's imputation, indicators, log10 choice and scaling, the
    oversampling — sees only the training rows (the inner training part of them), through the
    same :func:`~latentlapse.xray.prepare.prepare_split` as a run.

    Parameters
    ----------
    config : the run settings (epochs, oversampling, focal loss, seed, ...); ``val_split`` of the
        training rows is held back, stratified, to choose the best epoch, drive the LR schedule and
        fit the calibration; under ``refit`` the model that scores ``test_idx`` is then trained
        again on all of ``train_idx`` (:func:`refit`), as a run's best.pt is.
    labelled, y : the data set after the class scheme (``taxonomy.apply_scheme``) and its classes.
    train_idx, test_idx : disjoint row indices, e.g. one fold of ``StratifiedKFold``.
    thread_choice : the torch threads to train with (a ``ThreadChoice``); None: chosen here.
    """
    train_idx, test_idx = np.asarray(train_idx), np.asarray(test_idx)
    inner = stratified_split(y[train_idx], config.val_split, rng.generator(config.seed, "split"))
    prepared = prepare_split(config, labelled, y, Split(train=train_idx[inner.train], val=train_idx[inner.val]))
    best: dict = {}

    def keep_best(trainer, name: str) -> None:
        if name == "best":
            best["model"] = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}

    import torch

    from latentlapse.core import threads

    trainer = build_trainer(prepared, device, save_checkpoint=keep_best)
    # threads chosen as a run chooses them (one for a small model on a busy machine), then restored;
    # a cross-validation chooses once, on its first fold
    choice = thread_choice or threads.choose_for_run(config.threads, trainer.model, prepared.dataset.n_features,
                                                      config.batch_size)
    before = torch.get_num_threads()
    torch.set_num_threads(choice.intra_op)
    try:
        trainer.fit()
        trainer.model.load_state_dict(best["model"])
        val_logits = trainer.predict_logits(prepared.dataset.X[prepared.split.val])
        scored = prepared
        if prepared.config.refit:  # the calibration stays the one fitted above, as in a run
            log.info("refit on all %d training rows of the fold (%d epochs)", len(train_idx), prepared.config.epochs)
            trainer, scored = refit(prepared, device)
        logits = trainer.predict_logits(scored.dataset.X[test_idx])  # every row through the scored model's schema
    finally:
        torch.set_num_threads(before)
    proba = calibration.softmax(logits)
    # calibration, like the epoch, is fitted on the inner validation rows, never on the held-out ones
    fitted = calibration.fit(val_logits, y[prepared.split.val])
    trained = scored.split.train
    train_priors = np.bincount(y[trained], minlength=prepared.scheme.n_classes) / len(trained)
    points = {name: point.proba(logits) for name, point in both_points(fitted, train_priors, prepared.scheme.names).items()}
    return FoldResult(
        metrics=evaluation.report(y[test_idx], proba.argmax(axis=1), prepared.scheme.names),
        proba=proba, best_epoch=trainer.best_epoch, epochs_run=trainer.epoch,
        schema=scored.schema, inputs=scored.dataset,
        logits=logits, calibrated=fitted.apply(logits), operating_points=points, threads=choice,
        refit=bool(prepared.config.refit),
    )
