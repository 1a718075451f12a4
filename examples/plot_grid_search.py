"""
Tuning semi-supervised estimators with GridSearchCV
===================================================

Plain cross-validation is wrong when ``y`` marks unlabeled rows with ``-1``:
unlabeled rows land in test folds and are scored as a class no model predicts.
:class:`~skssl.model_selection.SemiSupervisedKFold` tests on held-out *labeled*
rows only and keeps every unlabeled row in every training fold, and
:func:`~skssl.model_selection.labeled_accuracy` ignores ``-1`` rows when
scoring.

Here both tune, on digits with five labels per class, the graph of
:class:`~skssl.LabelSpreadingCG` (``n_neighbors``, ``alpha``) and the learning
rate and width of a :class:`~skssl.DeepLabelPropagationClassifier`
(``lr``, ``module__hidden``).
"""

# %%
# Data: 5 labels per class, the rest unlabeled
# ---------------------------------------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skssl import DeepLabelPropagationClassifier, LabelSpreadingCG
from skssl.datasets import load_digits_ssl
from skssl.model_selection import SemiSupervisedKFold, labeled_accuracy

data = load_digits_ssl(labels_per_class=5, random_state=0)
X, y = (data.X / 16.0).astype(np.float32), data.y
cv = SemiSupervisedKFold(n_splits=5, shuffle=True, random_state=0)

# %%
# What plain cross-validation would report
# ----------------------------------------
naive = cross_val_score(
    LabelSpreadingCG(), X, y, cv=KFold(5, shuffle=True, random_state=0)
)
right = cross_val_score(LabelSpreadingCG(), X, y, cv=cv, scoring=labeled_accuracy)
print(f"plain KFold + accuracy:            {naive.mean():.3f}")
print(f"SemiSupervisedKFold + labeled acc: {right.mean():.3f}")

# %%
# Graph estimator: n_neighbors and alpha
# --------------------------------------
spreading = GridSearchCV(
    make_pipeline(StandardScaler(), LabelSpreadingCG()),
    {
        "labelspreadingcg__n_neighbors": [5, 7, 15],
        "labelspreadingcg__alpha": [0.9, 0.99],
    },
    cv=cv,
    scoring=labeled_accuracy,
    n_jobs=2,
).fit(X, y)
print("LabelSpreadingCG best:", spreading.best_params_, f"{spreading.best_score_:.3f}")

# %%
# Deep estimator: learning rate and module width
# ----------------------------------------------
# Few epochs keep the example fast; ``module__hidden`` reaches the default MLP.
deep = GridSearchCV(
    DeepLabelPropagationClassifier(
        max_epochs=8, n_warmup_epochs=3, n_neighbors=10, random_state=0
    ),
    {"lr": [1e-3, 1e-2], "module__hidden": [(32,), (128,)]},
    cv=SemiSupervisedKFold(n_splits=3, shuffle=True, random_state=0),
    scoring=labeled_accuracy,
).fit(X, y)
print("DLP best:", deep.best_params_, f"{deep.best_score_:.3f}")

# %%
# The score tables
# ----------------
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
for ax, search, title in (
    (axes[0], spreading, "LabelSpreadingCG"),
    (axes[1], deep, "DeepLabelPropagationClassifier"),
):
    res = search.cv_results_
    labels = [
        ", ".join(f"{k.split('__')[-1]}={v}" for k, v in p.items())
        for p in res["params"]
    ]
    order = np.argsort(res["mean_test_score"])
    ax.barh(
        np.arange(len(order)),
        res["mean_test_score"][order],
        xerr=res["std_test_score"][order],
        color=["tab:orange" if i == search.best_index_ else "tab:blue" for i in order],
    )
    ax.set_yticks(np.arange(len(order)), [labels[i] for i in order], fontsize=8)
    ax.set_xlabel("accuracy on held-out labeled rows")
    ax.set_xlim(0.5, 1.0)
    ax.set_title(title)
fig.tight_layout()
plt.show()
