"""Default torch modules of the deep estimators, split into features and head.

The module protocol
-------------------
Every deep skssl estimator trains a torch module that follows a small protocol:

``forward(x)``
    Logits of shape ``(batch, n_classes)`` (no softmax; the loss is
    cross-entropy and ``predict_proba`` applies the softmax).
``embed(x)``
    The features the classifier head reads, of shape ``(batch, d)``: the
    descriptors ``v_i = phi(x_i)`` that the graph of
    :class:`~skssl.DeepLabelPropagationClassifier` is built on, also returned by
    the estimator's ``embed(X)``.
``n_features``, ``n_classes`` constructor arguments (optional)
    When the estimator receives the module as a *class* whose constructor takes
    these arguments, it sets them from the data at initialization (the number of
    columns of ``X`` and of ``classes_``) unless the user set
    ``module__n_features`` / ``module__n_classes``. A module passed as an
    instance is used as is.
``default_augment()`` (optional)
    The perturbation an estimator with ``augment="auto"`` applies to training
    batches (see :mod:`skssl.deep.augment`), or None.
``standardize_from(X)`` (optional)
    Called once at the start of a fresh fit with the rows of ``X`` as a numpy
    array (every row, labeled and unlabeled), before any training step, so the
    module can set statistics of its input that are then part of its
    ``state_dict``: saved by ``save_params``, pickled, moved to the device and
    used at prediction. The default modules standardize their input this way,
    so raw features of any scale train; ``module__standardize=False`` turns it
    off. A module without the method sees ``X`` as it is.

Any ``torch.nn.Module`` with ``forward`` and ``embed`` works; :class:`MLPModule`
and :class:`CNN1DModule` are ready-made ones.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["CNN1DModule", "MLPModule", "Standardize"]


def _layer_sizes(hidden):
    """Hidden layer widths as a tuple, from an int or a sequence of ints."""
    if isinstance(hidden, numbers.Integral):
        sizes = (hidden,)
    else:
        sizes = tuple(hidden) if isinstance(hidden, (tuple, list)) else ()
    if not sizes or any(not isinstance(h, numbers.Integral) or h < 1 for h in sizes):
        raise ValueError(
            f"hidden={hidden!r} must be a positive int or a non-empty sequence of "
            "positive ints (the widths of the hidden layers), e.g. hidden=(128, 64)."
        )
    return sizes


def _check_dims(n_features, n_classes, name):
    for arg, value in (("n_features", n_features), ("n_classes", n_classes)):
        if value is None:
            raise TypeError(
                f"{name} needs {arg}, which the estimator sets from the data when "
                f"it fits. To build the module without data (e.g. before "
                f"load_params), pass module__{arg}=... to the estimator."
            )
        if not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{arg}={value!r} must be a positive integer.")


class Standardize(nn.Module):
    """``(x - mean) / scale`` with statistics set from data, kept as buffers.

    Parameters
    ----------
    n_features : int
        Input width.
    per_feature : bool, default=True
        One mean and scale per column (tabular data), or one for all values
        (sequences, where a per-position statistic would break translation
        equivariance).

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skssl.deep import Standardize
    >>> layer = Standardize(2)
    >>> layer.fit(np.array([[0.0, 10.0], [2.0, 10.0]]))
    Standardize(n_features=2, per_feature=True)
    >>> layer(torch.tensor([[1.0, 10.0]])).tolist()
    [[0.0, 0.0]]
    """

    def __init__(self, n_features, *, per_feature=True):
        super().__init__()
        self.n_features = n_features
        self.per_feature = per_feature
        size = n_features if per_feature else 1
        self.register_buffer("mean", torch.zeros(size))
        self.register_buffer("scale", torch.ones(size))

    def fit(self, X):
        """Set the mean and the standard deviation from the rows of ``X``.

        A constant column keeps scale 1; statistics are computed in float64.
        """
        X = np.asarray(X, dtype=np.float64)
        axis = 0 if self.per_feature else None
        mean = np.atleast_1d(X.mean(axis=axis))
        std = np.atleast_1d(X.std(axis=axis))
        std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
        with torch.no_grad():
            self.mean.copy_(torch.as_tensor(mean, dtype=self.mean.dtype))
            self.scale.copy_(torch.as_tensor(std, dtype=self.scale.dtype))
        return self

    def forward(self, x):
        return (x - self.mean) / self.scale

    def extra_repr(self):
        return f"n_features={self.n_features}, per_feature={self.per_feature}"


class _FeaturesAndHead(nn.Module):
    """Shared tail: optional L2 normalization of the features, linear head."""

    def standardize_from(self, X):
        """Set the input standardization from the rows of ``X`` (if enabled)."""
        if self.standardize is not None:
            self.standardize.fit(X)

    def default_augment(self):
        """The perturbation ``augment="auto"`` uses with this module."""
        return None

    def embed(self, x):
        """Features fed to the head, L2-normalized when ``normalize=True``."""
        if self.standardize is not None:
            x = self.standardize(x)
        v = self.features(x)
        return F.normalize(v, dim=1) if self.normalize else v

    def forward(self, x):
        """Class logits ``head(embed(x))``."""
        return self.head(self.embed(x))


class MLPModule(_FeaturesAndHead):
    """Multi-layer perceptron for tabular data or precomputed embeddings.

    ``x -> standardize -> [Linear -> ReLU -> Dropout] * len(hidden) -> (L2 norm)
    -> Linear``. The output of the last hidden layer is the embedding.

    Parameters
    ----------
    n_features : int, default=None
        Input width; set from ``X`` by the estimator.
    n_classes : int, default=None
        Number of logits; set from ``classes_`` by the estimator.
    hidden : int or sequence of int, default=(256,)
        Widths of the hidden layers; the last is the embedding dimension.
    dropout : float, default=0.0
        Dropout probability after each hidden layer.
    normalize : bool, default=False
        L2-normalize the embedding before the head, as in Iscen et al. (2019).
        The graph of :class:`~skssl.DeepLabelPropagationClassifier` uses cosine
        similarities either way; a head on unit vectors trained more slowly and
        lost 1 to 3 points on tabular data, so it is off by default.
    standardize : bool, default=True
        Standardize each input column with the mean and standard deviation of
        the rows the estimator fits on (labeled and unlabeled), kept in the
        module's state (:class:`Standardize`).

    Examples
    --------
    >>> import torch
    >>> from skssl.deep import MLPModule
    >>> m = MLPModule(n_features=4, n_classes=3, hidden=(8, 5))
    >>> m(torch.zeros(2, 4)).shape, m.embed(torch.zeros(2, 4)).shape
    (torch.Size([2, 3]), torch.Size([2, 5]))
    """

    def __init__(
        self,
        n_features=None,
        n_classes=None,
        *,
        hidden=(256,),
        dropout=0.0,
        normalize=False,
        standardize=True,
    ):
        super().__init__()
        _check_dims(n_features, n_classes, "MLPModule")
        self.standardize = Standardize(n_features) if standardize else None
        sizes = _layer_sizes(hidden)
        layers, width = [], n_features
        for h in sizes:
            layers += [nn.Linear(width, h), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(width, n_classes)
        self.normalize = normalize


def _conv_length(length, kernel_size, stride, padding):
    return (length + 2 * padding - kernel_size) // stride + 1


class CNN1DModule(_FeaturesAndHead):
    """Small 1-D convolutional network for sequences such as MNIST-1D.

    Each row of ``X`` is one single-channel sequence of length ``n_features``:
    three strided convolutions (``Conv1d -> ReLU``, each halving the length), a
    fully connected layer to the embedding, optional L2 normalization, and a
    linear head.

    Parameters
    ----------
    n_features : int, default=None
        Sequence length; set from ``X`` by the estimator.
    n_classes : int, default=None
        Number of logits; set from ``classes_`` by the estimator.
    channels : int, default=32
        Channels of each convolution.
    hidden : int, default=128
        Embedding dimension (width of the fully connected layer).
    kernel_size : int, default=5
        Width of the convolution kernels (odd).
    dropout : float, default=0.5
        Dropout probability before the embedding layer. With few labels it
        keeps the network from memorizing its (pseudo-)labels: on MNIST-1D with
        50 labels per class it is worth several points of test accuracy.
    normalize : bool, default=True
        L2-normalize the embedding before the head.
    standardize : bool, default=True
        Standardize the input with one mean and standard deviation over all
        values of the rows the estimator fits on (:class:`Standardize` with
        ``per_feature=False``, which keeps the convolutions shift-equivariant).

    Examples
    --------
    >>> import torch
    >>> from skssl.deep import CNN1DModule
    >>> m = CNN1DModule(n_features=40, n_classes=10, channels=4, hidden=16)
    >>> m(torch.zeros(3, 40)).shape, m.embed(torch.zeros(3, 40)).shape
    (torch.Size([3, 10]), torch.Size([3, 16]))
    """

    def __init__(
        self,
        n_features=None,
        n_classes=None,
        *,
        channels=32,
        hidden=128,
        kernel_size=5,
        dropout=0.5,
        normalize=True,
        standardize=True,
    ):
        super().__init__()
        _check_dims(n_features, n_classes, "CNN1DModule")
        self.standardize = (
            Standardize(n_features, per_feature=False) if standardize else None
        )
        (hidden,) = _layer_sizes(hidden)
        padding = kernel_size // 2
        convs, in_ch, length = [], 1, n_features
        for _ in range(3):
            convs += [
                nn.Conv1d(in_ch, channels, kernel_size, stride=2, padding=padding),
                nn.ReLU(),
            ]
            in_ch, length = channels, _conv_length(length, kernel_size, 2, padding)
        self.features = nn.Sequential(
            nn.Unflatten(1, (1, n_features)),
            *convs,
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(channels * length, hidden),
            nn.ReLU(),
        )
        self.head = nn.Linear(hidden, n_classes)
        self.normalize = normalize

    def default_augment(self):
        """A random circular shift plus noise (:class:`~skssl.deep.RandomShift`)."""
        from .augment import RandomShift

        return RandomShift()
