"""The offline digits example: a complete run folder, and the same weights with or without it."""

from __future__ import annotations

import pytest

from tests.api.conftest import assert_complete_run, load_example

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")


def test_digits_example_films_a_complete_run_and_leaves_the_weights_bit_identical(tmp_path):
    example = load_example("digits_pytorch")
    filmed = example.main(str(tmp_path / "runs"), epochs=4, method="pca", every=2, film=True)
    plain = example.main(str(tmp_path / "unused"), epochs=4, method="pca", every=2, film=False)
    assert not (tmp_path / "unused").exists()
    for (name, a), (_, b) in zip(filmed.state_dict().items(), plain.state_dict().items()):
        assert torch.equal(a, b), name
    assert_complete_run(tmp_path / "runs" / "run_001", frames=[1, 2, 4], n_classes=10)
