"""
================================================================
Poisson learning on two moons, and when Laplace learning is back
================================================================

Two noisy moons of 1,000 points with one labeled point per moon, the setting
Poisson learning was made for (Calder et al. 2020). All three panels use the
same kNN graph, the one :class:`~skssl.PoissonLearning` builds:

- Laplace learning (the harmonic extension of the two labels,
  :func:`~skssl.poisson.solve_laplace`) is nearly constant away from the
  labels, so the argmax is decided by tiny differences;
- the same scores with GraphLearning's mean shift (each class's mean over the
  unlabeled points taken out);
- Poisson learning, with a source and a sink at each label.

The second figure counts labels: with 1, 2, 3, 5 and 10 labels per class
(5 label draws each), Poisson learning against mean-shifted Laplace learning
and the estimator's default ``method="auto"``, which solves Poisson learning
while under 1 % of the rows are labeled (here: 1, 2, 3 and 4 labels per
class) and mean-shifted Laplace learning from there.
"""

# %%
# Data: 1,000 points, two of them labeled
# ---------------------------------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_moons

from skssl import PoissonLearning
from skssl.datasets import mask_labels
from skssl.poisson import solve_laplace

X, y_true = make_moons(n_samples=1000, noise=0.1, random_state=0)
y = mask_labels(y_true, per_class=1, random_state=0)
unlabeled = y == -1

# %%
# Three solutions on one graph
# ----------------------------
clf = PoissonLearning().fit(X, y)
print(f"method_: {clf.method_}, conjugate-gradient iterations: {clf.n_iter_}")
harmonic = solve_laplace(clf.graph_.affinity_, y, 2).solution
shifted = harmonic - harmonic[unlabeled].mean(axis=0)
panels = {
    "Laplace learning": harmonic.argmax(axis=1),
    "Laplace learning, mean-shifted": shifted.argmax(axis=1),
    "Poisson learning (the default here)": clf.transduction_,
}
fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), layout="constrained")
colors = np.array(["tab:blue", "tab:orange"])
for ax, (title, labels) in zip(axes, panels.items(), strict=True):
    accuracy = np.mean(labels[unlabeled] == y_true[unlabeled])
    print(f"{title}: {accuracy:.3f}")
    ax.scatter(*X[unlabeled].T, c=colors[labels[unlabeled]], s=5, linewidths=0)
    ax.scatter(
        *X[~unlabeled].T,
        c=colors[y[~unlabeled]],
        s=300,
        marker="*",
        edgecolors="black",
        linewidths=1.5,
    )
    ax.set_title(f"{title}\n{accuracy:.1%} of the unlabeled points correct")
    ax.set_xticks([])
    ax.set_yticks([])
plt.show()

# %%
# More labels
# -----------
# With more labels per class the near-constant matters less, and on two moons
# the mean-shifted Laplace scores overtake Poisson learning from two or three
# labels per class. ``method="auto"`` switches at 1 % of the rows labeled (5
# labels per class here), not at a number of labels per class: on 10,000 to
# 30,000 rows Poisson learning stayed ahead with 3 to 30 labels per class
# (the "auto rule", "held-out sets" and "larger n" tables of
# ``benchmarks/results/poisson.md``).
counts = (1, 2, 3, 5, 10)
methods = ("poisson", "laplace", "auto")
accuracy = {m: [] for m in methods}
for per_class in counts:
    scores = {m: [] for m in methods}
    for seed in range(5):
        y = mask_labels(y_true, per_class=per_class, random_state=seed)
        unl = y == -1
        for m in methods:
            pred = PoissonLearning(method=m).fit(X, y).transduction_
            scores[m].append(np.mean(pred[unl] == y_true[unl]))
    for m in methods:
        accuracy[m].append(np.mean(scores[m]))
    print(
        f"{per_class:>2} labels/class: "
        + ", ".join(f"{m} {accuracy[m][-1]:.3f}" for m in methods)
    )

fig, ax = plt.subplots(figsize=(6, 3.8), layout="constrained")
styles = {"poisson": "o-", "laplace": "s-", "auto": "k--"}
for m in methods:
    ax.plot(counts, accuracy[m], styles[m], label=f"method={m!r}")
ax.set_xscale("log")
ax.set_xticks(counts, [str(c) for c in counts])
ax.set_xlabel("labels per class")
ax.set_ylabel("accuracy on the unlabeled points")
ax.set_title("Two moons, mean of 5 label draws")
ax.legend()
plt.show()
