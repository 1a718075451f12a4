"""
===================================================
Accuracy against the number of labels on digits
===================================================

scikit-learn's 8x8 digits (1797 images, 10 classes) with 1 to 10 labels per
class kept and the rest hidden. :class:`~skssl.LabelSpreadingCG` and
scikit-learn's :class:`~sklearn.semi_supervised.LabelSpreading` with its kNN
kernel, both with default parameters, label the hidden images; the figure shows
the accuracy on them, as mean and spread over five random choices of labels.
"""

# %%
# Fit both methods for each number of labels and each seed
# --------------------------------------------------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.semi_supervised import LabelSpreading

from skssl import LabelSpreadingCG
from skssl.datasets import mask_labels

X, y_true = load_digits(return_X_y=True)
labels_per_class = [1, 2, 3, 5, 10]
seeds = range(5)
methods = {
    "LabelSpreadingCG": lambda: LabelSpreadingCG(),
    "sklearn LabelSpreading(knn)": lambda: LabelSpreading(kernel="knn"),
}

accuracy = {name: np.empty((len(labels_per_class), len(seeds))) for name in methods}
for i, n_labels in enumerate(labels_per_class):
    for j, seed in enumerate(seeds):
        y = mask_labels(y_true, per_class=n_labels, random_state=seed)
        unlabeled = y == -1
        for name, make in methods.items():
            pred = make().fit(X, y).transduction_
            accuracy[name][i, j] = (pred[unlabeled] == y_true[unlabeled]).mean()

for name, acc in accuracy.items():
    print(name, " ".join(f"{a:.3f}" for a in acc.mean(axis=1)))

# %%
# Plot accuracy against labels per class
# --------------------------------------
fig, ax = plt.subplots(figsize=(6.5, 4.5), layout="constrained")
for (name, acc), marker in zip(accuracy.items(), "os", strict=True):
    mean, std = acc.mean(axis=1), acc.std(axis=1)
    ax.errorbar(labels_per_class, mean, yerr=std, marker=marker, capsize=3, label=name)
ax.set_xscale("log")
ax.set_xticks(labels_per_class, [str(n) for n in labels_per_class])
ax.minorticks_off()
ax.set_xlabel("labels per class")
ax.set_ylabel("accuracy on the unlabeled images")
ax.set_title("Digits: mean ± std over 5 random label draws")
ax.grid(alpha=0.3)
ax.legend(loc="lower right")
plt.show()
