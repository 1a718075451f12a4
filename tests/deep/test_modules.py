import pytest
import torch

from skssl.deep import CNN1DModule, MLPModule


@pytest.mark.parametrize("hidden", [7, (9, 7)])
def test_mlp_shapes_and_unit_embedding(hidden):
    torch.manual_seed(0)
    m = MLPModule(n_features=5, n_classes=3, hidden=hidden, normalize=True)
    x = torch.randn(4, 5)
    assert m(x).shape == (4, 3)
    v = m.embed(x)
    assert v.shape == (4, 7)
    nonzero = v.norm(dim=1) > 0
    torch.testing.assert_close(v[nonzero].norm(dim=1), torch.ones(int(nonzero.sum())))


def test_forward_is_head_of_embed():
    m = MLPModule(n_features=3, n_classes=2, hidden=4, normalize=False)
    x = torch.randn(5, 3)
    torch.testing.assert_close(m(x), m.head(m.embed(x)))


@pytest.mark.parametrize("length", [2, 7, 40])
def test_cnn_any_length(length):
    m = CNN1DModule(n_features=length, n_classes=4, channels=3, hidden=6)
    x = torch.randn(2, length)
    assert m(x).shape == (2, 4)
    assert m.embed(x).shape == (2, 6)


@pytest.mark.parametrize("cls", [MLPModule, CNN1DModule])
def test_missing_dims_name_the_parameter(cls):
    with pytest.raises(TypeError, match="module__n_features"):
        cls(n_classes=2)
    with pytest.raises(ValueError, match="n_classes=0"):
        cls(n_features=3, n_classes=0)


@pytest.mark.parametrize("hidden", [0, (), (4, -1), 2.5])
def test_bad_hidden(hidden):
    with pytest.raises(ValueError, match="hidden="):
        MLPModule(n_features=3, n_classes=2, hidden=hidden)


def test_standardize_per_feature_and_global():
    import numpy as np

    from skssl.deep import Standardize

    X = np.array([[1.0, 100.0, 5.0], [3.0, 300.0, 5.0]])
    layer = Standardize(3).fit(X)
    out = layer(torch.as_tensor(X, dtype=torch.float32))
    torch.testing.assert_close(out, torch.tensor([[-1.0, -1.0, 0.0], [1.0, 1.0, 0.0]]))
    whole = Standardize(3, per_feature=False).fit(X)
    assert whole.mean.shape == (1,) and float(whole.mean) == pytest.approx(X.mean())
    assert float(whole.scale) == pytest.approx(X.std())


@pytest.mark.parametrize("cls", [MLPModule, CNN1DModule])
def test_standardize_from_sets_buffers_in_the_state_dict(cls):
    import numpy as np

    m = cls(n_features=8, n_classes=2)
    X = np.random.default_rng(0).normal(5.0, 3.0, size=(50, 8))
    m.standardize_from(X)
    state = m.state_dict()
    assert "standardize.mean" in state and "standardize.scale" in state
    assert float(state["standardize.mean"].mean()) == pytest.approx(X.mean(), abs=0.5)
    off = cls(n_features=8, n_classes=2, standardize=False)
    off.standardize_from(X)  # no-op
    assert not any(k.startswith("standardize") for k in off.state_dict())
