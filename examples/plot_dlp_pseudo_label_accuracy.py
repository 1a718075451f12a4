"""
=====================================================
Pseudo-label accuracy of deep label propagation
=====================================================

:class:`~skssl.DeepLabelPropagationClassifier` trains a network on 10 labels
per digit of scikit-learn's 8x8 digits. After a few supervised warm-up epochs
it builds, every epoch, a kNN graph of the network's embeddings of all
training images and diffuses the labels over it; the diffused labels are the
pseudo-labels of the next epoch.

:class:`~skssl.deep.PseudoLabelAccuracy` is given the hidden labels for
monitoring only and records, per epoch, how accurate the pseudo-labels are on
the unlabeled images and how accurate the network's own predictions are on the
same images (Iscen et al. 2019, Figure 4). A small callback adds the accuracy
on held-out test images. The dashed line is the same network trained on the
labeled images only.
"""

# %%
# Train with the monitoring callbacks
# -----------------------------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from skorch.callbacks import Callback

from skssl import DeepLabelPropagationClassifier
from skssl.datasets import mask_labels
from skssl.deep import PseudoLabelAccuracy, SemiSupervisedNet

X, y_all = load_digits(return_X_y=True)
X = (X / 16.0).astype(np.float32)
X, X_test, y_true, y_test = train_test_split(
    X, y_all, test_size=0.3, stratify=y_all, random_state=0
)
y = mask_labels(y_true, per_class=10, random_state=0)  # -1 = unlabeled


class TestAccuracy(Callback):
    """Record the accuracy on held-out rows after each epoch."""

    def __init__(self, X_test, y_test):
        self.X_test = X_test
        self.y_test = y_test

    def on_epoch_end(self, net, **kwargs):
        net.history.record("test_acc", net.score(self.X_test, self.y_test))


params = dict(max_epochs=30, random_state=0)
dlp = DeepLabelPropagationClassifier(
    n_warmup_epochs=8,
    callbacks=[
        ("pseudo_label_acc", PseudoLabelAccuracy(y_true)),
        ("test_acc", TestAccuracy(X_test, y_test)),
    ],
    **params,
).fit(X, y)
supervised = SemiSupervisedNet(**params).fit(X, y)

history = dlp.history
epochs = history[:, "epoch"]
pseudo = [row.get("pseudo_label_acc", np.nan) for row in history]
print(
    f"test accuracy: DLP {dlp.score(X_test, y_test):.3f}, "
    f"labeled rows only {supervised.score(X_test, y_test):.3f}"
)

# %%
# Plot the three accuracies per epoch
# -----------------------------------
fig, ax = plt.subplots(figsize=(6.5, 4.5), layout="constrained")
ax.plot(epochs, pseudo, marker=".", label="pseudo-labels (diffusion)")
ax.plot(epochs, history[:, "network_acc"], label="network predictions")
ax.plot(epochs, history[:, "test_acc"], label="DLP, test images")
baseline = supervised.score(X_test, y_test)
ax.axhline(baseline, color="grey", ls="--", label="labeled rows only, test images")
ax.axvspan(0.5, dlp.n_warmup_epochs + 0.5, color="grey", alpha=0.1)
ax.set_ylim(baseline - 0.1, 1.0)  # the warm-up starts far below: zoom on the rest
ax.text(1, baseline - 0.09, "warm-up", color="grey")
ax.set_xlabel("epoch")
ax.set_ylabel("accuracy")
ax.set_title("Digits, 10 labels per class")
ax.grid(alpha=0.3)
ax.legend(loc="lower right")
plt.show()
