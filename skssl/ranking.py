"""Ranking on a data manifold by diffusion: :class:`ManifoldRanking`.

A query's relevance spreads over the kNN graph of a database; rows are ranked by
the diffused score instead of their distance to the query (Zhou et al. 2003;
Iscen et al. 2017). The estimator is thin: it builds the graph with
:class:`~skssl.graph.KNNGraph`, solves with :mod:`skssl.solvers` (block
conjugate gradient, or the offline/online spectral filter of Iscen et al.
2018) and selects the top rows per query. :meth:`ManifoldRanking.mine_pairs`
compares manifold and Euclidean neighbours to mine hard training pairs without
labels (Iscen et al. 2018, "Mining on manifolds"), returned as
:class:`MinedPairs`.
"""

from __future__ import annotations

import numbers
import sys
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._validation import restore_on_failure, seed_from
from .graph import GRAPH_PARAMS, KNNGraph, _drop_self, normalize_affinity
from .solvers import SOLVERS, solve_diffusion, spectral_eigenpairs, spectral_filter

__all__ = ["ManifoldRanking", "MinedPairs"]

# Queries are diffused in blocks whose (n_samples, block) score array holds
# about this many values (32 MB of float64; conjugate gradient keeps five such
# arrays), so memory stays bounded whatever the number of queries.
_QUERY_BLOCK_VALUES = 2**22
# Sort key of rows the query cannot reach: below any reachable score (the
# spectral filter may give those small negative values), above a left-out row.
_UNREACHABLE = -np.finfo(np.float64).max


@dataclass
class MinedPairs:
    """Hard positives and negatives of anchors, from ``ManifoldRanking.mine_pairs``.

    See :meth:`skssl.ManifoldRanking.mine_pairs`.

    Rows are padded with index -1 (and score 0) where an anchor has fewer
    pairs than asked for.

    Attributes
    ----------
    anchors : ndarray of shape (n_anchors,), int64
        Fitted rows the pairs belong to.
    positives : ndarray of shape (n_anchors, min(n_positives, k_manifold)), int64
        Manifold neighbours that are not Euclidean neighbours, by decreasing
        manifold score.
    positive_scores : ndarray of the shape of ``positives``
        Manifold score of each positive (the weight of its training pair).
    negatives : ndarray of shape (n_anchors, min(n_negatives, k_euclidean)), int64
        Euclidean neighbours that are not manifold neighbours, nearest first.
    negative_scores : ndarray of the shape of ``negatives``
        Manifold score of each negative (0 when the graph does not connect it
        to the anchor).
    """

    anchors: np.ndarray
    positives: np.ndarray
    positive_scores: np.ndarray
    negatives: np.ndarray
    negative_scores: np.ndarray


def _top_rows(scores, reachable, n_results, exclude=None):
    """The ``n_results`` best rows of each column, best first.

    Reachable rows come before unreachable ones (reported with score 0), and
    ``exclude[j]`` (a query's own row) never appears. Ties keep row order.

    Returns ``(scores, indices, reachable)`` of shape (n_columns, n_results).
    """
    n, c = scores.shape
    key = np.where(reachable, scores, _UNREACHABLE)
    columns = np.arange(c)
    if exclude is not None:
        key[exclude, columns] = -np.inf
    top = np.argpartition(-key, n_results - 1, axis=0)[:n_results].T
    top_key = key[top, columns[:, None]]
    order = np.lexsort((top, -top_key), axis=-1)
    top = np.take_along_axis(top, order, axis=1)
    hit = reachable[top, columns[:, None]]
    top_scores = np.where(hit, scores[top, columns[:, None]], 0.0)
    return top_scores, top, hit


def _check_count(name, value, low, high, fix):
    if not (isinstance(value, numbers.Integral) and low <= value <= high):
        raise ValueError(f"{name}={value!r} must be an int in [{low}, {high}]; {fix}")
    return int(value)


class ManifoldRanking(BaseEstimator):
    """Rank database rows for queries by diffusion on a kNN graph.

    ``fit(X)`` builds the reciprocal kNN graph of the database rows with the
    similarities ``[v_i^T v_j]_+^gamma`` of the released diffusion code, a zero
    diagonal and the normalized affinity ``W = D^-1/2 A D^-1/2``. A query
    ``y`` (one non-zero per row it touches) gets the manifold scores

    .. math::

        f = (1 - \\alpha) (I - \\alpha W)^{-1} y,

    and ``rank`` returns the rows of highest score. ``solver="cg"`` solves the
    system by conjugate gradient for a block of queries at once (Iscen et al.
    2017); ``solver="spectral"`` computes the top ``n_components`` eigenpairs
    ``(Lambda, U)`` of ``W`` once at fit and then applies the low-pass filter
    ``f = U h(Lambda) U^T y``, ``h(l) = (1 - alpha) / (1 - alpha l)``, to any
    number of queries (Iscen et al. 2018); ``solver="dense"`` is the exact
    closed form for small databases.

    A database row as query (``rank()``) is ``y = e_i``, and the row itself is
    left out of its results. A new row joins through its
    ``n_query_neighbors`` nearest database rows: ``y`` holds its kernel
    weights on them, as in the diffusion papers. Rows in graph components the
    query does not touch cannot receive any score: they rank last, with score
    0. A fit that fails leaves the estimator as it was.

    Parameters
    ----------
    n_neighbors : int, default=50
        Neighbours per database row before the reciprocal (mutual) filter.
    alpha : float, default=0.99
        Diffusion strength in [0, 1); read when ``rank`` runs, so it can be
        changed without refitting.
    gamma : float, default=3.0
        Exponent of the power kernel ``[v_i^T v_j]_+^gamma``.
    symmetrize : {"mutual", "sum", "max"}, default="mutual"
        ``"mutual"`` keeps an edge only when both rows are among each other's
        neighbours (the reciprocal graph of the ranking papers).
    solver : {"cg", "spectral", "dense"}, default="cg"
        ``"cg"``: conjugate gradient, ``max_iter`` iterations at most per block
        of queries; ``"spectral"``: low-rank filter over ``n_components``
        eigenpairs computed at fit; ``"dense"``: exact solve, small n only.
    n_components : int, default=100
        Eigenpairs of the spectral solver; below the number of database rows,
        and well above the number of connected components of the graph (each
        takes an eigenpair with eigenvalue 1; ``fit`` warns when they fill
        all of them).
    n_query_neighbors : int, default=10
        Database rows a new query is attached to.
    max_iter : int, default=20
        Conjugate-gradient iterations per block of queries, a fixed budget as
        in the released code (no convergence warning): the top of a ranking
        settles long before the residual is small.
    tol : float, default=1e-6
        Relative residual at which conjugate gradient stops earlier.
    metric : {"cosine", "ip", "euclidean"}, default="cosine"
        Similarity of the neighbour search; the power kernel needs
        ``"cosine"`` (unit-normalized descriptors) or ``"ip"``.
    kernel : {"power", "gaussian", "binary"}, default="power"
        Edge weights (:class:`~skssl.graph.KNNGraph`); ``"gaussian"`` with
        ``metric="euclidean"`` suits raw features.
    backend : {"auto", "exact", "hnsw", "ivf", "gpu", "sklearn", "precomputed"}, \
default="auto"
        kNN search backend (:func:`skssl.graph.resolve_backend`). With
        ``"precomputed"``, ``fit`` takes a square affinity and ``rank`` the
        (n_queries, n_database) affinities of new queries.
    index_params : dict, default=None
        Search settings of the approximate backends (see
        :class:`~skssl.graph.KNNGraph`).
    n_jobs : int, default=None
        Threads for the neighbour search.
    random_state : int, RandomState instance or None, default=None
        Seed of the eigensolver's start vector and of IVF training.
    verbose : int, default=0
        Progress bars for the neighbour search and the query blocks.

    Attributes
    ----------
    graph_ : skssl.graph.KNNGraph
        The fitted graph; new queries attach through ``graph_.query``.
    normalized_affinity_ : scipy.sparse.csr_matrix of shape (n_samples, n_samples)
        ``D^-1/2 A D^-1/2`` of the graph's affinity ``A``.
    component_labels_ : ndarray of shape (n_samples,)
        Connected component of each database row.
    solver_ : str
        The solver of the fit; ``rank`` uses it whatever ``solver`` becomes.
    eigenvalues_ : ndarray of shape (n_components,) or None
        Largest eigenvalues of ``normalized_affinity_``, increasing
        (``solver="spectral"`` only, else None).
    eigenvectors_ : ndarray of shape (n_samples, n_components) or None
        Their eigenvectors (``solver="spectral"`` only, else None).
    n_samples_fit_ : int
        Database rows.
    n_features_in_ : int
        Number of features seen during fit.
    timings_ : dict
        Seconds of each phase of ``fit``: ``"index"``, ``"search"``,
        ``"affinity"`` and ``"eigenpairs"`` (0 unless spectral).

    See Also
    --------
    skssl.LabelSpreadingCG : the same diffusion with class labels as queries.

    References
    ----------
    .. [1] D. Zhou, J. Weston, A. Gretton, O. Bousquet and B. Schölkopf,
       "Ranking on data manifolds", NIPS 2003.
    .. [2] A. Iscen, G. Tolias, Y. Avrithis, T. Furon and O. Chum, "Efficient
       diffusion on region manifolds: recovering small objects with compact
       CNN representations", CVPR 2017.
    .. [3] A. Iscen, Y. Avrithis, G. Tolias, T. Furon and O. Chum, "Fast
       spectral ranking for similarity search", CVPR 2018.
    .. [4] A. Iscen, G. Tolias, Y. Avrithis and O. Chum, "Mining on manifolds:
       metric learning without labels", CVPR 2018.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_moons
    >>> from skssl.ranking import ManifoldRanking
    >>> X, y = make_moons(300, noise=0.05, random_state=0)
    >>> X = X - X.mean(axis=0)
    >>> ranking = ManifoldRanking(n_neighbors=10, metric="euclidean",
    ...                           kernel="gaussian").fit(X)
    >>> scores, indices = ranking.rank(n_results=20)
    >>> scores.shape, bool((np.diff(scores, axis=1) <= 0).all())
    ((300, 20), True)
    >>> float((y[indices] == y[:, None]).mean()) > 0.95
    True
    >>> scores, indices = ranking.rank([[0.0, 0.8]], n_results=5)
    >>> indices.shape
    (1, 5)
    """

    _parameter_constraints = {
        **{name: KNNGraph._parameter_constraints[name] for name in GRAPH_PARAMS},
        "alpha": [Interval(numbers.Real, 0, 1, closed="left")],
        "solver": [StrOptions(set(SOLVERS))],
        "n_components": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_query_neighbors": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, 1, closed="neither")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_neighbors=50,
        *,
        alpha=0.99,
        gamma=3.0,
        symmetrize="mutual",
        solver="cg",
        n_components=100,
        n_query_neighbors=10,
        max_iter=20,
        tol=1e-6,
        metric="cosine",
        kernel="power",
        backend="auto",
        index_params=None,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.n_neighbors = n_neighbors
        self.alpha = alpha
        self.gamma = gamma
        self.symmetrize = symmetrize
        self.solver = solver
        self.n_components = n_components
        self.n_query_neighbors = n_query_neighbors
        self.max_iter = max_iter
        self.tol = tol
        self.metric = metric
        self.kernel = kernel
        self.backend = backend
        self.index_params = index_params
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Build the database graph (and, for the spectral solver, its eigenpairs).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Database rows (descriptors), or a square affinity with
            ``backend="precomputed"``.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : ManifoldRanking
        """
        with restore_on_failure(self):
            return self._fit(X)

    def _fit(self, X):
        from scipy.sparse.csgraph import connected_components

        X = validate_data(
            self,
            X,
            accept_sparse=["csr", "csc", "coo"],
            dtype=[np.float64, np.float32],
            ensure_min_samples=2,
        )
        n = X.shape[0]
        if self.solver == "spectral" and self.n_components >= n:
            raise ValueError(
                f"n_components={self.n_components} must be smaller than the {n} "
                "database rows for solver='spectral'; lower n_components, or use "
                "solver='cg' (or 'dense') for the exact ranking."
            )
        seed = seed_from(self.random_state)
        graph = KNNGraph(
            **{name: getattr(self, name) for name in GRAPH_PARAMS},
            random_state=seed,
            verbose=self.verbose,
        ).fit(X)
        W, _ = normalize_affinity(graph.affinity_)
        _, components = connected_components(W, directed=False)
        eigenpairs = (None, None)
        start = time.perf_counter()
        if self.solver == "spectral":
            eigenpairs = spectral_eigenpairs(
                W, self.n_components, random_state=seed, stacklevel=5
            )
        eigen_seconds = time.perf_counter() - start

        self.graph_ = graph
        self.normalized_affinity_ = W
        self.component_labels_ = components
        self.solver_ = self.solver
        self.eigenvalues_, self.eigenvectors_ = eigenpairs
        self.n_samples_fit_ = n
        self.timings_ = {**graph.timings_, "eigenpairs": eigen_seconds}
        return self

    # --- ranking -------------------------------------------------------------

    def rank(self, X=None, *, n_results=10):
        """The ``n_results`` database rows of highest manifold score per query.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_queries, n_features), \
default=None
            New queries (with ``backend="precomputed"``, their affinities to
            the database rows). None ranks for every database row, each left
            out of its own results (for evaluation).
        n_results : int, default=10
            Rows returned per query: at most the number of database rows (minus
            one when the queries are database rows).

        Returns
        -------
        scores : ndarray of shape (n_queries, n_results)
            Manifold scores, decreasing along each row; 0 for rows the query
            cannot reach (they come last).
        indices : ndarray of shape (n_queries, n_results), int64
            The database rows.
        """
        check_is_fitted(self)
        self._validate_params()
        n = self.n_samples_fit_
        n_results = _check_count(
            "n_results",
            n_results,
            1,
            n - 1 if X is None else n,
            f"the database has {n} rows"
            + (", one of them the query itself." if X is None else "."),
        )
        Y, rows = self._query_vectors(X)
        scores = np.empty((Y.shape[1], n_results))
        indices = np.empty((Y.shape[1], n_results), dtype=np.int64)
        for lo, hi, Z, reachable in self._score_blocks(Y):
            exclude = None if rows is None else rows[lo:hi]
            scores[lo:hi], indices[lo:hi], _ = _top_rows(
                Z, reachable, n_results, exclude
            )
        return scores, indices

    def _query_vectors(self, X):
        """Right-hand sides ``y`` of the queries as an (n, n_queries) CSC matrix.

        Returns it with the database row of each query (None for new queries).
        """
        n = self.n_samples_fit_
        if X is None:
            rows = np.arange(n)
            return sp.csc_matrix((np.ones(n), (rows, rows)), shape=(n, n)), rows
        X = validate_data(
            self,
            X,
            accept_sparse=["csr", "csc", "coo"],
            dtype=[np.float64, np.float32],
            reset=False,
        )
        indices, weights = self.graph_.query(X, n_neighbors=self.n_query_neighbors)
        valid = indices >= 0
        weights = np.where(valid, weights, 0.0)
        # A query with no positive kernel weight (e.g. negative similarities
        # under the power kernel) still joins its neighbours, equally.
        empty = ~(weights.sum(axis=1) > 0)
        weights[empty] = valid[empty]
        q, k = indices.shape
        cols = np.repeat(np.arange(q), k)
        keep = weights.ravel() > 0
        Y = sp.csc_matrix(
            (weights.ravel()[keep], (indices.ravel()[keep], cols[keep])), shape=(n, q)
        )
        Y.sum_duplicates()
        return Y, None

    def _score_blocks(self, Y):
        """Manifold scores of the columns of ``Y``, a block of queries at a time.

        Yields ``(lo, hi, scores, reachable)`` for queries ``lo:hi``: scores of
        shape (n, hi - lo), 0 where ``reachable`` (rows in a component that a
        non-zero of the query lies in) is False.
        """
        from tqdm.auto import tqdm

        n, q = Y.shape
        labels = self.component_labels_
        n_comp = int(labels.max()) + 1
        block = max(1, _QUERY_BLOCK_VALUES // n)
        for lo in tqdm(
            range(0, q, block),
            desc=f"ranking ({self.solver_})",
            unit="blocks",
            disable=not self.verbose,
            file=sys.stderr,
        ):
            hi = min(q, lo + block)
            Yb = Y[:, lo:hi]
            seeded = np.zeros((n_comp, hi - lo), dtype=bool)
            seeded[
                labels[Yb.indices], np.repeat(np.arange(hi - lo), np.diff(Yb.indptr))
            ] = True
            reachable = seeded[labels]
            Z = (1.0 - self.alpha) * self._diffuse(Yb)
            yield lo, hi, np.where(reachable, Z, 0.0), reachable

    def _diffuse(self, Y):
        """``(I - alpha W)^-1 Y`` with the solver of the fit."""
        W = self.normalized_affinity_
        if self.solver_ == "spectral":
            return spectral_filter(
                (self.eigenvalues_, self.eigenvectors_), Y, alpha=self.alpha
            )
        result = solve_diffusion(
            W,
            Y.toarray(),
            alpha=self.alpha,
            solver=self.solver_,
            tol=self.tol,
            max_iter=self.max_iter,
            warn=False,
        )
        return result.solution

    # --- mining ----------------------------------------------------------------

    def mine_pairs(
        self,
        anchors=None,
        *,
        n_positives=50,
        n_negatives=50,
        k_euclidean=50,
        k_manifold=50,
    ):
        """Hard positives and negatives of anchors from manifold vs Euclidean ranks.

        With ``E(x)`` the ``k_euclidean`` nearest database rows of anchor ``x``
        in the search metric and ``M(x)`` its ``k_manifold`` rows of highest
        manifold score (the anchor itself left out of both), the hard positives
        are ``M(x) \\ E(x)`` (far in feature space, close on the manifold) and
        the hard negatives ``E(x) \\ M(x)`` (close in feature space, on another
        part of the manifold), as in "mining on manifolds" (Iscen et al. 2018).
        Rows the anchor's diffusion does not reach (score 0) are never in
        ``M(x)``.

        Parameters
        ----------
        anchors : array-like of int, default=None
            Database rows to mine for; None takes every row.
        n_positives : int, default=50
            Largest pool of positives per anchor, the highest manifold scores
            kept (50 in the released code).
        n_negatives : int, default=50
            Largest pool of negatives per anchor, the Euclidean nearest kept.
        k_euclidean : int, default=50
            Size of the Euclidean neighbourhood ``E(x)``.
        k_manifold : int, default=50
            Size of the manifold neighbourhood ``M(x)``. The released code
            takes k = 50 for both when mining positives and k = 100 for
            negatives on fine-grained data.

        Returns
        -------
        pairs : MinedPairs
            Per anchor, its positives and negatives (padded with -1) and their
            manifold scores.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.datasets import make_moons
        >>> from skssl.ranking import ManifoldRanking
        >>> X, y = make_moons(300, noise=0.05, random_state=0)
        >>> ranking = ManifoldRanking(n_neighbors=10, metric="euclidean",
        ...                           kernel="gaussian").fit(X)
        >>> pairs = ranking.mine_pairs([0, 1], n_positives=5, k_euclidean=10,
        ...                            k_manifold=30)
        >>> pairs.positives.shape, pairs.negatives.shape
        ((2, 5), (2, 10))
        """
        check_is_fitted(self)
        self._validate_params()
        n = self.n_samples_fit_
        if self.graph_.index_ is None:
            raise ValueError(
                "mine_pairs needs the features of the database rows to find their "
                "Euclidean neighbours, but the ranking was fitted with "
                "backend='precomputed'; fit it on the features instead."
            )
        if anchors is None:
            anchors = np.arange(n)
        else:
            anchors = np.asarray(anchors)
            if (
                anchors.ndim != 1
                or anchors.dtype.kind not in "iu"
                or (anchors.size and (anchors.min() < 0 or anchors.max() >= n))
            ):
                raise ValueError(
                    f"anchors must be a 1-D array of database row indices in "
                    f"[0, {n - 1}], got {np.array2string(anchors, threshold=6)}; "
                    "pass row positions, or None for every row."
                )
            anchors = anchors.astype(np.int64)
        fix = "it bounds the pool of each anchor (50 in the released code)."
        n_positives = _check_count("n_positives", n_positives, 1, np.inf, fix)
        n_negatives = _check_count("n_negatives", n_negatives, 1, np.inf, fix)
        fix = f"the database has {n} rows, one of them the anchor."
        k_euclidean = _check_count("k_euclidean", k_euclidean, 1, n - 1, fix)
        k_manifold = _check_count("k_manifold", k_manifold, 1, n - 1, fix)

        index = self.graph_.index_
        _, euclid = index.search(index.data[anchors], k_euclidean + 1)
        euclid, _ = _drop_self(euclid, euclid, k_euclidean, rows=anchors)

        # A pool can hold no more rows than the neighbourhood it comes from.
        n_positives = min(n_positives, k_manifold)
        n_negatives = min(n_negatives, k_euclidean)
        m = anchors.size
        pos = np.full((m, n_positives), -1, dtype=np.int64)
        neg = np.full((m, n_negatives), -1, dtype=np.int64)
        pos_scores = np.zeros((m, n_positives))
        neg_scores = np.zeros((m, n_negatives))
        Y = sp.csc_matrix((np.ones(m), (anchors, np.arange(m))), shape=(n, m))
        for lo, hi, Z, reachable in self._score_blocks(Y):
            top_scores, top, hit = _top_rows(Z, reachable, k_manifold, anchors[lo:hi])
            in_manifold = hit & (top_scores > 0)
            E = euclid[lo:hi]
            in_euclid = (top[:, :, None] == E[:, None, :]).any(axis=2)
            take, filled = _first_true(in_manifold & ~in_euclid, n_positives)
            pos[lo:hi] = np.where(filled, np.take_along_axis(top, take, 1), -1)
            pos_scores[lo:hi] = np.where(
                filled, np.take_along_axis(top_scores, take, 1), 0.0
            )
            close = ((E[:, :, None] == top[:, None, :]) & in_manifold[:, None, :]).any(
                axis=2
            )
            take, filled = _first_true((E >= 0) & ~close, n_negatives)
            chosen = np.take_along_axis(E, take, 1)
            neg[lo:hi] = np.where(filled, chosen, -1)
            columns = np.arange(hi - lo)[:, None]
            neg_scores[lo:hi] = np.where(
                filled, Z[np.where(filled, chosen, 0), columns], 0.0
            )
        return MinedPairs(
            anchors=anchors,
            positives=pos,
            positive_scores=pos_scores,
            negatives=neg,
            negative_scores=neg_scores,
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


def _first_true(mask, k):
    """Positions of the first ``k`` True entries of each row, in order.

    Returns ``(positions, filled)`` of shape (n_rows, k): ``filled`` is False
    where a row has fewer than ``k`` True entries (``positions`` is then 0).
    """
    width = mask.shape[1]
    order = np.argsort(~mask, axis=1, kind="stable")
    if width < k:
        order = np.pad(order, ((0, 0), (0, k - width)))
    order = order[:, :k]
    count = mask.sum(axis=1)
    filled = np.arange(k)[None, :] < count[:, None]
    return np.where(filled, order, 0), filled
