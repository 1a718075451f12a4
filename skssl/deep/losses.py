"""Pure torch loss functions shared by the deep estimators."""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = [
    "cclp_loss",
    "label_propagation_closed_form",
    "local_clustering_loss",
    "transition_matrix",
    "triplet_loss",
    "weighted_mean",
]


def weighted_mean(losses, weights):
    """``sum_i w_i l_i / B``: per-sample losses weighted, averaged over the batch.

    Rows of weight 0 (e.g. unlabeled rows without a pseudo-label) count in the
    batch size, as in the released DLP code, so the scale of the loss does not
    depend on how many rows of a batch carry a target.

    Parameters
    ----------
    losses : Tensor of shape (batch,)
    weights : Tensor of shape (batch,)

    Returns
    -------
    loss : Tensor of shape ()

    Examples
    --------
    >>> import torch
    >>> from skssl.deep.losses import weighted_mean
    >>> float(weighted_mean(torch.tensor([1.0, 3.0]), torch.tensor([1.0, 0.0])))
    0.5
    """
    return (weights * losses).sum() / max(losses.shape[0], 1)


def transition_matrix(Z, similarity="dot", eps=1e-5):
    """Row-stochastic transition matrix ``H`` of the dense graph over a batch.

    ``A_ij = exp(rho(z_i, z_j))`` row-normalized is a row softmax of the
    similarity logits, which never overflows (CCLP eq. 2-3); it is then
    smoothed as ``H <- eps / N + (1 - eps) H``. The graph :func:`cclp_loss`
    builds, exposed for analysis and plots.

    Parameters
    ----------
    Z : tensor of shape (n_rows, n_features)
    similarity : {"dot", "euclidean"}, default="dot"
        The dot product or the negative squared Euclidean distance.
    eps : float, default=1e-5

    Returns
    -------
    H : tensor of shape (n_rows, n_rows)

    Examples
    --------
    >>> import torch
    >>> from skssl.deep.losses import transition_matrix
    >>> H = transition_matrix(torch.tensor([[0.0, 0.0], [0.0, 1.0], [5.0, 5.0]]),
    ...                       "euclidean")
    >>> [round(float(v), 3) for v in H.sum(dim=1)]
    [1.0, 1.0, 1.0]
    """
    if similarity == "dot":
        logits = Z @ Z.T
    elif similarity == "euclidean":
        # -||z_i - z_j||^2 = 2 z_i.z_j - ||z_j||^2 - ||z_i||^2; the last term is
        # constant along a row and cancels in the row softmax. One matrix product
        # instead of cdist (whose square root also enters the backward pass).
        logits = 2.0 * (Z @ Z.T) - (Z * Z).sum(dim=1)[None, :]
    else:
        raise ValueError(
            f"similarity={similarity!r} is not supported; use 'dot' or 'euclidean'."
        )
    H = torch.softmax(logits, dim=1)
    n = Z.shape[0]
    return eps / n + (1.0 - eps) * H


def label_propagation_closed_form(H, Y_labeled):
    """Clamped label propagation at equilibrium, ``(I - H_UU)^-1 H_UL Y_L`` (eq. 5).

    Rows of ``H`` are ordered labeled first; solved as a linear system, which
    stays differentiable.

    Returns
    -------
    Phi_U : tensor of shape (n_unlabeled, n_classes)
    """
    n_l = Y_labeled.shape[0]
    H_uu = H[n_l:, n_l:]
    H_ul = H[n_l:, :n_l]
    eye = torch.eye(H_uu.shape[0], dtype=H.dtype, device=H.device)
    return torch.linalg.solve(eye - H_uu, H_ul @ Y_labeled)


def cclp_loss(
    Z_labeled,
    y_labeled,
    Z_unlabeled,
    n_classes,
    *,
    steps=3,
    similarity="dot",
    eps=1e-5,
    log_offset=1e-6,
    reduction="rows",
):
    """Compact Clustering via Label Propagation loss (Kamnitsas et al. 2018, eq. 9).

    Builds a dense graph over the batch's embeddings, estimates class posteriors
    of the unlabeled rows by closed-form label propagation, and pulls each class
    into one compact cluster by matching ``S`` Markov-chain transition matrices
    that stay within a class to the ideal transition matrix ``T``.

    Parameters
    ----------
    Z_labeled : tensor of shape (n_labeled, n_features)
        Embeddings of the labeled rows of the batch.
    y_labeled : tensor of shape (n_labeled,), int64
        Their class indices in ``[0, n_classes)``.
    Z_unlabeled : tensor of shape (n_unlabeled, n_features)
        Embeddings of the unlabeled rows (may be empty).
    n_classes : int
    steps : int, default=3
        Longest Markov chain ``S``.
    similarity : {"dot", "euclidean"}, default="dot"
        ``rho(z_i, z_j)``: the dot product or the negative squared Euclidean
        distance.
    eps : float, default=1e-5
        Smoothing ``H <- eps / N + (1 - eps) H``, which keeps ``I - H_UU``
        invertible.
    log_offset : float, default=1e-6
        Added inside ``log(H^(s) + log_offset)``.
    reduction : {"rows", "pairs"}, default="rows"
        How the sum over pairs is scaled. ``"pairs"`` divides by ``N^2`` as
        eq. 9 is printed; ``"rows"`` divides by ``N``, i.e. averages each row's
        cross-entropy ``-sum_j T_ij log H_ij`` over the rows, as the authors'
        released code does. Since ``sum_ij T_ij = N``, ``"pairs"`` is ``N``
        times smaller: the paper's weight ``w = 1`` was tuned with ``"rows"``,
        and with ``"pairs"`` it has no measurable effect at ``N = 200``.

    Returns
    -------
    loss : scalar tensor

    References
    ----------
    .. [1] K. Kamnitsas et al., "Semi-supervised learning via compact latent
       space clustering", ICML 2018.

    Examples
    --------
    >>> import torch
    >>> from skssl.deep.losses import cclp_loss
    >>> centers = torch.tensor([[4.0, 0.0], [0.0, 4.0]])
    >>> y = torch.tensor([0, 1])
    >>> compact = cclp_loss(centers, y, centers.repeat(5, 1), 2)
    >>> noise = torch.randn(10, 2, generator=torch.Generator().manual_seed(0))
    >>> mixed = cclp_loss(centers, y, noise, 2)
    >>> bool(compact < mixed)
    True
    """
    if steps < 1:
        raise ValueError(f"steps={steps!r} must be at least 1.")
    if reduction not in ("rows", "pairs"):
        raise ValueError(
            f"reduction={reduction!r} is not supported; use 'rows' or 'pairs'."
        )
    Z = torch.cat([Z_labeled, Z_unlabeled], dim=0)
    n = Z.shape[0]
    H = transition_matrix(Z, similarity, eps)
    Y_l = F.one_hot(y_labeled.long(), n_classes).to(Z.dtype)
    if Z_unlabeled.shape[0]:
        Phi = torch.cat([Y_l, label_propagation_closed_form(H, Y_l)], dim=0)
    else:
        Phi = Y_l
    mass = Phi.sum(dim=0)
    # A class absent from the batch has zero mass and a zero column: 0 / 1.
    T = (Phi / torch.where(mass > 0, mass, torch.ones_like(mass))) @ Phi.T
    HM = H * (Phi @ Phi.T)
    H_s = H
    total = Z.new_zeros(())
    for s in range(steps):
        if s:
            H_s = HM @ H_s
        total = total - (T * torch.log(H_s + log_offset)).sum()
    return total / (steps * (n if reduction == "rows" else n * n))


def _pair_distances(A, B):
    """Mean squared difference per dimension, ``||a - b||^2 / d``, of all pairs."""
    d = A.shape[1]
    sq = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2.0 * A @ B.T
    return sq.clamp_min(0.0) / max(d, 1)


def local_clustering_loss(Z_labeled, Z_unlabeled, epsilon, *, unit=None):
    """Local clustering loss of Chen et al. (2020), eqs. 4-5.

    Pulls together the embeddings of neighbouring labeled-unlabeled and
    unlabeled-unlabeled pairs of a batch::

        w_ij = exp(-D_ij / eps) if D_ij <= eps else 0
        L = mean_{i in L, j in U} w_ij D_ij + mean_{m != n in U} w_mn D_mn

    with ``D_ij = ||z_i - z_j||^2 / (d * unit)``: the mean squared difference
    per dimension of the ``d``-dimensional embeddings, in units of ``unit``.
    Self-pairs are left out of both the sum and the count. Labeled-labeled
    pairs are left to the supervised loss, as in the paper.

    The paper writes the squared L2 distance, its released code the mean over
    dimensions; the mean keeps ``eps`` and the loss comparable across
    embedding widths, and ``unit`` across embedding scales.

    Parameters
    ----------
    Z_labeled : Tensor of shape (n_labeled, d)
    Z_unlabeled : Tensor of shape (n_unlabeled, d)
    epsilon : float
        Cut-off ``eps`` in units of ``unit``, positive.
    unit : float or None, default=None
        Unit of distance, a constant for the gradient. None: the median of the
        batch's pair distances, so ``eps = 1`` makes about half of the pairs
        neighbours. ``MeanTeacherClassifier`` passes the median measured when
        local clustering starts and keeps it fixed, so that a shrinking
        embedding is not rescaled back; 1 gives the paper's absolute ``eps``.

    Returns
    -------
    loss : Tensor of shape ()
    neighbours : float
        Share of the pairs within the cut-off.
    spread : float
        Median of ``||z_i - z_j||^2 / d`` over the pairs (not divided by
        ``unit``): the scale of the embeddings, which a collapse drives to 0.

    References
    ----------
    .. [1] Z. Chen, B. Dutton, B. Ramachandra, T. Wu and R. R. Vatsavai,
       "Local clustering with mean teacher for semi-supervised learning",
       ICPR 2020.

    Examples
    --------
    >>> import torch
    >>> from skssl.deep.losses import local_clustering_loss
    >>> z_l = torch.tensor([[0.0, 0.0]])
    >>> z_u = torch.tensor([[1.0, 1.0], [5.0, 5.0]])
    >>> loss, share, spread = local_clustering_loss(z_l, z_u, 2.0, unit=1.0)
    >>> # pairs: D = 1 and 25 (labeled-unlabeled), 16 twice (unlabeled, both
    >>> # orders); only D = 1 is within 2: exp(-1/2) * 1 over the 2 l-u pairs
    >>> round(float(loss), 4), share, spread
    (0.3033, 0.25, 16.0)
    """
    if not epsilon > 0:
        raise ValueError(
            f"epsilon={epsilon!r} must be positive; it is the cut-off distance "
            "within which two embeddings are neighbours."
        )
    if unit is not None and not unit > 0:
        raise ValueError(
            f"unit={unit!r} must be positive or None (the batch's median distance)."
        )
    n_u = Z_unlabeled.shape[0]
    D_lu = _pair_distances(Z_labeled, Z_unlabeled).reshape(-1)
    D_uu = _pair_distances(Z_unlabeled, Z_unlabeled)
    off_diagonal = ~torch.eye(n_u, dtype=torch.bool, device=D_uu.device)
    D_uu = D_uu[off_diagonal]
    pairs = torch.cat([D_lu, D_uu]).detach()
    if pairs.numel() == 0:
        return Z_unlabeled.new_zeros(()), 0.0, 0.0
    spread = float(pairs.median())
    if unit is None:
        unit = spread
    if unit <= 0:  # most embeddings equal: nothing left to pull together
        return (D_lu.sum() + D_uu.sum()) * 0.0, 1.0, spread
    D_lu, D_uu, pairs = D_lu / unit, D_uu / unit, pairs / unit

    def term(D):
        if D.numel() == 0:
            return D.new_zeros(())
        w = torch.exp(-D / epsilon) * (D <= epsilon)
        return (w * D).mean()

    neighbours = float((pairs <= epsilon).float().mean())
    return term(D_lu) + term(D_uu), round(neighbours, 4), spread


def triplet_loss(anchor, positive, negative, weight=None, *, margin=0.5):
    """Weighted triplet loss ``w [m + ||a - p||^2 - ||a - n||^2]_+``, batch mean.

    The loss of mining on manifolds (Iscen et al. 2018) as in its released
    code: squared Euclidean distances between (unit) embeddings, each triplet
    weighted by its positive's manifold score.

    Parameters
    ----------
    anchor, positive, negative : Tensor of shape (batch, d)
        Embeddings of the triplets.
    weight : Tensor of shape (batch,), default=None
        Per-triplet weights; None weighs every triplet 1.
    margin : float, default=0.5
        How much farther the negative must be than the positive.

    Returns
    -------
    loss : Tensor of shape ()

    Examples
    --------
    >>> import torch
    >>> from skssl.deep.losses import triplet_loss
    >>> a = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    >>> p = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    >>> n = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    >>> float(triplet_loss(a, p, n, torch.tensor([1.0, 2.0])))
    1.25
    """
    if margin < 0:
        raise ValueError(
            f"margin={margin!r} must be non-negative (0.5 in the released code)."
        )
    d_pos = (anchor - positive).pow(2).sum(dim=1)
    d_neg = (anchor - negative).pow(2).sum(dim=1)
    losses = torch.clamp(margin + d_pos - d_neg, min=0.0)
    if weight is None:
        return losses.mean()
    return weighted_mean(losses, weight)
