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

Any ``torch.nn.Module`` with these two methods works; :class:`MLPModule` and
:class:`CNN1DModule` are ready-made ones.
"""

from __future__ import annotations

import numbers

from torch import nn
from torch.nn import functional as F

__all__ = ["CNN1DModule", "MLPModule"]


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


class _FeaturesAndHead(nn.Module):
    """Shared tail: optional L2 normalization of the features, linear head."""

    def embed(self, x):
        """Features fed to the head, L2-normalized when ``normalize=True``."""
        v = self.features(x)
        return F.normalize(v, dim=1) if self.normalize else v

    def forward(self, x):
        """Class logits ``head(embed(x))``."""
        return self.head(self.embed(x))


class MLPModule(_FeaturesAndHead):
    """Multi-layer perceptron for tabular data or precomputed embeddings.

    ``x -> [Linear -> ReLU -> Dropout] * len(hidden) -> (L2 norm) -> Linear``.
    The output of the last hidden layer is the embedding.

    Parameters
    ----------
    n_features : int, default=None
        Input width; set from ``X`` by the estimator.
    n_classes : int, default=None
        Number of logits; set from ``classes_`` by the estimator.
    hidden : int or sequence of int, default=(128,)
        Widths of the hidden layers; the last is the embedding dimension.
    dropout : float, default=0.0
        Dropout probability after each hidden layer.
    normalize : bool, default=True
        L2-normalize the embedding before the head, as in Iscen et al. (2019):
        the graph is built from cosine similarities of these unit vectors.

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
        hidden=(128,),
        dropout=0.0,
        normalize=True,
    ):
        super().__init__()
        _check_dims(n_features, n_classes, "MLPModule")
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
    ):
        super().__init__()
        _check_dims(n_features, n_classes, "CNN1DModule")
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
