import numpy as np
import torch

from latentlapse.xray.model import CatalogMLP, SpectrumCNN, build_model


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


def test_catalog_ensemble_averages_member_probabilities_and_embeds_member_one():
    from latentlapse.xray.model import CatalogEnsemble, derived_pairs

    names = ("Fs", "Fm", "Fh", "Fb", "Gmag", "BPmag", "RPmag", "Plx", "Fs_missing")
    derived = derived_pairs(names)
    assert derived == {"ratios": [[0, 1], [1, 2], [0, 2]], "differences": [[4, 5], [5, 6]]}
    model = build_model("mlp", len(names), 3, torch.Generator().manual_seed(0), members=3, derived=derived)
    assert isinstance(model, CatalogEnsemble) and len(model.members) == 3
    rng = np.random.default_rng(0)
    X = np.column_stack([10 ** rng.uniform(-15, -12, (40, 4)), rng.uniform(12, 20, (40, 3)), rng.normal(0, 1, (40, 2))])
    model.fit_scaling(X.astype(np.float32), np.array([True] * 4 + [False] * 5))
    model.eval()
    x = torch.from_numpy(X.astype(np.float32))
    with torch.no_grad():
        mean = torch.stack([torch.softmax(z, 1) for z in model.member_logits(x)]).mean(0)
        assert torch.allclose(torch.softmax(model(x), 1), mean, atol=1e-6)
        assert torch.equal(model.embed(x), model.members[0].body(model._inputs(x)))
        widened = model.derive(x)
        assert widened.shape == (40, 9 + 5)
        assert torch.allclose(widened[:, 9], (x[:, 1] - x[:, 0]) / (x[:, 1] + x[:, 0]))
        assert torch.allclose(widened[:, 12], x[:, 4] - x[:, 5])
    members_loss = torch.stack([torch.nn.functional.cross_entropy(z, torch.zeros(40, dtype=torch.long))
                                for z in model.member_logits(x)]).mean()
    loss = model.training_loss(torch.nn.CrossEntropyLoss(), x, torch.zeros(40, dtype=torch.long))
    assert torch.allclose(loss, members_loss)


def test_catalog_ensemble_rebuilds_from_its_state():
    from latentlapse.xray.model import derived_pairs

    options = {"members": 2, "derived": derived_pairs(("Fs", "Fh", "Jmag", "Kmag"))}
    a = build_model("mlp", 4, 2, torch.Generator().manual_seed(1), **options)
    b = build_model("mlp", 4, 2, torch.Generator().manual_seed(2), **options)
    b.load_state_dict(a.state_dict())
    x = torch.rand(5, 4) + 0.1
    assert torch.equal(a.eval()(x), b.eval()(x))
