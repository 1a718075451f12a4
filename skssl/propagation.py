"""Label spreading on kNN graphs solved by conjugate gradient.

The functions here turn labels into diffusion right-hand sides and diffusion
results into label distributions, certainties and class weights; they are
shared by :class:`LabelSpreadingCG` and the deep estimators.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._validation import encode_ssl_targets
from .graph import (
    BACKENDS,
    KERNELS,
    METRICS,
    SYMMETRIZE,
    KNNResult,
    build_graph,
    kernel_weights,
    local_scales,
    normalize_affinity,
)
from .solvers import conjugate_gradient

__all__ = [
    "LabelSpreadingCG",
    "certainty",
    "class_mass_normalize",
    "class_weights",
    "diffuse",
    "label_distributions",
    "label_matrix",
    "unreachable_rows",
]


def label_matrix(y_encoded, n_classes):
    """Right-hand side ``Y`` of the diffusion: ``1 / |L_c|`` on labeled rows.

    Dividing each class column by its number of labels keeps a class with many
    labels from flooding the graph (as in the released DLP code).

    Parameters
    ----------
    y_encoded : ndarray of shape (n_samples,)
        Class indices, -1 for unlabeled rows.
    n_classes : int

    Returns
    -------
    Y : ndarray of shape (n_samples, n_classes)
    """
    y_encoded = np.asarray(y_encoded)
    labeled = np.flatnonzero(y_encoded >= 0)
    counts = np.bincount(y_encoded[labeled], minlength=n_classes).astype(float)
    Y = np.zeros((y_encoded.shape[0], n_classes))
    Y[labeled, y_encoded[labeled]] = 1.0 / counts[y_encoded[labeled]]
    return Y


def diffuse(
    W,
    y_encoded,
    n_classes,
    *,
    alpha=0.99,
    tol=1e-6,
    max_iter=1000,
    x0=None,
    warn=True,
    stacklevel=2,
):
    """Solve ``(I - alpha D^-1/2 W D^-1/2) Z = Y`` for all classes at once.

    Parameters
    ----------
    W : sparse matrix of shape (n_samples, n_samples)
        Symmetric affinity with zero diagonal (:func:`skssl.graph.build_graph`).
    y_encoded : ndarray of shape (n_samples,)
        Class indices, -1 for unlabeled rows.
    n_classes : int
    alpha, tol, max_iter, x0, warn, stacklevel
        As in :func:`skssl.solvers.conjugate_gradient`.

    Returns
    -------
    Z : ndarray of shape (n_samples, n_classes)
        Raw diffusion scores.
    result : skssl.solvers.CGResult
    """
    W_norm, _ = normalize_affinity(W)
    Y = label_matrix(y_encoded, n_classes)
    result = conjugate_gradient(
        W_norm,
        Y,
        alpha=alpha,
        tol=tol,
        max_iter=max_iter,
        x0=x0,
        warn=warn,
        stacklevel=stacklevel + 1,
    )
    return result.solution, result


def class_mass_normalize(Z):
    """Divide each class column of ``Z`` by its total mass (Zhu et al. 2003).

    With few labels and ``alpha`` near 1, the diffusion's dominant component is
    proportional to the degrees of the labeled rows, so a class whose seeds sit
    in a dense region floods the graph. Equalising the column masses removes
    that bias; it is what keeps one-label-per-class problems stable.

    Examples
    --------
    >>> import numpy as np
    >>> from skssl.propagation import class_mass_normalize
    >>> class_mass_normalize(np.array([[3.0, 1.0], [1.0, 1.0]])).tolist()
    [[0.75, 0.5], [0.25, 0.5]]
    """
    Z = np.maximum(np.asarray(Z, dtype=np.float64), 0.0)
    mass = Z.sum(axis=0)
    return Z / np.where(mass > 0, mass, 1.0)


def unreachable_rows(W, labeled):
    """Rows of the graph ``W`` in a connected component without any labeled row.

    Diffusion cannot reach them whatever the number of iterations, unlike rows
    that are merely far away when the solve stops early.

    Parameters
    ----------
    W : sparse matrix of shape (n_samples, n_samples)
    labeled : ndarray of shape (n_samples,), bool

    Returns
    -------
    mask : ndarray of shape (n_samples,), bool
    """
    from scipy.sparse.csgraph import connected_components

    _, component = connected_components(W, directed=False)
    seeded = np.zeros(component.max() + 1, dtype=bool)
    seeded[component[labeled]] = True
    return ~seeded[component]


def label_distributions(Z):
    """Row-normalize non-negative diffusion scores into class distributions.

    Rows with no positive score (points no label reaches) become uniform.

    Returns
    -------
    P : ndarray of shape (n_samples, n_classes)
        Rows sum to 1.
    unreachable : ndarray of shape (n_samples,), bool
    """
    Z = np.maximum(np.asarray(Z, dtype=np.float64), 0.0)
    mass = Z.sum(axis=1)
    unreachable = ~(mass > 0)
    P = np.empty_like(Z)
    P[~unreachable] = Z[~unreachable] / mass[~unreachable, None]
    P[unreachable] = 1.0 / Z.shape[1]
    return P, unreachable


def certainty(P):
    """Certainty ``omega_i = 1 - H(p_i) / log C`` of each distribution (DLP eq. 11).

    1 for a one-hot row, 0 for a uniform one; ``0 * log 0`` counts as 0.

    Examples
    --------
    >>> import numpy as np
    >>> from skssl.propagation import certainty
    >>> certainty(np.array([[1.0, 0.0], [0.5, 0.5]])).tolist()
    [1.0, 0.0]
    """
    P = np.asarray(P, dtype=np.float64)
    n_classes = P.shape[1]
    if n_classes < 2:
        return np.ones(P.shape[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(P > 0, P * np.log(P), 0.0)
    entropy = -plogp.sum(axis=1)
    return np.clip(1.0 - entropy / np.log(n_classes), 0.0, 1.0)


def class_weights(labels, n_classes):
    """Class-balance weights ``zeta_j`` proportional to ``1 / |L_j + U_j|``.

    Normalized to mean 1 over the classes present; an absent class gets 0
    instead of a division by zero.

    Parameters
    ----------
    labels : ndarray of shape (n_samples,)
        Labels and pseudo-labels of all rows, as class indices.
    n_classes : int

    Returns
    -------
    zeta : ndarray of shape (n_classes,)
    """
    counts = np.bincount(np.asarray(labels), minlength=n_classes).astype(float)
    present = counts > 0
    zeta = np.zeros(n_classes)
    zeta[present] = 1.0 / counts[present]
    if present.any():
        zeta[present] /= zeta[present].mean()
    return zeta


class LabelSpreadingCG(ClassifierMixin, BaseEstimator):
    """Label spreading on a kNN graph, solved by conjugate gradient.

    Builds a sparse kNN affinity ``W`` of all rows (labeled and unlabeled) with
    faiss, normalizes it symmetrically, and solves the diffusion system
    ``(I - alpha D^-1/2 W D^-1/2) Z = Y`` for all classes in one block
    conjugate-gradient solve (Zhou et al. 2004; Iscen et al. 2019). Unlike
    :class:`sklearn.semi_supervised.LabelSpreading`, it never forms a dense
    matrix and runs to a relative tolerance, so it scales to millions of rows.

    New points are labeled by attaching them to their ``n_neighbors`` nearest
    fitted rows and averaging those rows' label distributions, weighted by the
    same affinity kernel.

    Parameters
    ----------
    n_neighbors : int, default=7
        Neighbours per row in the kNN graph.
    alpha : float, default=0.99
        Diffusion strength in [0, 1): the share of a row's score that comes
        from its neighbours rather than from its own label.
    metric : {"euclidean", "cosine", "ip"}, default="euclidean"
        Metric of the neighbour search: ``"cosine"`` suits embeddings,
        ``"euclidean"`` raw features.
    kernel : {"gaussian", "power", "binary"}, default="gaussian"
        Edge weights: ``"gaussian"`` is ``exp(-d_ij^2 / (sigma_i sigma_j))`` with
        local scaling; ``"power"`` is ``[v_i^T v_j]_+^gamma`` (DLP eq. 9, needs
        ``metric="cosine"`` or ``"ip"``); ``"binary"`` is 1 per edge.
    gamma : float, default=3.0
        Exponent of the power kernel.
    symmetrize : {"sum", "max", "mutual"}, default="sum"
        ``W = A + A^T``, ``max(A, A^T)`` or mutual neighbours only.
    backend : {"auto", "exact", "hnsw", "ivf", "gpu", "sklearn", "precomputed"}, \
default="auto"
        kNN search backend; ``"auto"`` picks exact faiss search below 200,000
        rows, HNSW above, a GPU when faiss-gpu sees one, and scikit-learn for
        sparse X. With ``"precomputed"``, X is a square affinity matrix at fit
        time and an (n_queries, n_fitted) affinity at predict time.
    tol : float, default=1e-6
        Relative residual at which conjugate gradient stops.
    max_iter : int, default=10000
        Largest number of conjugate-gradient iterations.
    class_mass_normalization : bool, default=True
        Divide each class's diffusion scores by their total before taking
        distributions, so classes whose few labels sit in dense regions do not
        flood the graph (see :func:`class_mass_normalize`).
    n_jobs : int, default=None
        Threads for the neighbour search.
    random_state : int, RandomState instance or None, default=None
        Seed for approximate (IVF) index training.
    verbose : int, default=0
        Show a progress bar for the neighbour search and a solver summary.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels (the unlabeled marker -1 excluded).
    transduction_ : ndarray of shape (n_samples,)
        Label of every fitted row; labeled rows keep their given label.
    label_distributions_ : ndarray of shape (n_samples, n_classes)
        Class distribution of every fitted row; rows sum to 1.
    certainty_ : ndarray of shape (n_samples,)
        ``1 - H(p_i) / log C``: 1 for a sure row, 0 for a uniform one.
    n_iter_ : int
        Conjugate-gradient iterations run.
    residuals_ : list of float
        Relative residual before and after each iteration.
    backend_ : str
        The kNN backend used.
    n_features_in_ : int
        Number of features seen during fit.

    See Also
    --------
    sklearn.semi_supervised.LabelSpreading : dense iterative label spreading.
    skssl.DeepLabelPropagationClassifier : the same diffusion over a network's
        embeddings, used to train the network.

    References
    ----------
    .. [1] D. Zhou, O. Bousquet, T. N. Lal, J. Weston and B. Schölkopf,
       "Learning with local and global consistency", NIPS 2004.
    .. [2] A. Iscen, G. Tolias, Y. Avrithis and O. Chum, "Label propagation for
       deep semi-supervised learning", CVPR 2019.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_moons
    >>> from skssl import LabelSpreadingCG
    >>> X, y_true = make_moons(300, noise=0.05, random_state=0)
    >>> y = np.full_like(y_true, -1)
    >>> y[[np.flatnonzero(y_true == c)[0] for c in (0, 1)]] = [0, 1]
    >>> clf = LabelSpreadingCG().fit(X, y)
    >>> float((clf.transduction_ == y_true).mean()) > 0.95
    True
    >>> clf.predict([[0.0, 1.0], [1.0, -0.5]]).tolist()
    [0, 1]
    """

    _parameter_constraints = {
        "n_neighbors": [Interval(numbers.Integral, 1, None, closed="left")],
        "alpha": [Interval(numbers.Real, 0, 1, closed="left")],
        "metric": [StrOptions(set(METRICS))],
        "kernel": [StrOptions(set(KERNELS))],
        "gamma": [Interval(numbers.Real, 0, None, closed="neither")],
        "symmetrize": [StrOptions(set(SYMMETRIZE))],
        "backend": [StrOptions(set(BACKENDS) | {"precomputed"})],
        "tol": [Interval(numbers.Real, 0, None, closed="neither")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "class_mass_normalization": ["boolean"],
        "n_jobs": [numbers.Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        n_neighbors=7,
        alpha=0.99,
        metric="euclidean",
        kernel="gaussian",
        gamma=3.0,
        symmetrize="sum",
        backend="auto",
        tol=1e-6,
        max_iter=10000,
        class_mass_normalization=True,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.n_neighbors = n_neighbors
        self.alpha = alpha
        self.metric = metric
        self.kernel = kernel
        self.gamma = gamma
        self.symmetrize = symmetrize
        self.backend = backend
        self.tol = tol
        self.max_iter = max_iter
        self.class_mass_normalization = class_mass_normalization
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    def _seed(self):
        rs = self.random_state
        if rs is None or isinstance(rs, numbers.Integral):
            return rs
        return int(rs.randint(np.iinfo(np.int32).max))

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Build the graph over all rows of X and diffuse the labels of y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            All rows, labeled and unlabeled (or a square affinity with
            ``backend="precomputed"``).
        y : array-like of shape (n_samples,)
            Labels, ``-1`` for unlabeled rows.

        Returns
        -------
        self : LabelSpreadingCG
        """
        precomputed = self.backend == "precomputed"
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc", "coo"],
            dtype=[np.float64, np.float32],
            ensure_min_samples=2,
            y_numeric=False,
        )
        if precomputed and X.shape[0] != X.shape[1]:
            raise ValueError(
                f"backend='precomputed' needs a square affinity matrix X, got shape "
                f"{X.shape}; pass the (n_samples, n_samples) affinity."
            )
        if self.kernel == "power" and self.metric == "euclidean" and not precomputed:
            raise ValueError(
                "kernel='power' needs similarities but metric='euclidean'; use "
                "metric='cosine' with kernel='power', or kernel='gaussian'."
            )
        classes, y_enc = encode_ssl_targets(y)
        n_samples = X.shape[0]
        if not precomputed and self.n_neighbors >= n_samples:
            raise ValueError(
                f"n_neighbors={self.n_neighbors} must be smaller than n_samples="
                f"{n_samples}; lower n_neighbors."
            )
        W, knn = build_graph(
            X,
            self.n_neighbors,
            metric=self.metric,
            kernel=self.kernel,
            gamma=self.gamma,
            symmetrize=self.symmetrize,
            backend=self.backend,
            n_jobs=self.n_jobs,
            random_state=self._seed(),
            verbose=self.verbose,
        )
        Z, result = diffuse(
            W,
            y_enc,
            len(classes),
            alpha=self.alpha,
            tol=self.tol,
            max_iter=self.max_iter,
            stacklevel=3,
        )
        if self.class_mass_normalization:
            Z = class_mass_normalize(Z)
        P, _ = label_distributions(Z)
        labeled = y_enc >= 0
        # Given labels are kept: a labeled row's distribution is its label.
        P[labeled] = np.eye(len(classes))[y_enc[labeled]]
        unreachable = unreachable_rows(W, labeled)
        if unreachable.any():
            warnings.warn(
                f"{int(unreachable.sum())} of {n_samples} samples are not connected "
                "to any labeled sample in the kNN graph; they get a uniform label "
                "distribution and certainty 0. Raise n_neighbors to connect them.",
                UserWarning,
                stacklevel=3,
            )
        backend = "precomputed" if knn is None else knn.backend
        if self.verbose:
            print(
                f"[LabelSpreadingCG] backend={backend} edges={W.nnz} "
                f"cg_iter={result.n_iter} residual={result.residuals[-1]:.2e}"
            )

        self.classes_ = classes
        self.label_distributions_ = P
        self.transduction_ = classes[P.argmax(axis=1)]
        self.certainty_ = certainty(P)
        self.n_iter_ = result.n_iter
        self.residuals_ = result.residuals
        self.backend_ = backend
        self._index = None if knn is None else knn.index
        if self.kernel == "gaussian" and knn is not None:
            self._sigma = local_scales(knn)
        return self

    def predict_proba(self, X):
        """Class distributions of new rows from their neighbours in the fitted data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_queries, n_features)
            New rows (or, with ``backend="precomputed"``, their affinities to the
            fitted rows, of shape (n_queries, n_fitted)).

        Returns
        -------
        proba : ndarray of shape (n_queries, n_classes)
            Columns follow ``classes_``; rows sum to 1.
        """
        check_is_fitted(self)
        X = validate_data(
            self,
            X,
            accept_sparse=["csr", "csc", "coo"],
            dtype=[np.float64, np.float32],
            reset=False,
        )
        F = self.label_distributions_
        if self.backend_ == "precomputed":
            A = sp.csr_matrix(X)
            if A.nnz and A.data.min() < 0:
                raise ValueError(
                    "a precomputed affinity must be non-negative; clip it first."
                )
            mass = np.asarray(A @ F)
        else:
            k = min(self.n_neighbors, F.shape[0])
            scores, indices = self._index.search(X, k)
            sigma_q = None
            if self.kernel == "gaussian":
                sigma_q = local_scales(
                    KNNResult(indices, scores, self._index.metric, self.backend_)
                )
            w = kernel_weights(
                indices,
                scores,
                metric=self._index.metric,
                kernel=self.kernel,
                gamma=self.gamma,
                sigma_query=sigma_q,
                sigma_ref=getattr(self, "_sigma", None),
            )
            # A query whose every weight vanished (e.g. only negative cosine
            # similarities) falls back to an unweighted vote of its neighbours.
            empty = ~(w.sum(axis=1) > 0)
            w[empty] = (indices[empty] >= 0).astype(float)
            mass = np.einsum("qk,qkc->qc", w, F[np.where(indices >= 0, indices, 0)])
        P, _ = label_distributions(mass)
        return P

    def predict(self, X):
        """Most probable class of each new row.

        Returns
        -------
        y : ndarray of shape (n_queries,)
            Labels from ``classes_``.
        """
        check_is_fitted(self)
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags
