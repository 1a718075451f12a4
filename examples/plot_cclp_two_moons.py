"""
CCLP on two moons: one-step against multi-step Markov chains
============================================================

The toy study of Kamnitsas et al. (2018, Fig. 3). The points of two moons are
treated as *free* 2-D embeddings: they move under the gradients of the loss,
with no network in between, so we see the forces CCLP applies in latent space.
One point per class is labeled; a linear classifier is trained on them by
cross-entropy, and :func:`~skssl.deep.losses.cclp_loss` regularizes all the
points.

With chains of one step (S = 1) CCLP only pulls local neighbourhoods
together; with S = 10 the chains run along each moon, so the gradients follow
the manifold and each moon contracts into one cluster on its own side of the
boundary.
"""

# %%
# Setup
# -----
# The similarity is the negative squared distance (``similarity="euclidean"``)
# on coordinates scaled by 4: neighbours along a moon are then strongly
# connected and the two moons weakly, which is the regime where label
# propagation sees the manifold. (The dot product on raw 2-D coordinates makes
# points far from the origin dominate every row of the graph.)
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import make_moons

from skssl.deep.losses import (
    _batch_transition_matrix,
    cclp_loss,
    label_propagation_closed_form,
)

X, y = make_moons(100, noise=0.06, random_state=0)
X = 4.0 * (X - X.mean(0))
# One labeled point per class: the tip of each moon.
labeled = np.array([np.argmin(X[:, 0] + 10 * y), np.argmax(X[:, 0] - 10 * (1 - y))])
order = np.r_[labeled, np.setdiff1d(np.arange(len(X)), labeled)]
X, y = X[order], y[order]
y_l = torch.as_tensor(y[:2])


def forces(Z, steps):
    """Gradients of the supervised loss and of CCLP with respect to Z."""
    Z = torch.as_tensor(Z, dtype=torch.float32).requires_grad_(True)
    torch.manual_seed(0)
    head = torch.nn.Linear(2, 2)  # the classifier as training starts
    sup = torch.nn.functional.cross_entropy(head(Z[:2]), y_l)
    g_sup = torch.autograd.grad(sup, Z)[0]
    cclp = cclp_loss(Z[:2], y_l, Z[2:], 2, steps=steps, similarity="euclidean")
    g_cclp = torch.autograd.grad(cclp, Z)[0]
    return -g_sup.numpy(), -g_cclp.numpy()


def train(steps, n_iter=300, weight=1.0):
    """Move the embeddings and fit the linear classifier; snapshots of Z."""
    torch.manual_seed(0)
    Z = torch.nn.Parameter(torch.as_tensor(X, dtype=torch.float32))
    head = torch.nn.Linear(2, 2)
    opt = torch.optim.Adam([Z, *head.parameters()], lr=0.02)
    for _ in range(n_iter):
        opt.zero_grad()
        sup = torch.nn.functional.cross_entropy(head(Z[:2]), y_l)
        cclp = cclp_loss(Z[:2], y_l, Z[2:], 2, steps=steps, similarity="euclidean")
        (sup + weight * cclp).backward()
        opt.step()
    return Z.detach().numpy(), head


# %%
# Label propagation on the initial layout, and the initial forces
# ---------------------------------------------------------------
H = _batch_transition_matrix(torch.as_tensor(X, dtype=torch.float64), "euclidean", 1e-5)
phi_u = label_propagation_closed_form(H, torch.eye(2, dtype=torch.float64)[y[:2]])
p_class1 = np.r_[y[:2], phi_u[:, 1].numpy()]
g_sup, g_cclp_1 = forces(X, steps=1)
_, g_cclp_10 = forces(X, steps=10)

# %%
# Optimize with S = 1 and with S = 10
# -----------------------------------
Z1, head1 = train(steps=1)
Z10, head10 = train(steps=10)


def boundary(ax, head, Z):
    w, b = head.weight.detach().numpy(), head.bias.detach().numpy()
    dw, db = w[1] - w[0], b[1] - b[0]
    xs = np.linspace(Z[:, 0].min() - 1, Z[:, 0].max() + 1, 2)
    if abs(dw[1]) > 1e-9:
        ax.plot(xs, -(dw[0] * xs + db) / dw[1], "k--", lw=1)


def scatter(ax, Z, c, title):
    ax.scatter(Z[2:, 0], Z[2:, 1], c=c[2:], cmap="coolwarm", s=14, vmin=0, vmax=1)
    ax.scatter(Z[:2, 0], Z[:2, 1], c=y[:2], cmap="coolwarm", marker="*", s=260,
               edgecolors="k", vmin=0, vmax=1)  # fmt: skip
    ax.set_title(title, fontsize=10)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


def predicted(head, Z):
    Z = torch.as_tensor(Z, dtype=torch.float32)
    return torch.softmax(head(Z), 1)[:, 1].detach().numpy()


def arrows(ax, Z, g, color, scale, width):
    # Lengths relative to the 90th percentile, capped, so small forces show.
    norm = np.linalg.norm(g, axis=1, keepdims=True)
    g = g / np.percentile(norm, 90) * np.minimum(1.0, np.percentile(norm, 90) / norm)
    ax.quiver(Z[:, 0], Z[:, 1], g[:, 0], g[:, 1], color=color, angles="xy",
              scale=scale, width=width)  # fmt: skip


fig, axes = plt.subplots(1, 4, figsize=(16, 4.2))
for ax, g, s in ((axes[0], g_cclp_1, 1), (axes[1], g_cclp_10, 10)):
    scatter(ax, X, p_class1, f"start: LP posteriors, forces with S = {s}")
    arrows(ax, X, g, "k", 8, 0.004)
    arrows(ax, X[:2], g_sup[:2], "tab:orange", 4, 0.012)
for ax, Z, head, s in ((axes[2], Z1, head1, 1), (axes[3], Z10, head10, 10)):
    scatter(ax, Z, predicted(head, Z), f"after training with S = {s}")
    boundary(ax, head, Z)
fig.tight_layout()
plt.show()
