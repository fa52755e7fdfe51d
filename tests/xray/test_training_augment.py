"""Fresh augmentation every epoch: deterministic, resumable bit for bit, the caller's arrays untouched."""

import io

import numpy as np
import pytest
import torch

from latentlapse.core import rng
from latentlapse.xray.config import TrainConfig
from latentlapse.xray.data.balance import stratified_split
from latentlapse.xray.data.simulate import simulate_dataset
from latentlapse.xray.data.taxonomy import apply_scheme
from latentlapse.xray.experiment import build_trainer
from latentlapse.xray.prepare import prepare_split
from latentlapse.xray.training import FitData, FitOptions, Trainer


@pytest.fixture(scope="module")
def labelled():
    dataset, y = apply_scheme(simulate_dataset(n=90, seed=5), 4)
    return dataset, y


def _prepared(labelled, config):
    dataset, y = labelled
    split = stratified_split(y, config.val_split, rng.generator(config.seed, "split"))
    return prepare_split(config, dataset, y, split)


def _config(epochs, target=1.0):
    return TrainConfig(classes=4, epochs=epochs, oversample_target=target, batch_size=32, seed=7)


def _round_trip(state):
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_rows_are_redrawn_each_epoch_and_the_callers_array_stays(labelled):
    config = _config(epochs=3)
    prepared = _prepared(labelled, config)
    before = prepared.oversampled.X.copy()
    n_orig = len(prepared.split.train)
    assert len(before) > n_orig  # there are copies
    trainer = build_trainer(prepared)
    seen = []
    for epoch in (1, 2, 3):
        trainer._train_one_epoch(epoch)
        seen.append(trainer._tensors["train_X"].numpy().copy())
    assert np.array_equal(seen[0], before)  # epoch 1 trains on the oversampling's own rows
    originals = prepared.dataset.X[prepared.split.train]
    assert np.array_equal(seen[0][:n_orig], originals)
    for a, b in ((seen[0], seen[1]), (seen[1], seen[2])):
        assert not np.any(np.all(a == b, axis=1))  # every row, original or copy, is drawn afresh
    assert np.allclose(seen[2].sum(axis=1), 1.0, atol=1e-4)
    assert np.array_equal(prepared.oversampled.X, before)  # the caller's array is never written


def test_resumed_training_equals_an_uninterrupted_run(labelled):
    straight = build_trainer(_prepared(labelled, _config(epochs=4)))
    straight.fit()

    first = build_trainer(_prepared(labelled, _config(epochs=2)))
    first.fit()
    state = _round_trip(first.state_dict())
    resumed = build_trainer(_prepared(labelled, _config(epochs=4)))
    resumed.load_state_dict(state)
    resumed.fit()

    for (name, a), (_, b) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), name
    assert torch.equal(straight._tensors["train_X"], resumed._tensors["train_X"])
    assert straight.augment_generator.bit_generator.state == resumed.augment_generator.bit_generator.state


def test_without_oversampling_the_originals_are_still_redrawn(labelled):
    config = _config(epochs=2, target=0.0)
    prepared = _prepared(labelled, config)
    assert prepared.oversampled.augmenter.origin.size == 0
    trainer = build_trainer(prepared)
    trainer.fit()
    rows = trainer._tensors["train_X"].numpy()
    assert rows.shape == prepared.oversampled.X.shape
    assert not np.any(np.all(rows == prepared.oversampled.X, axis=1))


def test_an_augmenter_without_a_generator_is_refused(labelled):
    config = _config(epochs=1)
    p = _prepared(labelled, config)
    data = FitData(p.oversampled.X, p.oversampled.y, p.dataset.X[p.split.train], p.y[p.split.train],
                   p.dataset.X[p.split.val], p.y[p.split.val], augmenter=p.oversampled.augmenter)
    model = torch.nn.Linear(380, 4)
    model.set_dropout_generator = lambda generator: None
    with pytest.raises(ValueError, match="needs an augment_generator"):
        Trainer(model, torch.nn.CrossEntropyLoss(), data, FitOptions(epochs=1, batch_size=8, n_classes=4, class_names=("a", "b", "c", "d")),
                lr=1e-3, weight_decay=0.0, device=torch.device("cpu"),
                loader_generator=torch.Generator(), dropout_generator=torch.Generator())
