"""
CCLP on two circles, and the conditional-entropy failure case
=============================================================

The toy study of Kamnitsas et al. (2018, Fig. 2). The points of two concentric
circles are *free* 2-D embeddings that move under the gradients of the loss,
with one labeled point per circle and a linear classifier trained on them.

CCLP (S = 10) moves points along the graph: its forces depend on the
manifold's geometry, not on the classifier's boundary, so each circle gathers
into one cluster that a line can separate. Conditional entropy minimization
(Grandvalet & Bengio 2005) instead pushes every unlabeled point away from the
current boundary, whichever side it happens to be on: its forces are
perpendicular to the boundary and can pull points of the inner circle to the
wrong side (confirmation bias).
"""

# %%
# Setup
# -----
# Negative squared distances (``similarity="euclidean"``) on coordinates
# scaled by 8: each circle is well connected along itself, barely to the other
# (at smaller scales the graph is so flat that the inner label floods both).
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import make_circles

from skssl.deep.losses import (
    _batch_transition_matrix,
    cclp_loss,
    label_propagation_closed_form,
)

X, y = make_circles(120, factor=0.45, noise=0.04, random_state=0)
X = 8.0 * X
# One labeled point per circle, both on the right-hand side.
labeled = np.array([np.argmax(X[:, 0] - 100 * y), np.argmax(X[:, 0] - 100 * (1 - y))])
order = np.r_[labeled, np.setdiff1d(np.arange(len(X)), labeled)]
X, y = X[order], y[order]
y_l = torch.as_tensor(y[:2])


def conditional_entropy(head, Z_u):
    p = torch.softmax(head(Z_u), dim=1)
    return -(p * torch.log(p + 1e-12)).sum(1).mean()


def regularizer(kind, Z, head):
    if kind == "cclp":
        return cclp_loss(Z[:2], y_l, Z[2:], 2, steps=10, similarity="euclidean")
    return conditional_entropy(head, Z[2:])


def start_forces(kind):
    torch.manual_seed(0)
    head = torch.nn.Linear(2, 2)
    Z = torch.as_tensor(X, dtype=torch.float32).requires_grad_(True)
    return -torch.autograd.grad(regularizer(kind, Z, head), Z)[0].numpy(), head


def train(kind, n_iter=300):
    torch.manual_seed(0)
    Z = torch.nn.Parameter(torch.as_tensor(X, dtype=torch.float32))
    head = torch.nn.Linear(2, 2)
    opt = torch.optim.Adam([Z, *head.parameters()], lr=0.05)
    for _ in range(n_iter):
        opt.zero_grad()
        sup = torch.nn.functional.cross_entropy(head(Z[:2]), y_l)
        (sup + regularizer(kind, Z, head)).backward()
        opt.step()
    return Z.detach().numpy(), head


# %%
# Label propagation on the initial layout
# ---------------------------------------
H = _batch_transition_matrix(torch.as_tensor(X, dtype=torch.float64), "euclidean", 1e-5)
phi_u = label_propagation_closed_form(H, torch.eye(2, dtype=torch.float64)[y[:2]])
p_class1 = np.r_[y[:2], phi_u[:, 1].numpy()]

# %%
# Train with CCLP and with conditional entropy
# --------------------------------------------
g_cclp, head0 = start_forces("cclp")
g_cer, _ = start_forces("cer")
Z_cclp, head_cclp = train("cclp")
Z_cer, head_cer = train("cer")


def predicted(head, Z):
    Z = torch.as_tensor(Z, dtype=torch.float32)
    return torch.softmax(head(Z), 1)[:, 1].detach().numpy()


def scatter(ax, Z, c, title):
    ax.scatter(Z[2:, 0], Z[2:, 1], c=c[2:], cmap="coolwarm", s=14, vmin=0, vmax=1)
    ax.scatter(Z[:2, 0], Z[:2, 1], c=y[:2], cmap="coolwarm", marker="*", s=260,
               edgecolors="k", vmin=0, vmax=1)  # fmt: skip
    ax.set_title(title, fontsize=10)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


def boundary(ax, head, Z):
    w, b = head.weight.detach().numpy(), head.bias.detach().numpy()
    dw, db = w[1] - w[0], b[1] - b[0]
    xs = np.linspace(Z[:, 0].min() - 1, Z[:, 0].max() + 1, 2)
    if abs(dw[1]) > 1e-9:
        ax.plot(xs, -(dw[0] * xs + db) / dw[1], "k--", lw=1)
    ax.set_xlim(Z[:, 0].min() - 1, Z[:, 0].max() + 1)
    ax.set_ylim(Z[:, 1].min() - 1, Z[:, 1].max() + 1)


def arrows(ax, Z, g):
    # Lengths relative to the 90th percentile, capped, so small forces show.
    norm = np.linalg.norm(g, axis=1, keepdims=True)
    ref = np.percentile(norm, 90)
    g = g / ref * np.minimum(1.0, ref / np.maximum(norm, 1e-12))
    ax.quiver(Z[:, 0], Z[:, 1], g[:, 0], g[:, 1], angles="xy", scale=10, width=0.004)


fig, axes = plt.subplots(1, 4, figsize=(16, 4.2))
scatter(axes[0], X, p_class1, "start: LP posteriors, CCLP forces (S = 10)")
arrows(axes[0], X, g_cclp)
boundary(axes[0], head0, X)
scatter(axes[1], Z_cclp, predicted(head_cclp, Z_cclp), "after training with CCLP")
boundary(axes[1], head_cclp, Z_cclp)
scatter(axes[2], X, predicted(head0, X), "start: conditional-entropy forces")
arrows(axes[2], X, g_cer)
boundary(axes[2], head0, X)
scatter(axes[3], Z_cer, predicted(head_cer, Z_cer), "after training with cond. entropy")
boundary(axes[3], head_cer, Z_cer)
fig.tight_layout()
plt.show()
