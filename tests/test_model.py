import numpy as np
import torch

from latentlapse.model import CatalogMLP, SpectrumCNN, build_model


def test_forward_is_head_of_embed_in_eval_mode():
    model = build_model("cnn", 380, 4, torch.Generator().manual_seed(0)).eval()
    x = torch.rand(8, 380)
    features = model.embed(x)
    assert isinstance(model, SpectrumCNN)
    assert features.shape == (8, 64)
    assert torch.allclose(model(x), model.head(features))
    f, z = model.features_and_logits(x)
    assert torch.allclose(f, features) and torch.allclose(z, model(x))


def test_building_and_training_never_touch_the_global_rng():
    before = torch.get_rng_state()
    generator = torch.Generator().manual_seed(1)
    model = build_model("cnn", 380, 4, generator)
    model.set_dropout_generator(torch.Generator().manual_seed(2))
    model.train()
    model(torch.rand(4, 380, generator=generator)).sum().backward()
    assert torch.equal(before, torch.get_rng_state())


def test_same_generator_seed_gives_same_weights_and_dropout_masks():
    def run(seed):
        model = build_model("mlp", 12, 3, torch.Generator().manual_seed(seed))
        model.set_dropout_generator(torch.Generator().manual_seed(seed))
        model.train()
        return model(torch.ones(5, 12))

    assert torch.equal(run(3), run(3))
    assert not torch.equal(run(3), run(4))


def test_input_scaler_standardises_and_logs_selected_columns():
    model = build_model("mlp", 2, 2, torch.Generator().manual_seed(0))
    assert isinstance(model, CatalogMLP)
    X = np.array([[1e-15, 1.0], [1e-13, 3.0]], dtype=np.float32)
    model.scaler.fit(X, np.array([True, False]))
    scaled = model.scaler(torch.from_numpy(X))
    assert torch.allclose(scaled, torch.tensor([[-1.0, -1.0], [1.0, 1.0]]), atol=1e-4)


def test_model_state_round_trips_through_state_dict():
    a = build_model("cnn", 380, 4, torch.Generator().manual_seed(0)).eval()
    b = build_model("cnn", 380, 4, torch.Generator().manual_seed(9)).eval()
    b.load_state_dict(a.state_dict())
    x = torch.rand(3, 380)
    assert torch.equal(a(x), b(x))
