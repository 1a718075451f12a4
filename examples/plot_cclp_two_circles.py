"""
==========================================================
CCLP on two circles, and conditional entropy for contrast
==========================================================

The two-circles toy study of the CCLP paper (Kamnitsas et al. 2018, Figure 2),
built on :func:`~skssl.deep.losses.cclp_loss`. There is no network: each of
120 points is a free 2-D embedding ``z_i`` that gradient descent moves
directly, starting from two concentric circles. One point per circle is
labeled, and a linear classifier ``g`` is trained on those two points by
cross-entropy. No line separates two concentric circles, so the regularizer
that moves the unlabeled points has to rearrange them.

Top row: ``L_sup + w * L_CCLP`` with chains of ``S = 10`` steps. CCLP does not
look at ``g``, and its forces follow the circles. The inner circle contracts to
a compact cluster. The outer ring shrinks around it, then drains along itself,
both ways round, into its labeled point at the top. The run ends with one
compact cluster per class, and ``g`` classifies every point correctly.

Bottom row: the same start and settings, with the conditional entropy of
``g``'s predictions on the unlabeled points (Grandvalet and Bengio, 2005) in
place of ``L_CCLP``. Its forces are perpendicular to ``g``'s decision
boundary. They push each unlabeled point away from the boundary, further into
the side it is on. At the start, this is opposite to the supervised force on
both labeled points, which ``g`` puts on the wrong side. Within 50 iterations,
``g`` turns round to fit the two labeled points, but its boundary stays close
to where it started. The regularizer keeps each point on the side where it
already is, which is confirmation bias. Both circles are cut in two along the
boundary, and about half of the points stay on the wrong side.
"""

# %%
# Data: two circles, a classifier that starts wrong
# -------------------------------------------------
# The labeled points are the top of the outer circle and the bottom of the
# inner one. ``g`` starts with a horizontal boundary that puts both of them on
# the wrong side, as an untrained classifier may. Rows are ordered with the
# labeled points first, as :func:`~skssl.deep.losses.cclp_loss` expects.
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import make_circles
from torch.nn import functional as F

from skssl.deep.losses import (
    cclp_loss,
    label_propagation_closed_form,
    transition_matrix,
)

X, y = make_circles(n_samples=120, noise=0.03, factor=0.5, random_state=0)
X = 7.0 * (X - X.mean(axis=0))
labeled = [
    np.flatnonzero(y == 0)[X[y == 0, 1].argmax()],
    np.flatnonzero(y == 1)[X[y == 1, 1].argmin()],
]
order = np.r_[labeled, np.setdiff1d(np.arange(len(X)), labeled)]
X, y = X[order], y[order]
Z_start = torch.tensor(X, dtype=torch.float32)
y_labeled = torch.tensor(y[:2])


def starting_classifier():
    """``g`` predicting the inner class (1) above the x-axis, the outer (0) below."""
    g = torch.nn.Linear(2, 2)
    with torch.no_grad():
        g.weight.copy_(torch.tensor([[0.0, -0.5], [0.0, 0.5]]))
        g.bias.zero_()
    return g


# %%
# Settings: Euclidean similarity, a stretched layout, plain gradient descent
# --------------------------------------------------------------------------
# The graph uses ``similarity="euclidean"``, so ``A_ij = exp(-||z_i - z_j||^2)``.
# Stretching ``make_circles`` by 7 gives the Gaussian a width of 1/7 in the
# original units. Neighbours along a circle are then strongly connected, while
# the gap of 3.5 between the circles is out of reach. With this setting, label
# propagation on the starting layout labels every point correctly. The paper
# uses the dot product ``z_i . z_j``. On raw 2-D coordinates centred on the
# circles, the dot product makes a point most similar to the point farthest out
# in its own direction, not to its neighbours.
#
# Both runs use plain gradient descent (``torch.optim.SGD``), so the
# displacements follow the gradients, with ``lr=0.4`` and weight ``w = 10``.
# Each regularizer averages over rows (all rows for CCLP, the unlabeled ones
# for conditional entropy), while the supervised loss averages over just two
# points, and ``w = 10`` makes their forces comparable. The matrices are only
# 120 x 120, so one thread is faster than a team of threads.
n_threads = torch.get_num_threads()
torch.set_num_threads(1)

weight, learning_rate, n_iter = 10.0, 0.4, 600
snapshots = [0, 50, 150, 300, 600]


def cclp(Z, g):
    return cclp_loss(Z[:2], y_labeled, Z[2:], 2, steps=10, similarity="euclidean")


def conditional_entropy(Z, g):
    log_p = F.log_softmax(g(Z[2:]), dim=1)
    return -(log_p.exp() * log_p).sum(dim=1).mean()


def total_loss(Z, g, regularizer):
    """Return ``L_sup`` on the labeled rows and ``w`` times the regularizer."""
    return F.cross_entropy(g(Z[:2]), y_labeled), weight * regularizer(Z, g)


def snapshot(Z, g, regularizer):
    """Layout, classifier and minus the gradient of each term w.r.t. the layout."""
    Z = Z.detach().requires_grad_()
    supervised, regularization = total_loss(Z, g, regularizer)
    (grad_sup,) = torch.autograd.grad(supervised, Z)
    (grad_reg,) = torch.autograd.grad(regularization, Z)
    return {
        "Z": Z.detach().numpy().copy(),
        "W": g.weight.detach().numpy().copy(),
        "b": g.bias.detach().numpy().copy(),
        "force_sup": -grad_sup.numpy(),
        "force_reg": -grad_reg.numpy(),
    }


def train(regularizer):
    """Descend on Z and g together; return the snapshots."""
    g = starting_classifier()
    Z = torch.nn.Parameter(Z_start.clone())
    optimizer = torch.optim.SGD([Z, *g.parameters()], lr=learning_rate)
    kept = {0: snapshot(Z, g, regularizer)}
    for it in range(1, n_iter + 1):
        optimizer.zero_grad()
        sum(total_loss(Z, g, regularizer)).backward()
        optimizer.step()
        if it in snapshots:
            kept[it] = snapshot(Z, g, regularizer)
    return kept


runs = {"CCLP, S = 10": train(cclp), "conditional entropy": train(conditional_entropy)}
torch.set_num_threads(n_threads)

# %%
# What each run starts from, and how it ends
# ------------------------------------------
# The class posteriors ``Phi_U`` of label propagation (eq. 5) are computed on
# the row-normalised transition matrix ``H`` of eq. 2-3, with the Euclidean
# similarity (:func:`~skssl.deep.losses.transition_matrix`, the graph CCLP
# builds). CCLP builds on them. Conditional entropy uses ``g``'s own
# predictions instead.
H = transition_matrix(Z_start, similarity="euclidean")
phi = label_propagation_closed_form(H, F.one_hot(y_labeled, 2).float())[:, 1]
print(f"label propagation is right on {((phi > 0.5).numpy() == y[2:]).mean():.0%}")
p_start = F.softmax(starting_classifier()(Z_start[2:]), dim=1)[:, 1].detach()


def margin(s, Z):
    """``g``'s logit of class 1 minus that of class 0 at the points Z."""
    return Z @ (s["W"][1] - s["W"][0]) + s["b"][1] - s["b"][0]


for name, kept in runs.items():
    for it in snapshots[1:]:
        s = kept[it]
        correct = ((margin(s, s["Z"][2:]) > 0) == y[2:]).mean()
        print(f"{name}, iteration {it}: g is right on {correct:.0%}")

# %%
# Plot the forces and the optimization
# ------------------------------------
# Each panel shows the layout at an iteration. Stars mark the labeled points,
# and the shading shows the side of ``g``'s decision boundary (dashed) each
# point lies on. At iteration 0, unlabeled points are coloured by what the
# regularizer sees: label propagation's posterior for CCLP, and ``g``'s
# prediction for conditional entropy. Later, they are coloured by the circle
# they were drawn from, which the training never sees. Arrows are the descent
# directions (minus the gradients) of ``w`` times the regularizer (black,
# every point) and of ``L_sup`` (yellow, labeled points only). Each kind of
# arrow has one scale per row: its length is proportional to the force up to
# the 90th percentile of that kind's forces at iteration 0, and capped there.
colors = np.array(["tab:red", "tab:blue"])
# Which force, on which points, and its arrows' colour, longest length, width.
arrow_kinds = (
    ("force_reg", slice(None), "black", 1.5, 0.005),
    ("force_sup", slice(0, 2), "gold", 4.0, 0.01),
)


def draw(ax, s, colour, reference):
    """One snapshot: g's half-planes and boundary, points, stars and forces."""
    lo, hi = s["Z"].min(axis=0) - 1.0, s["Z"].max(axis=0) + 1.0
    grid = np.stack(np.meshgrid(*np.linspace(lo, hi, 200).T), axis=-1)
    ax.contourf(*grid.T, margin(s, grid).T > 0, levels=[-0.5, 0.5, 1.5],
                colors=["#fde0dd", "#deebf7"])  # fmt: skip
    ax.contour(*grid.T, margin(s, grid).T, levels=[0], colors="k", linestyles="--")
    # Hollow stars below the points, so a cluster collapsed onto one shows.
    ax.scatter(*s["Z"][:2].T, s=350, marker="*", c="white",
               edgecolors=colors[y[:2]], linewidths=2)  # fmt: skip
    ax.scatter(*s["Z"][2:].T, c=colour, s=10)
    for key, points, color, length, width in arrow_kinds:
        force = s[key][points]
        norm = np.linalg.norm(force, axis=1, keepdims=True)
        shown = norm[:, 0] > 0.05 * reference[key]  # no dots for vanishing forces
        arrows = length * force / np.maximum(norm, reference[key])
        ax.quiver(*s["Z"][points][shown].T, *arrows[shown].T, color=color,
                  angles="xy", scale_units="xy", scale=1, width=width,
                  edgecolor="k", linewidth=0.3, zorder=3)  # fmt: skip
    ax.set_aspect("equal")
    ax.tick_params(labelsize=7)


start_colours = {"CCLP, S = 10": phi, "conditional entropy": p_start}
fig, axes = plt.subplots(2, len(snapshots), figsize=(15, 6.5), layout="constrained")
for row, (name, kept) in zip(axes, runs.items(), strict=True):
    reference = {
        key: np.percentile(np.linalg.norm(kept[0][key][points], axis=1), 90)
        for key, points, *_ in arrow_kinds
    }
    for ax, it in zip(row, snapshots, strict=True):
        if it == 0:
            colour = plt.cm.coolwarm_r(start_colours[name].numpy())
        else:
            colour = colors[y[2:]]
        draw(ax, kept[it], colour, reference)
        ax.set_title(f"{name}, iteration {it}", fontsize=10)
fig.suptitle("Free 2-D embeddings of two circles, one labeled point per circle")
plt.show()
