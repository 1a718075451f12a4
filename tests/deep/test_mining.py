import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import make_moons

from skssl.deep import MLPModule
from skssl.deep.losses import triplet_loss
from skssl.deep.mining import ManifoldMiningEmbedder, TripletLoss, _draw_triplets
from skssl.ranking import MinedPairs

FAST = dict(
    n_components=8,
    n_neighbors=10,
    k_euclidean=10,
    k_manifold=20,
    max_epochs=2,
    module__hidden=(16,),
    lr=1e-2,
    random_state=0,
)


@pytest.fixture(scope="module")
def moons():
    X, _ = make_moons(150, noise=0.05, random_state=0)
    return X


def test_transform_gives_unit_embeddings(moons):
    embedder = ManifoldMiningEmbedder(**FAST).fit(moons)
    Z = embedder.transform(moons)
    assert Z.shape == (150, 8) and Z.dtype == np.float32
    assert np.allclose(np.linalg.norm(Z, axis=1), 1, atol=1e-5)
    assert embedder.get_feature_names_out().tolist()[:2] == [
        "manifoldminingembedder0",
        "manifoldminingembedder1",
    ]
    assert np.array_equal(embedder.fit_transform(moons), Z)
    assert not hasattr(embedder, "predict")


def test_fine_tuning_changes_the_embeddings_reproducibly(moons):
    untrained = ManifoldMiningEmbedder(**{**FAST, "max_epochs": 0}).fit(moons)
    trained = ManifoldMiningEmbedder(**FAST).fit(moons)
    again = ManifoldMiningEmbedder(**FAST).fit(moons)
    other_seed = ManifoldMiningEmbedder(**{**FAST, "random_state": 1}).fit(moons)
    Z = trained.transform(moons)
    assert np.abs(Z - untrained.transform(moons)).max() > 1e-2
    assert np.array_equal(Z, again.transform(moons))
    assert not np.allclose(Z, other_seed.transform(moons))
    assert all(np.isfinite(row["train_loss"]) for row in trained.history)


def test_mines_every_few_epochs(moons):
    embedder = ManifoldMiningEmbedder(**{**FAST, "max_epochs": 4, "mine_every": 2})
    embedder.fit(moons)
    mined = [row.get("mined_anchors") for row in embedder.history]
    assert mined[1] is None and mined[3] is None
    assert mined[0] > 0 and mined[2] > 0
    assert isinstance(embedder.pairs_, MinedPairs)
    assert embedder.pairs_.positives.shape == (150, 20)


def test_a_given_network_is_copied_and_fine_tuned(moons):
    network = MLPModule(n_features=2, n_classes=2, hidden=(16,))
    network.standardize_from(moons)
    before = {k: v.clone() for k, v in network.state_dict().items()}
    params = {k: v for k, v in FAST.items() if not k.startswith("module__")}
    params["n_components"] = None
    embedder = ManifoldMiningEmbedder(module=network, **params)
    Z = embedder.fit_transform(moons)
    assert Z.shape == (150, 16)
    assert all(torch.equal(v, network.state_dict()[k]) for k, v in before.items())
    tuned = embedder.module_.network.state_dict()
    assert not torch.equal(tuned["features.0.weight"], before["features.0.weight"])
    assert torch.equal(tuned["standardize.mean"], before["standardize.mean"])


def test_clone_and_pickle(moons):
    embedder = ManifoldMiningEmbedder(**FAST).fit(moons)
    restored = pickle.loads(pickle.dumps(embedder))
    assert np.array_equal(restored.transform(moons), embedder.transform(moons))
    cloned = clone(embedder)
    assert cloned.get_params()["device"] == "auto"
    assert not hasattr(cloned, "module_")


def test_no_pairs_warns_and_does_not_train(moons):
    # Equal Euclidean and manifold neighbourhoods of a near-complete graph.
    embedder = ManifoldMiningEmbedder(
        **{**FAST, "n_neighbors": 100, "k_euclidean": 140, "k_manifold": 1}
    )
    with pytest.warns(UserWarning, match="mining found no anchor"):
        embedder.fit(moons)
    assert "train_loss" not in embedder.history[-1]


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_neighbors": 150}, "n_neighbors=150 must be smaller than the 150 rows"),
        ({"k_manifold": 200}, "k_manifold=200 must be smaller"),
        ({"margin": -1.0}, "'margin' parameter"),
        ({"mine_every": 0}, "'mine_every' parameter"),
    ],
)
def test_bad_parameters_leave_nothing_fitted(moons, params, match):
    embedder = ManifoldMiningEmbedder(**{**FAST, **params})
    with pytest.raises(ValueError, match=match):
        embedder.fit(moons)
    assert not hasattr(embedder, "module_")


def test_wrong_feature_count_at_transform(moons):
    embedder = ManifoldMiningEmbedder(**FAST).fit(moons)
    with pytest.raises(ValueError, match="3 features"):
        embedder.transform(np.ones((2, 3)))


def test_triplet_loss_and_its_criterion():
    a = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    p = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    n = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    # 0.5 + 2 - 0 for the first triplet, 0.5 + 0 - 4 < 0 for the second.
    assert float(triplet_loss(a, p, n)) == pytest.approx(1.25)
    assert float(triplet_loss(a, p, n, torch.tensor([2.0, 1.0]))) == 2.5
    stacked = torch.stack([a, p, n], dim=1)
    assert float(TripletLoss(margin=0.0)(stacked, torch.ones(2))) == 1.0
    with pytest.raises(ValueError, match="margin=-1"):
        triplet_loss(a, p, n, margin=-1)


def test_triplets_come_from_the_pools():
    pairs = MinedPairs(
        anchors=np.array([5, 6, 7]),
        positives=np.array([[1, 2], [-1, -1], [3, -1]]),
        positive_scores=np.array([[0.4, 0.2], [0.0, 0.0], [0.3, 0.0]]),
        negatives=np.array([[8, -1], [9, -1], [-1, -1]]),
        negative_scores=np.zeros((3, 2)),
    )
    triplets, weights, usable = _draw_triplets(pairs, 200, np.random.default_rng(0))
    assert usable == 1
    assert set(map(tuple, triplets.tolist())) == {(5, 1, 8), (5, 2, 8)}
    assert np.allclose(sorted(set(weights.tolist())), [0.2 / 0.3, 0.4 / 0.3])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        empty = MinedPairs(*(a[1:2] for a in vars(pairs).values()))
        assert _draw_triplets(empty, 10, np.random.default_rng(0)) is None
