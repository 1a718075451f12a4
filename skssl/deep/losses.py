"""Pure torch loss functions shared by the deep estimators."""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = [
    "cclp_loss",
    "label_propagation_closed_form",
    "transition_matrix",
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
        logits = -torch.cdist(Z, Z).pow(2)
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
