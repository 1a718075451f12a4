"""
=====================================================
Manifold ranking and mining on manifolds on two moons
=====================================================

A query at the tip of one moon, close to the other moon. Its Euclidean
nearest neighbours :math:`E(x)` spill over onto the other moon; the rows of
highest manifold score :math:`M(x)`, from a diffusion over the kNN graph
(:class:`~skssl.ManifoldRanking`), follow its own moon instead. Where
the two disagree lie the hard training pairs of "mining on manifolds": hard
positives :math:`M(x) \\setminus E(x)`, far from the query but on its moon,
and hard negatives :math:`E(x) \\setminus M(x)`, close to it but on the other
moon (:meth:`~skssl.ManifoldRanking.mine_pairs`).
"""

# %%
# Data and the query
# ------------------
# The query is the point nearest to the left tip of the lower moon. For raw
# 2-D points the graph uses Euclidean distances with a Gaussian kernel; for
# network descriptors the default cosine power kernel suits better.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_moons

from skssl.ranking import ManifoldRanking

X, y = make_moons(n_samples=600, noise=0.11, random_state=0)
query = int(np.argmin(((X - [0.05, 0.45]) ** 2).sum(axis=1)))
k = 50

# %%
# Rank and mine
# -------------
# ``rank()`` ranks for every row, each left out of its own list; the query's
# row gives its manifold neighbours. ``mine_pairs`` compares them with its
# Euclidean neighbours.
ranking = ManifoldRanking(15, metric="euclidean", kernel="gaussian").fit(X)
scores, indices = ranking.rank(n_results=len(X) - 1)
manifold = indices[query, :k]
euclidean = np.argsort(((X - X[query]) ** 2).sum(axis=1))[1 : k + 1]
pairs = ranking.mine_pairs([query], k_euclidean=k, k_manifold=k)
positives = pairs.positives[0][pairs.positives[0] >= 0]
negatives = pairs.negatives[0][pairs.negatives[0] >= 0]
own = y[query]
print(f"Euclidean neighbours on the query's moon: {np.mean(y[euclidean] == own):.0%}")
print(f"manifold neighbours on the query's moon:  {np.mean(y[manifold] == own):.0%}")
print(f"{len(positives)} hard positives, {len(negatives)} hard negatives")

# %%
# Plot
# ----
# Left: every point coloured by its manifold score for the query, relative to
# the highest (log scale), with the Euclidean and manifold neighbourhoods.
# Right: the mined pairs.
score = np.zeros(len(X))
score[indices[query]] = scores[query]
relative = np.log10(np.maximum(score / score.max(), 1e-6))
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5), layout="constrained")
ax = left
points = ax.scatter(
    X[:, 0],
    X[:, 1],
    c=relative,
    s=10,
    cmap="viridis",
)
fig.colorbar(points, ax=ax, label="log10 manifold score / highest")
ax.scatter(
    *X[euclidean].T,
    s=70,
    facecolors="none",
    edgecolors="tab:orange",
    linewidths=1.5,
    label=f"Euclidean top {k}, E(x)",
)
ax.scatter(
    *X[manifold].T,
    s=25,
    marker="s",
    facecolors="none",
    edgecolors="tab:red",
    linewidths=1.2,
    label=f"manifold top {k}, M(x)",
)
ax.set_title("Euclidean vs manifold neighbours")
ax = right
ax.scatter(X[:, 0], X[:, 1], s=8, c="lightgrey")
ax.scatter(
    *X[positives].T,
    s=45,
    marker="^",
    c="tab:green",
    label="hard positives M(x) \\ E(x)",
)
ax.scatter(
    *X[negatives].T, s=55, marker="x", c="tab:red", label="hard negatives E(x) \\ M(x)"
)
ax.set_title("Mining on manifolds")
for ax in (left, right):
    ax.scatter(
        *X[query],
        s=350,
        marker="*",
        c="gold",
        edgecolors="black",
        label="query x",
        zorder=5,
    )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(loc="lower left", fontsize=8)
plt.show()
