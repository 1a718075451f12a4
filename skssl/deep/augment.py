"""Perturbations for the ``augment`` hook of the deep estimators.

``augment`` is any callable ``x -> x'`` on a batch tensor of shape
``(batch, n_features)``. The base net applies it to every training batch
before the forward pass (labeled and unlabeled rows alike), on the rows as
the module's :class:`~skssl.deep.Standardize` layer sees them when it has one
(so noise is in units of a feature's spread); with a Mean
Teacher, the student and the teacher each get their own draw. Predictions and
the descriptors of graph steps never see it. Draws come from torch's global
generator, which ``random_state`` seeds, so seeded fits stay reproducible.

The built-ins are small classes so that they pickle and clone with the
estimator:

- :class:`GaussianNoise` for tabular data and embeddings;
- :class:`RandomShift` for sequences (a circular shift plus noise), e.g.
  MNIST-1D.
"""

from __future__ import annotations

import numbers

import torch

__all__ = ["GaussianNoise", "RandomShift"]


def _check_non_negative(name, value, kind=numbers.Real):
    if not isinstance(value, kind) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name}={value!r} must be a non-negative number.")


class GaussianNoise:
    """Add ``N(0, std^2)`` noise to every feature.

    With the default modules, which standardize their input, the perturbation
    acts on the standardized rows, so ``std`` is in units of a feature's
    standard deviation whatever the raw scale; for other modules scale the data
    first.

    Parameters
    ----------
    std : float, default=0.1
        Standard deviation of the noise.

    Examples
    --------
    >>> import torch
    >>> from skssl.deep import GaussianNoise
    >>> x = torch.zeros(1000, 2)
    >>> round(float(GaussianNoise(0.5)(x).std()), 1)
    0.5
    """

    def __init__(self, std=0.1):
        _check_non_negative("std", std)
        self.std = std

    def __call__(self, x):
        if self.std == 0:
            return x
        return x + self.std * torch.randn_like(x)

    def __repr__(self):
        return f"GaussianNoise(std={self.std!r})"


class RandomShift:
    """Shift each sequence by a random number of steps, then add Gaussian noise.

    Each row is rolled circularly by an integer drawn uniformly from
    ``[-max_shift, max_shift]`` (its own draw per row), a perturbation that
    keeps the class of a translated signal such as MNIST-1D.

    Parameters
    ----------
    max_shift : int, default=3
        Largest shift, in steps.
    std : float, default=0.05
        Standard deviation of the added noise.

    Examples
    --------
    >>> import torch
    >>> from skssl.deep import RandomShift
    >>> x = torch.arange(5.0).repeat(3, 1)
    >>> shifted = RandomShift(max_shift=2, std=0.0)(x)
    >>> sorted(shifted[0].tolist()) == x[0].tolist()
    True
    """

    def __init__(self, max_shift=3, std=0.05):
        _check_non_negative("max_shift", max_shift, numbers.Integral)
        _check_non_negative("std", std)
        self.max_shift = max_shift
        self.std = std

    def __call__(self, x):
        n, length = x.shape
        if self.max_shift:
            shift = torch.randint(
                -self.max_shift, self.max_shift + 1, (n, 1), device=x.device
            )
            steps = torch.arange(length, device=x.device)
            x = torch.gather(x, 1, (steps[None, :] - shift) % length)
        if self.std:
            x = x + self.std * torch.randn_like(x)
        return x

    def __repr__(self):
        return f"RandomShift(max_shift={self.max_shift!r}, std={self.std!r})"
