"""scikit-learn's common estimator checks on the deep estimators."""

import warnings

from sklearn.utils.estimator_checks import parametrize_with_checks

from skssl.deep import (
    CCLPClassifier,
    DeepLabelPropagationClassifier,
    LocalLabelPropagationClassifier,
    ManifoldMiningEmbedder,
    MeanTeacherClassifier,
    SemiSupervisedNet,
)

# Small, fast settings per estimator (the checks fit dozens of times).
FAST = dict(
    min_batches_per_epoch=1,
    max_epochs=4,
    lr=0.05,
    batch_size=32,
    batch_size_labeled=8,
    random_state=0,
)
ESTIMATORS = [
    SemiSupervisedNet(**FAST),
    DeepLabelPropagationClassifier(n_neighbors=10, n_warmup_epochs=1, **FAST),
    CCLPClassifier(labeled_per_class=2, batch_size_unlabeled=16, **FAST),
    MeanTeacherClassifier(local_clustering=True, lc_start_epoch=1, lc_rampup=1, **FAST),
    LocalLabelPropagationClassifier(n_warmup_epochs=1, n_voters=3, n_density=5, **FAST),
    ManifoldMiningEmbedder(
        n_components=4,
        n_neighbors=3,
        k_euclidean=3,
        k_manifold=6,
        module__hidden=8,
        max_epochs=2,
        batch_size=16,
        random_state=0,
    ),
]

_SKORCH_INIT = (
    "skorch's NeuralNet.__init__ sets history_, initialized_ and virtual_params_"
)
EXPECTED_FAILURES = {
    "check_no_attributes_set_in_init": _SKORCH_INIT,
    "check_classifiers_classes": (
        "the check labels one class -1, which skssl reads as 'unlabeled'"
    ),
    "check_set_params": (
        "skorch lists its private _params_to_validate in get_params, and the "
        "check sets it to a number"
    ),
}
# Only the base lists ``callbacks`` in its signature, which this check perturbs.
EXPECTED_FAILURES_BASE = {
    **EXPECTED_FAILURES,
    "check_do_not_raise_errors_in_init_or_set_params": (
        "skorch's set_params(callbacks=...) initializes the callbacks at once, so "
        "a non-list value fails there"
    ),
}


EXPECTED_FAILURES_DLP = {
    **EXPECTED_FAILURES,
    "check_non_transformer_estimators_n_iter": (
        "max_iter bounds the conjugate gradient of each propagation; the check "
        "fits fully labeled y, where no propagation runs, so n_iter_ is 0"
    ),
}

EXPECTED_FAILURES_MINING = {
    **EXPECTED_FAILURES_BASE,
    "check_transformer_n_iter": (
        "max_iter bounds the conjugate gradient of each mining, not training; "
        "the epochs are max_epochs"
    ),
}


def _expected_failures(estimator):
    if type(estimator) is ManifoldMiningEmbedder:
        return EXPECTED_FAILURES_MINING
    if type(estimator) is SemiSupervisedNet:
        return EXPECTED_FAILURES_BASE
    if type(estimator) is DeepLabelPropagationClassifier:
        return EXPECTED_FAILURES_DLP
    return EXPECTED_FAILURES


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failures)
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        # The checks fit on fully labeled y, which skssl reports.
        warnings.filterwarnings("ignore", message="y has no unlabeled sample")
        # check_set_params reports each parameter after the expected failure.
        warnings.filterwarnings(
            "ignore", category=UserWarning, module="sklearn.utils.estimator_checks"
        )
        check(estimator)
