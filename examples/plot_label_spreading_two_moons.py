"""
============================================
Label spreading on two moons, one label each
============================================

Two interleaved half circles with a single labeled point per moon.
:class:`~skssl.LabelSpreadingCG` spreads the two labels over a kNN graph of all
500 points. The figure shows the labels it infers (colour) and how sure it is
of each (marker size is ``certainty_``); the two given labels are the large
outlined stars. Certainty is highest around each given label and falls along
the moon away from it: at the far tips both labels arrive weakly and with
similar strength, so those points are the least sure, yet still labeled right.
"""

# %%
# Data: 500 points, two of them labeled
# -------------------------------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_moons

from skssl import LabelSpreadingCG

X, y_true = make_moons(n_samples=500, noise=0.1, random_state=0)
rng = np.random.default_rng(0)
y = np.full_like(y_true, -1)
labeled = [rng.choice(np.flatnonzero(y_true == c)) for c in (0, 1)]
y[labeled] = y_true[labeled]

# %%
# Fit and measure
# ---------------
clf = LabelSpreadingCG().fit(X, y)
unlabeled = y == -1
accuracy = (clf.transduction_[unlabeled] == y_true[unlabeled]).mean()
print(f"accuracy on the {unlabeled.sum()} unlabeled points: {accuracy:.3f}")
print(f"kNN backend: {clf.backend_}, conjugate-gradient iterations: {clf.n_iter_}")

# %%
# Plot the transduction
# ---------------------
# Marker area grows with certainty, so uncertain points shrink to dots.
colors = np.array(["tab:blue", "tab:orange"])
fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
for c in (0, 1):
    inferred = unlabeled & (clf.transduction_ == c)
    ax.scatter(
        X[inferred, 0],
        X[inferred, 1],
        color=colors[c],
        s=4 + 60 * clf.certainty_[inferred],
        alpha=0.7,
        linewidths=0,
        label=f"inferred class {c}",
    )
ax.scatter(
    X[labeled, 0],
    X[labeled, 1],
    c=colors[y[labeled]],
    s=400,
    marker="*",
    edgecolors="black",
    linewidths=1.5,
)
ax.scatter(
    [], [], s=200, marker="*", c="white", edgecolors="black", label="given label"
)
ax.set_title(
    f"LabelSpreadingCG, one label per moon: {accuracy:.1%} of the unlabeled "
    "points correct\n(colour: inferred label, marker size: certainty)"
)
ax.legend(loc="lower left")
ax.set_xticks([])
ax.set_yticks([])
plt.show()
