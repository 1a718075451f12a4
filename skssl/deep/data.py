"""The training data of a semi-supervised fit: rows, batches and targets.

- :class:`SemiSupervisedDataset` holds the training rows; item ``i`` is
  ``(x_i, i)``, so a loss finds each row's target by its index;
- :class:`SemiSupervisedBatchSampler` forms batches of labeled rows (drawn with
  replacement) plus unlabeled rows (one pass per epoch);
- :class:`RowTargets` is the one per-row store of targets and weights that
  every deep estimator reads and rewrites.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["RowTargets", "SemiSupervisedBatchSampler", "SemiSupervisedDataset"]


class SemiSupervisedDataset(torch.utils.data.Dataset):
    """Training rows of a semi-supervised fit; item ``i`` is ``(X[i], i)``.

    Indexed with an array of rows (a batch of
    :class:`SemiSupervisedBatchSampler`), it returns the whole batch. Losses
    read the targets and weights of the rows from the net, so subclasses can
    change them between epochs (pseudo-labels) without touching the data.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features), float32
    y : ndarray of shape (n_rows,), int64
        Class indices into ``classes_``, -1 for unlabeled rows.
    rows : ndarray of shape (n_rows,), default=None
        Positions of these rows in the ``X`` given to ``fit`` (they differ when
        ``train_split`` holds labeled rows out for validation).
    """

    def __init__(self, X, y, rows=None):
        self.X = X
        self.y = np.asarray(y)
        self.rows = np.arange(len(self.y)) if rows is None else np.asarray(rows)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, index):
        return self.X[index], np.asarray(index, dtype=np.int64)


class SemiSupervisedBatchSampler(torch.utils.data.Sampler):
    """Batches of ``batch_size_labeled`` labeled rows plus unlabeled rows.

    One epoch is one pass over the unlabeled rows in a random order,
    ``batch_size - batch_size_labeled`` of them per batch; each batch adds
    ``batch_size_labeled`` labeled rows drawn with replacement, uniformly or
    class-balanced, so labeled rows appear many times per epoch (Iscen et al.
    2019, §5.2). When ``include_unlabeled()`` is false (supervised epochs) a
    batch holds only its labeled draw, and the epoch has as many batches. With
    no unlabeled rows at all, an epoch is a shuffled pass over the labeled rows
    in batches of ``batch_size``. An epoch has at least ``min_batches``
    batches, so small data sets still get enough steps per epoch.

    Parameters
    ----------
    y : ndarray of shape (n_rows,)
        Class indices, -1 for unlabeled rows.
    batch_size : int
        Rows per batch.
    batch_size_labeled : int
        Labeled rows per batch.
    balanced : bool, default=False
        Draw the class of each labeled row uniformly, then a row of that class.
    include_unlabeled : callable, default=None
        Called at the start of each epoch; returns whether batches carry
        unlabeled rows. None means always.
    min_batches : int, default=1
        Fewest batches per epoch: when one pass is shorter, the epoch goes on
        with a new shuffled pass.
    random_state : int or None, default=None
        Seed of the sampler's own generator.

    Examples
    --------
    >>> import numpy as np
    >>> from skssl.deep import SemiSupervisedBatchSampler
    >>> y = np.array([0, 1, -1, -1, -1, -1, -1])
    >>> batches = list(SemiSupervisedBatchSampler(
    ...     y, batch_size=4, batch_size_labeled=2, random_state=0))
    >>> [len(b) for b in batches], sorted(int(i) for b in batches for i in b[2:])
    ([4, 4, 3], [2, 3, 4, 5, 6])
    """

    def __init__(
        self,
        y,
        *,
        batch_size,
        batch_size_labeled,
        balanced=False,
        include_unlabeled=None,
        min_batches=1,
        random_state=None,
    ):
        y = np.asarray(y)
        self.min_batches = int(min_batches)
        self.labeled = np.flatnonzero(y >= 0)
        self.unlabeled = np.flatnonzero(y < 0)
        self.batch_size = int(batch_size)
        self.batch_size_labeled = int(batch_size_labeled)
        self.include_unlabeled = include_unlabeled
        self.rng = np.random.default_rng(random_state)
        if balanced:
            labels = y[self.labeled]
            order = np.argsort(labels, kind="stable")
            self._by_class = self.labeled[order]
            counts = np.bincount(labels)
            self._counts = counts[counts > 0]
            self._starts = (np.cumsum(counts) - counts)[counts > 0]
        else:
            self._by_class = None

    def _n_unlabeled_per_batch(self):
        return self.batch_size - self.batch_size_labeled

    def __len__(self):
        if self.unlabeled.size == 0:
            one_pass = -(-self.labeled.size // self.batch_size)
        else:
            one_pass = -(-self.unlabeled.size // self._n_unlabeled_per_batch())
        return max(one_pass, self.min_batches)

    def _slices(self, rows, step):
        """``len(self)`` slices of ``step`` rows from shuffled passes over ``rows``."""
        remaining = len(self)
        while remaining:
            order = self.rng.permutation(rows)
            for lo in range(0, order.size, step):
                yield order[lo : lo + step]
                remaining -= 1
                if not remaining:
                    return

    def _draw_labeled(self):
        n = self.batch_size_labeled
        if self._by_class is None:
            return self.labeled[self.rng.integers(self.labeled.size, size=n)]
        cls = self.rng.integers(self._counts.size, size=n)
        offset = (self.rng.random(n) * self._counts[cls]).astype(np.int64)
        return self._by_class[self._starts[cls] + offset]

    def __iter__(self):
        if self.unlabeled.size == 0:
            yield from self._slices(self.labeled, self.batch_size)
            return
        with_unlabeled = self.include_unlabeled is None or self.include_unlabeled()
        for unlabeled in self._slices(self.unlabeled, self._n_unlabeled_per_batch()):
            labeled = self._draw_labeled()
            yield np.concatenate([labeled, unlabeled]) if with_unlabeled else labeled


class RowTargets:
    """Per-row training targets of a semi-supervised fit: one store for all.

    The base net creates it from the labels of the training rows; estimators
    rewrite ``target`` and ``weight`` between epochs (DLP's pseudo-labels and
    their weights, LLP's propagated labels and confidences) and read ``given``
    where a loss needs the true labels only (CCLP). ``get_loss`` reads it with
    the row indices of a batch.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        Class indices of every row of the ``X`` given to ``fit``, -1 for
        unlabeled rows.
    rows : ndarray of shape (n_train,)
        Positions of the training rows in that ``X``.

    Attributes
    ----------
    given : ndarray of shape (n_train,)
        Given class index of each training row, -1 for unlabeled rows.
    target : ndarray of shape (n_train,), int64
        Class the loss pulls each row towards (initially its given label, 0 on
        unlabeled rows, whose weight is 0).
    weight : ndarray of shape (n_train,), float32
        Loss weight of each row (initially 1 on labeled rows, 0 elsewhere).

    Examples
    --------
    >>> import numpy as np
    >>> from skssl.deep import RowTargets
    >>> store = RowTargets(np.array([1, -1, 0]), np.arange(3))
    >>> store.update(np.array([1, 0, 0]), np.array([1.0, 0.5, 1.0]))
    >>> store.target.tolist(), store.weight.tolist()
    ([1, 0, 0], [1.0, 0.5, 1.0])
    """

    def __init__(self, y, rows):
        self.y = np.asarray(y)
        self.rows = np.asarray(rows)
        self.given = self.y[self.rows]
        self.target = np.maximum(self.given, 0).astype(np.int64)
        self.weight = (self.given >= 0).astype(np.float32)

    def update(self, target, weight):
        """Replace the targets and weights of every training row."""
        target, weight = np.asarray(target), np.asarray(weight)
        if target.shape != self.given.shape or weight.shape != self.given.shape:
            raise ValueError(
                f"targets and weights must have one entry per training row "
                f"({self.given.shape[0]}), got {target.shape} and {weight.shape}."
            )
        self.target = target.astype(np.int64)
        self.weight = weight.astype(np.float32)

    def batch(self, rows, device):
        """``(given, target, weight)`` tensors of the training rows ``rows``."""
        return tuple(
            torch.as_tensor(a[rows], device=device)
            for a in (self.given, self.target, self.weight)
        )

    def to_all_rows(self, values, fill):
        """Spread per-training-row ``values`` over every row of ``X``.

        Rows held out by ``train_split`` (labeled validation rows) get ``fill``.
        """
        values = np.asarray(values)
        out = np.empty((self.y.shape[0],) + values.shape[1:], dtype=values.dtype)
        out[...] = fill
        out[self.rows] = values
        return out
