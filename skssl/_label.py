"""What ``skssl label`` does between reading a file and writing it.

* Estimators by name (:func:`find_method`, :func:`list_methods`): every
  classifier that :mod:`skssl` exports (``skssl.__all__``) is a method, named
  in kebab case without a ``Classifier`` suffix (``LabelSpreadingCG`` ->
  ``label-spreading-cg``), so a new estimator needs no change here; one that
  fails to import is left out.
* Parameters (:func:`estimator_params`): checked against the estimator's own
  ``_parameter_constraints`` before anything is read, so a bad value costs no
  fit and is reported with the option that set it.
* Features (:func:`prepare_features`): missing values refused or imputed, then
  standardized with statistics from every row (:func:`default_scale` says
  whether the estimator already standardizes inside its network).
* Labels (:func:`fit_and_label`) and the one-line report (:func:`summary`).
"""

from __future__ import annotations

import importlib
import inspect
import re

import numpy as np

__all__ = [
    "LabelError",
    "default_scale",
    "describe_estimator",
    "describe_methods",
    "estimator_params",
    "find_method",
    "fit_and_label",
    "list_methods",
    "method_name",
    "prepare_features",
    "summary",
]


class LabelError(ValueError):
    """A problem with the options or the data, said in one line with its fix."""


# ----------------------------------------------------------------------- methods


def method_name(class_name):
    """The command-line name of an estimator class.

    Examples
    --------
    >>> method_name("LabelSpreadingCG")
    'label-spreading-cg'
    >>> method_name("DeepLabelPropagationClassifier")
    'deep-label-propagation'
    >>> method_name("CCLPClassifier")
    'cclp'
    """
    words = re.findall(r"[A-Z]+(?=[A-Z][a-z]|\d|$)|[A-Z]?[a-z]+|\d+", class_name)
    if len(words) > 1 and words[-1] == "Classifier":
        words = words[:-1]
    return "-".join(w.lower() for w in words)


def _initials(name):
    words = name.split("-")
    return "".join(w[0] for w in words) if len(words) >= 3 else None


def _exported_classes():
    """Names in ``skssl.__all__`` that may be estimator classes (not imported)."""
    import skssl

    return [n for n in skssl.__all__ if n[:1].isupper()]


def _load(class_name):
    """The class if it is a semi-supervised classifier (``fit(X, y)`` with -1
    for unlabeled rows), else None; a failing import raises."""
    from sklearn.base import is_classifier

    import skssl

    cls = getattr(skssl, class_name)
    return cls if inspect.isclass(cls) and is_classifier(cls()) else None


def list_methods():
    """``{name: class}`` of every estimator ``skssl label`` can run."""
    methods = {}
    for class_name in _exported_classes():
        try:
            cls = _load(class_name)
        except Exception:
            # A broken optional piece (a missing extra, a module being
            # written) must not take the other methods down with it.
            continue
        if cls is not None:
            methods[method_name(class_name)] = cls
    return dict(sorted(methods.items()))


def describe_methods():
    """Each method as ``name or short (ClassName)``, for the help."""
    described = []
    for name, cls in list_methods().items():
        short = _initials(name)
        alias = f" or {short}" if short else ""
        described.append(f"{name}{alias} ({cls.__name__})")
    return described


def find_method(text):
    """The estimator class a ``--method`` value names.

    Accepted: the method name, the class name (any case), the initials of a
    name of three words or more (``dlp``) and a prefix that fits one name
    (``label-spreading``). Only the chosen estimator's module is imported.
    """
    wanted = text.strip().lower()
    names = {method_name(c): c for c in _exported_classes()}
    matches = [
        c
        for n, c in names.items()
        if wanted in (n, c.lower()) or wanted == _initials(n)
    ]
    if not matches:
        matches = [c for n, c in names.items() if n.startswith(wanted)]
    cls = None
    if len(matches) == 1:
        try:
            cls = _load(matches[0])
        except Exception as exc:
            raise LabelError(
                f"--method {text!r}: {matches[0]} cannot be loaded "
                f"({type(exc).__name__}: {exc}); choose another method."
            ) from None
    if cls is None:
        available = ", ".join(list_methods()) or "none (the package failed to import)"
        what = "fits several methods" if len(matches) > 1 else "names no method"
        raise LabelError(f"--method {text!r} {what}; choose one of {available}.")
    return cls


# -------------------------------------------------------------------- parameters


def _import_object(flag, path):
    module, _, attribute = str(path).rpartition(".")
    try:
        return getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError, ValueError):
        raise LabelError(
            f"{flag}: expected a class or function by its import path (e.g. "
            f"torch.optim.SGD), got {path!r}."
        ) from None


def estimator_params(cls, given):
    """Check command-line parameters against the estimator ``cls``.

    Parameters
    ----------
    cls : type
    given : list of (str, str, object)
        ``(option, parameter, value)`` in command-line order; a later one
        overrides an earlier one. ``option`` is how an error names it (e.g.
        ``"--param tol=5"``). A parameter whose default is a class or a
        function (skorch's ``module``, ``optimizer``) takes an import path.
        A ``prefix__name`` parameter (skorch's ``module__hidden``) needs
        ``prefix`` to be a parameter; the estimator checks the rest.

    Returns
    -------
    params : dict

    Raises
    ------
    LabelError
        Naming the option, for an unknown parameter or a value outside the
        estimator's ``_parameter_constraints``.
    """
    from sklearn.utils._param_validation import (
        InvalidParameterError,
        validate_parameter_constraints,
    )

    defaults = {k: v for k, v in cls().get_params(deep=False).items() if k[:1] != "_"}
    constraints = getattr(cls, "_parameter_constraints", {})
    params = {}
    for flag, key, value in given:
        if key.split("__", 1)[0] not in defaults:
            raise LabelError(
                f"{flag}: {cls.__name__} has no parameter {key!r}; its parameters "
                f"are {', '.join(sorted(defaults))}."
            )
        default = defaults.get(key)
        if (inspect.isclass(default) or inspect.isfunction(default)) and isinstance(
            value, str
        ):
            value = _import_object(flag, value)
        if key in constraints:
            try:
                validate_parameter_constraints(
                    {key: constraints[key]}, {key: value}, caller_name=cls.__name__
                )
            except InvalidParameterError as exc:
                raise LabelError(f"{flag}: {exc}") from None
        elif (inspect.isclass(default) or inspect.isfunction(default)) and not (
            callable(value)
        ):
            raise LabelError(
                f"{flag}: {key} takes a class or function by its import path (e.g. "
                f"{default.__module__}.{default.__qualname__}), got {value!r}."
            )
        params[key] = value
    return params


# ---------------------------------------------------------------------- features


def default_scale(model):
    """``"none"`` when the estimator's network standardizes its input itself.

    skssl's default modules standardize their input from every row
    (``standardize_from``, see :mod:`skssl.deep.modules`) unless
    ``module__standardize=False``; graph estimators measure raw distances, so
    they get ``"standard"``.
    """
    params = model.get_params(deep=False)
    module = params.get("module")
    inside = hasattr(module, "standardize_from") and params.get(
        "module__standardize", True
    )
    return "none" if inside else "standard"


def _count_list(names, counts, unit="row"):
    return ", ".join(
        f"{n!r} ({c} {unit}{'s' if c != 1 else ''})"
        for n, c in zip(names, counts, strict=True)
    )


def prepare_features(X, names, *, impute=None, scale="standard"):
    """Check, impute and scale the feature matrix.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32
        NaN marks a missing value.
    names : list of str
    impute : {"mean", "median"} or None, default=None
        Fill missing values with the column's statistic over every row; None
        refuses missing values.
    scale : {"standard", "none"}, default="standard"
        Standardize every column with its mean and standard deviation over
        every row (labeled and unlabeled).

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float32
    """
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler

    infinite = np.isinf(X).sum(axis=0)
    if infinite.any():
        cols = np.flatnonzero(infinite)
        raise LabelError(
            "infinite values in feature column(s) "
            f"{_count_list([names[j] for j in cols], infinite[cols])}; replace them "
            "or leave the columns out with --drop."
        )
    missing = np.isnan(X).sum(axis=0)
    if missing.any():
        cols = np.flatnonzero(missing)
        listed = _count_list([names[j] for j in cols], missing[cols])
        if impute is None:
            raise LabelError(
                f"missing values in feature column(s) {listed}; fill them in, pass "
                "--impute mean or --impute median, or leave the columns out with "
                "--drop."
            )
        empty = [names[j] for j in cols if missing[j] == X.shape[0]]
        if empty:
            raise LabelError(
                f"feature column(s) {', '.join(map(repr, empty))} hold no value at "
                "all; leave them out with --drop."
            )
        X = SimpleImputer(strategy=impute).fit_transform(X)
    if scale == "standard":
        X = StandardScaler().fit_transform(X)
    return np.ascontiguousarray(X, dtype=np.float32)


# ----------------------------------------------------------------------- labeling


def fit_and_label(model, X, y):
    """Fit ``model`` on every row; labels, certainty and distributions.

    Transductive estimators give their ``label_distributions_``; inductive
    ones predict every row, and the labeled rows keep their given label.

    Returns
    -------
    labels : ndarray of shape (n_samples,)
    certainty : ndarray of shape (n_samples,)
        ``1 - H(p_i) / log C`` in [0, 1].
    proba : ndarray of shape (n_samples, n_classes)
    classes : ndarray of shape (n_classes,)
    """
    from .diffusion import certainty, clamp_labeled

    model.fit(X, y)
    if hasattr(model, "label_distributions_"):
        proba = model.label_distributions_
    else:
        position = {c: i for i, c in enumerate(model.classes_.tolist())}
        y_encoded = np.array([position.get(v, -1) for v in y.tolist()])
        proba = clamp_labeled(model.predict_proba(X), y_encoded)
    labels = model.classes_[proba.argmax(axis=1)]
    return labels, certainty(proba), proba, model.classes_


def _plural(n, word):
    return f"{n} {word}{'' if n == 1 else 's'}"


def summary(*, rows, labeled, labels, certainty, left, min_certainty, seconds):
    """The one line ``skssl label`` reports on standard error.

    Parameters
    ----------
    rows, labeled : int
        Rows in the input, and rows labeled there.
    labels : ndarray of shape (n_samples,)
        The output's labels (given and predicted).
    certainty : ndarray of shape (n_unlabeled,)
        Certainty of the rows that were unlabeled.
    left : ndarray of shape (n_samples,), bool
        Rows left unlabeled by ``min_certainty``.
    min_certainty : float or None
    seconds : float
    """
    kept = labels[~left]
    classes, counts = np.unique(kept.astype(str), return_counts=True)
    order = np.argsort(-counts, kind="stable")
    shown = [f"{classes[i]}: {counts[i]}" for i in order[:10]]
    if len(order) > 10:
        shown.append(f"and {len(order) - 10} more classes")
    q1, q2, q3 = np.quantile(certainty, [0.25, 0.5, 0.75])
    unlabeled = rows - labeled
    n_left = int(left.sum())
    text = (
        f"{_plural(rows, 'row')}: {labeled} labeled in the input, "
        f"{unlabeled - n_left} labeled now"
    )
    if min_certainty is not None:
        text += (
            f", {n_left} left unlabeled (certainty under --min-certainty "
            f"{min_certainty:g})"
        )
    return (
        f"{text}; per class {', '.join(shown)}; certainty of the "
        f"{_plural(unlabeled, 'unlabeled row')}: quartiles {q1:.2f} / {q2:.2f} / "
        f"{q3:.2f}; {seconds:.1f} s"
    )


def describe_estimator(model):
    """``Name(param=value, ...)`` with the parameters off their defaults."""
    from sklearn.base import clone

    defaults = type(model)().get_params(deep=False)
    changed = {
        k: v
        for k, v in clone(model).get_params(deep=False).items()
        if k not in defaults or _differs(v, defaults[k])
    }
    inner = ", ".join(f"{k}={v!r}" for k, v in changed.items())
    return f"{type(model).__name__}({inner})"


def _differs(a, b):
    try:
        return bool(a != b)
    except Exception:
        return a is not b
