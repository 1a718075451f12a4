"""
============================================================
Embeddings of Mean Teacher with and without local clustering
============================================================

:class:`~skssl.MeanTeacherClassifier` on MNIST-1D, 3,000 training sequences
with 10 labels per digit and a small 1-D CNN. Both fits are identical (same
seed, same Mean Teacher phase) until ``lc_start_epoch``; from there the second
adds the local clustering loss, which pulls neighbouring embeddings of each
batch together (Chen et al. 2020, Figure 6).

The plots show the teacher's embeddings of held-out sequences in the plane of
their first two principal components, coloured by their true digit, with the
test accuracy in the title; the curve shows ``lc_neighbours``, the share of a
batch's pairs within the cut-off, and ``lc_spread``, the median pair distance
that a collapse would drive to zero.
"""

# %%
# Two fits that differ by the local clustering term only
# ------------------------------------------------------
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.decomposition import PCA

from skssl import MeanTeacherClassifier
from skssl.datasets import load_mnist1d, mask_labels
from skssl.deep import CNN1DModule

data = load_mnist1d(4000, test_size=0.25, random_state=0)
y = mask_labels(data.y, per_class=10, random_state=0)  # -1 = unlabeled

params = dict(
    module=CNN1DModule,
    max_epochs=16,
    lc_start_epoch=6,
    lc_rampup=4,
    random_state=0,
)
fits = {
    "Mean Teacher": MeanTeacherClassifier(**params),
    "Mean Teacher + LC": MeanTeacherClassifier(local_clustering=True, **params),
}
for clf in fits.values():
    clf.fit(data.X, y)


def teacher_embedding(clf, X):
    """The teacher's features (the network that predicts)."""
    clf.teacher_.eval()
    with torch.no_grad():
        return clf.teacher_.embed(torch.as_tensor(X)).numpy()


# %%
# The test embeddings in two dimensions
# -------------------------------------
fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
for ax, (name, clf) in zip(axes, fits.items(), strict=False):
    Z = PCA(2, random_state=0).fit_transform(teacher_embedding(clf, data.X_test))
    ax.scatter(*Z.T, c=data.y_test, cmap="tab10", s=6, alpha=0.7)
    acc = clf.score(data.X_test, data.y_test)
    ax.set_title(f"{name}: test accuracy {acc:.3f}")
    ax.set_xticks([])
    ax.set_yticks([])

lc = fits["Mean Teacher + LC"].history
epochs = np.arange(1, len(lc) + 1)
ax = axes[2]
ax.plot(epochs, lc[:, "lc_neighbours"], marker=".", label="pairs within ε")
ax.set_xlabel("epoch")
ax.set_ylabel("share of pairs")
ax.axvline(params["lc_start_epoch"] + 0.5, color="grey", lw=0.8)
spread_ax = ax.twinx()
spread_ax.plot(epochs, lc[:, "lc_spread"], color="C1", marker=".", label="spread")
spread_ax.set_ylabel("median pair distance")
ax.set_title("local clustering: neighbours and spread")
fig.legend(loc="lower right", fontsize="small")
fig.tight_layout()
plt.show()
