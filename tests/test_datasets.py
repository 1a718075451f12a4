"""skssl.datasets: offline data and the label-hiding helper."""

import random

import numpy as np
import pytest

from skssl.datasets import load_digits_ssl, load_mnist1d, mask_labels

# --- mask_labels -------------------------------------------------------------------


def test_mask_labels_per_class():
    y = np.repeat([0, 1, 2], [5, 7, 9])
    masked = mask_labels(y, per_class=2, random_state=0)
    kept = masked != -1
    assert masked.shape == y.shape and masked is not y
    assert np.bincount(masked[kept]).tolist() == [2, 2, 2]
    np.testing.assert_array_equal(masked[kept], y[kept])  # kept labels unchanged
    np.testing.assert_array_equal(mask_labels(y, per_class=2, random_state=0), masked)


def test_mask_labels_fraction_is_stratified_and_keeps_one_per_class():
    y = np.repeat([0, 1], [100, 3])
    masked = mask_labels(y, fraction=0.1, random_state=1)
    assert np.bincount(masked[masked != -1]).tolist() == [10, 1]
    assert np.all(mask_labels(y, fraction=1.0) == y)


def test_mask_labels_string_labels():
    y = np.array(["a", "b", "a", "b", "a"], dtype=object)
    masked = mask_labels(y, per_class=1, random_state=0)
    assert sorted(v for v in masked if v != -1) == ["a", "b"]


def test_mask_labels_does_not_touch_global_state():
    np.random.seed(3)
    expected = np.random.random_sample()
    np.random.seed(3)
    mask_labels(np.arange(10) % 2, per_class=1, random_state=0)
    assert np.random.random_sample() == expected


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(), "exactly one of per_class and fraction"),
        (dict(per_class=1, fraction=0.5), "exactly one"),
        (dict(per_class=0), "per_class=0"),
        (dict(per_class=1.5), "per_class=1.5"),
        (dict(per_class=4), "exceeds the 3 samples"),
        (dict(fraction=0.0), "fraction=0.0"),
        (dict(fraction=1.5), "fraction=1.5"),
    ],
)
def test_mask_labels_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mask_labels(np.array([0, 0, 0, 1, 1, 1]), **kwargs)


def test_mask_labels_rejects_already_masked_targets():
    with pytest.raises(ValueError, match="already contains -1"):
        mask_labels(np.array([0, 1, -1]), per_class=1)


# --- digits --------------------------------------------------------------------------


def test_load_digits_ssl():
    d = load_digits_ssl(labels_per_class=3, random_state=0)
    assert d.X.shape == (1797, 64) and d.y.shape == d.y_true.shape == (1797,)
    kept = d.y != -1
    assert np.bincount(d.y[kept]).tolist() == [3] * 10
    np.testing.assert_array_equal(d.y[kept], d.y_true[kept])
    again = load_digits_ssl(labels_per_class=3, random_state=0)
    np.testing.assert_array_equal(again.y, d.y)
    other = load_digits_ssl(labels_per_class=3, random_state=1)
    assert not np.array_equal(other.y, d.y)


# --- MNIST-1D ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist1d():
    pytest.importorskip("mnist1d")
    return load_mnist1d(100, random_state=0, test_size=0.2)


def test_load_mnist1d_shapes_and_split(mnist1d):
    d = mnist1d
    assert d.X.shape == (80, 40) and d.X.dtype == np.float32
    assert d.X_test.shape == (20, 40) and d.y_test.shape == (20,)
    assert d.y.dtype == np.int64
    labels = np.concatenate([d.y, d.y_test])
    assert np.bincount(labels).tolist() == [10] * 10  # one tenth per digit


def test_load_mnist1d_is_seeded_and_isolates_global_rngs(mnist1d):
    np.random.seed(7)
    random.seed(7)
    expected_np, expected_py = np.random.random_sample(), random.random()
    np.random.seed(7)
    random.seed(7)
    again = load_mnist1d(100, random_state=0, test_size=0.2)
    assert np.random.random_sample() == expected_np
    assert random.random() == expected_py
    np.testing.assert_array_equal(again.X, mnist1d.X)
    other = load_mnist1d(100, random_state=1, test_size=0.2)
    assert not np.array_equal(other.X, mnist1d.X)


def test_load_mnist1d_without_test_split():
    pytest.importorskip("mnist1d")
    d = load_mnist1d(20, random_state=0)
    assert d.X.shape == (20, 40) and "X_test" not in d


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_samples=5), "n_samples=5"),
        (dict(n_samples=20.0), "n_samples=20.0"),
        (dict(n_samples=20, random_state=None), "random_state=None"),
        (dict(n_samples=20, test_size=1.0), "test_size=1.0"),
    ],
)
def test_load_mnist1d_bad_arguments(kwargs, match):
    pytest.importorskip("mnist1d")
    with pytest.raises(ValueError, match=match):
        load_mnist1d(**kwargs)
