"""Mean Teacher and Mean Teacher + local clustering on MNIST-1D.

Three sections:

``--compare`` (default)
    MNIST-1D (10,000 training / 2,000 test rows, ``module=CNN1DModule``, the
    default ``augment='auto'``: random shifts plus noise), 10 / 50 / 100
    labels per class, 5 seeds (label draw and weights), in one process:

    - ``supervised``: ``MeanTeacherClassifier(unlabeled="ignore")``, the same
      network, augmentation, batches and steps on the labeled rows only;
    - ``mean_teacher``: ``MeanTeacherClassifier()`` (defaults);
    - ``mean_teacher_lc``: ``MeanTeacherClassifier(local_clustering=True)``;
    - ``dlp``: ``DeepLabelPropagationClassifier(consistency_weight=0)``, DLP
      without the Mean Teacher term;
    - ``dlp_mt``: ``DeepLabelPropagationClassifier()``: with the shifts of
      ``augment='auto'`` its ``consistency_weight="auto"`` adds the Mean
      Teacher term at MeanTeacherClassifier's default weight, 1 (the paper's
      "MT + Ours").

``--ablation``
    Mean Teacher + LC at 50 labels per class, one seed, with ``lc_epsilon``
    and then ``lc_weight`` moved off their defaults (the paper's Figs. 4-5):
    test accuracy, the final spread of the embeddings and whether the
    collapse warning fired.

``--schedule``
    The supervised network, Mean Teacher, Mean Teacher + LC and DLP at 50
    labels per class and 5 seeds with a schedule twice as long
    (``max_epochs=60``, local clustering from epoch 30 instead of 10), against
    the 30-epoch ``--compare`` runs of the same seeds (``--methods`` picks
    columns here too).

Runs are merged into ``results/mean_teacher.json`` by (section, labels,
seed, setting), so a section or a label count can be run on its own.
Writes ``results/mean_teacher.md``.

Examples
--------
    python benchmarks/bench_mean_teacher.py                    # ~60 min
    python benchmarks/bench_mean_teacher.py --labels 50        # ~20 min
    python benchmarks/bench_mean_teacher.py --methods mean_teacher_lc  # ~12 min
    python benchmarks/bench_mean_teacher.py --ablation         # ~10 min
    python benchmarks/bench_mean_teacher.py --schedule         # ~25 min
    python benchmarks/bench_mean_teacher.py --quick --out /tmp/mt
    python benchmarks/bench_mean_teacher.py --report
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import torch
from _common import (
    RESULTS,
    command_line,
    machine_info,
    markdown_table,
    mean_fit_times,
    mean_std,
    paired_accuracies,
    paired_gain,
    read_json,
    write_json,
)

from skssl import DeepLabelPropagationClassifier, MeanTeacherClassifier
from skssl.datasets import load_mnist1d, mask_labels
from skssl.deep import CNN1DModule

METHODS = ("supervised", "mean_teacher", "mean_teacher_lc", "dlp", "dlp_mt")
LABELS = {
    "supervised": "same network, labeled rows only",
    "mean_teacher": "Mean Teacher",
    "mean_teacher_lc": "Mean Teacher + LC",
    "dlp": "DLP without MT",
    "dlp_mt": "DLP (+ MT, its default)",
}
SCHEDULE_METHODS = ("supervised", "mean_teacher", "mean_teacher_lc", "dlp_mt")
SCHEDULE = dict(max_epochs=60, lc_start_epoch=30)
ABLATION = {
    "lc_epsilon": [0.1, 1.0, 3.0, 10.0],
    "lc_weight": [0.1, 1.0, 10.0, 100.0],
}


def make(method, seed, **params):
    """The estimator of one method, with its defaults apart from ``params``."""
    common = dict(module=CNN1DModule, random_state=seed, **params)
    if method == "supervised":
        return MeanTeacherClassifier(unlabeled="ignore", **common)
    if method == "mean_teacher":
        return MeanTeacherClassifier(**common)
    if method == "mean_teacher_lc":
        return MeanTeacherClassifier(local_clustering=True, **common)
    # The local clustering settings are MeanTeacherClassifier's only.
    common = {k: v for k, v in common.items() if not k.startswith("lc_")}
    if method == "dlp":
        return DeepLabelPropagationClassifier(consistency_weight=0.0, **common)
    if method == "dlp_mt":
        return DeepLabelPropagationClassifier(**common)
    raise ValueError(method)


def fit_one(method, X, y, X_test, y_test, seed, **params):
    """Test accuracy, seconds and the local clustering statistics of one fit."""
    clf = make(method, seed, **params)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf.fit(X, y)
    seconds = time.perf_counter() - start
    last = clf.history[-1]
    return dict(
        accuracy=float(clf.score(X_test, y_test)),
        seconds=seconds,
        collapse=any("collapsed" in str(w.message) for w in caught),
        lc_spread=[row.get("lc_spread") for row in clf.history],
        lc_neighbours=last.get("lc_neighbours"),
    )


def split(args):
    data = load_mnist1d(args.n_train + args.n_test, random_state=0, test_size=0.0)
    n = args.n_train
    return data.X[:n], data.y[:n], data.X[n:], data.y[n:]


def merge(results, run):
    """Replace the run with the same key, or add it."""
    key = ("section", "per_class", "seed", "method", "setting")
    runs = [r for r in results["runs"] if any(r.get(k) != run.get(k) for k in key)]
    results["runs"] = [*runs, run]


def _fit_grid(args, results, section, labels, methods, params, setting):
    """Fit ``methods`` with ``params`` at each label count and seed; merge the runs."""
    X, y_true, X_test, y_test = split(args)
    for per_class in labels:
        for seed in range(args.seeds):
            y = mask_labels(y_true, per_class=per_class, random_state=seed)
            for method in methods:
                run = fit_one(method, X, y, X_test, y_test, seed, **params)
                run.update(section=section, per_class=per_class, seed=seed)
                run.update(method=method, setting=setting, command=command_line())
                merge(results, run)
                print(
                    f"{section} {per_class}/class seed {seed} {method}: "
                    f"{run['accuracy']:.3f} ({run['seconds']:.0f} s)",
                    flush=True,
                )
            write_json(args.out.with_suffix(".json"), results)


def compare(args, results):
    labels = args.labels or [10, 50, 100]
    _fit_grid(args, results, "compare", labels, args.methods, args.extra, "defaults")


def schedule(args, results):
    setting = ", ".join(f"{k}={v}" for k, v in SCHEDULE.items())
    params = {**SCHEDULE, **args.extra}
    methods = [m for m in SCHEDULE_METHODS if m in args.methods]
    labels = args.labels or [50]
    _fit_grid(args, results, "schedule", labels, methods, params, setting)


def ablation(args, results):
    X, y_true, X_test, y_test = split(args)
    per_class, seed = 50, 0
    y = mask_labels(y_true, per_class=per_class, random_state=seed)
    settings = [("defaults", {})]
    settings += [
        (f"{name}={value:g}", {name: value})
        for name, values in ABLATION.items()
        for value in values
    ]
    for setting, params in settings:
        run = fit_one(
            "mean_teacher_lc", X, y, X_test, y_test, seed, **params, **args.extra
        )
        run.update(section="ablation", per_class=per_class, seed=seed)
        run.update(method="mean_teacher_lc", setting=setting, command=command_line())
        merge(results, run)
        print(f"ablation {setting}: {run['accuracy']:.3f}", flush=True)
        write_json(args.out.with_suffix(".json"), results)


def _schedule_row(runs, per_class):
    """Accuracies and paired gains of the schedule table, or None."""
    acc, n_seeds = paired_accuracies(runs, per_class, SCHEDULE_METHODS)
    if n_seeds == 0:
        return None
    lc_helps = (acc["mean_teacher_lc"] > acc["mean_teacher"]).sum()
    return [
        n_seeds,
        *(mean_std(acc[m]) for m in SCHEDULE_METHODS),
        paired_gain(acc["mean_teacher"], acc["supervised"]),
        paired_gain(acc["dlp_mt"], acc["supervised"]),
        paired_gain(acc["mean_teacher_lc"], acc["mean_teacher"]),
        f"{lc_helps} of {n_seeds}",
    ]


def _schedule_markdown(results):
    runs = [r for r in results["runs"] if r["section"] == "schedule"]
    if not runs:
        return []
    lines = [
        "## A schedule twice as long",
        "",
        "The same label draws and weights as the 30-epoch runs above, with "
        + ", ".join(f"`{k}={v}`" for k, v in SCHEDULE.items())
        + " (local clustering from half-way instead of a third of the way). "
        "Test accuracy, mean ± std over the seeds, and paired gains in points "
        "(a row appears once every column has run).",
        "",
    ]
    compared = [r for r in results["runs"] if r["section"] == "compare"]
    rows = []
    for per_class in sorted({r["per_class"] for r in runs}):
        for name, group in (
            ("30 epochs, LC from epoch 10 (defaults)", compared),
            (runs[0]["setting"], runs),
        ):
            row = _schedule_row(group, per_class)
            if row:
                rows.append([per_class, name, *row])
    lines += markdown_table(
        rows,
        [
            "labels/class",
            "schedule",
            "seeds",
            *(LABELS[m] for m in SCHEDULE_METHODS),
            "MT − supervised",
            "DLP − supervised",
            "MT + LC − MT",
            "seeds where LC helps",
        ],
    )
    ran = [m for m in SCHEDULE_METHODS if any(r["method"] == m for r in runs)]
    lines += ["", mean_fit_times(runs, ran, LABELS, "Mean fit time at 60 epochs"), ""]
    return lines


def _markdown(results):
    lines = [
        "# Mean Teacher and local clustering",
        "",
        f"Machine: {results['machine']['platform']}, "
        f"{results['machine']['cpu_count']} CPUs, torch {torch.__version__}; one "
        "torch thread, shared with other jobs: compare times within a table. "
        "Commands: "
        + ", ".join(
            f"`{c}`"
            for c in dict.fromkeys(r.get("command", "") for r in results["runs"])
            if c
        )
        + ".",
        "",
        "MNIST-1D, 10,000 training / 2,000 test rows, `module=CNN1DModule`, every "
        "estimator at its defaults (30 epochs, `augment='auto'`: random shifts "
        "plus noise) but 'DLP without MT' (`consistency_weight=0`; DLP's default "
        "`'auto'` is 1 under these shifts, MeanTeacherClassifier's weight). Test "
        "accuracy, mean ± std over the seeds; the supervised column is "
        "`MeanTeacherClassifier(unlabeled='ignore')`.",
        "",
    ]
    runs = [r for r in results["runs"] if r["section"] == "compare"]
    if runs:
        rows, gains = [], []
        for per_class in sorted({r["per_class"] for r in runs}):
            acc, n_seeds = paired_accuracies(runs, per_class, METHODS)
            if n_seeds == 0:
                continue
            rows.append([per_class, n_seeds, *(mean_std(acc[m]) for m in METHODS)])
            lc_helps = (acc["mean_teacher_lc"] > acc["mean_teacher"]).sum()
            gains.append(
                [
                    per_class,
                    paired_gain(acc["mean_teacher"], acc["supervised"]),
                    paired_gain(acc["mean_teacher_lc"], acc["mean_teacher"]),
                    f"{lc_helps} of {n_seeds}",
                ]
            )
        lines += markdown_table(
            rows, ["labels/class", "seeds", *(LABELS[m] for m in METHODS)]
        )
        lines += ["", "Gains in accuracy points (= fall in test error), per seed:", ""]
        lines += markdown_table(
            gains,
            ["labels/class", "MT − supervised", "MT + LC − MT", "seeds where LC helps"],
        )
        lines += ["", mean_fit_times(runs, METHODS, LABELS), ""]
    lines += _schedule_markdown(results)
    abl = [r for r in results["runs"] if r["section"] == "ablation"]
    defaults = MeanTeacherClassifier()
    if abl:
        lines += [
            "## Ablation over ε and λ₂ (50 labels per class, seed 0)",
            "",
            "Mean Teacher + LC with one parameter moved off its default "
            f"(`lc_epsilon={defaults.lc_epsilon:g}`, "
            f"`lc_weight={defaults.lc_weight:g}`; distances in units of the "
            "embeddings' median pair distance in the epoch local clustering "
            "starts, 10). Spread: the median pair distance of the embeddings in "
            "the last epoch over the one when local clustering started. The "
            "collapse warning fires when it falls below 0.1.",
            "",
        ]
        rows = []
        for r in abl:
            spread = [s for s in r["lc_spread"] if s is not None]
            start = spread[min(10, len(spread) - 1)] if spread else float("nan")
            rows.append(
                [
                    r["setting"],
                    f"{r['accuracy']:.3f}",
                    f"{spread[-1] / start:.2f}" if spread else "",
                    f"{r['lc_neighbours']:.2f}" if r["lc_neighbours"] else "",
                    "yes" if r["collapse"] else "",
                ]
            )
        lines += markdown_table(
            rows,
            [
                "setting",
                "test accuracy",
                "spread, end / start",
                "pairs within ε",
                "collapse warned",
            ],
        )
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--compare", action="store_true")
    parser.add_argument("--ablation", action="store_true")
    parser.add_argument("--schedule", action="store_true")
    parser.add_argument("--quick", action="store_true", help="smoke-test sizes")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--labels",
        type=int,
        nargs="+",
        default=None,
        help="labels per class (compare: 10 50 100, schedule: 50)",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        default=list(METHODS),
        choices=METHODS,
        help="compare, schedule: re-run only these columns (the others keep theirs)",
    )
    parser.add_argument("--n-train", type=int, default=10_000)
    parser.add_argument("--n-test", type=int, default=2_000)
    parser.add_argument("--out", type=Path, default=RESULTS / "mean_teacher")
    parser.add_argument("--report", action="store_true", help="markdown from json")
    args = parser.parse_args(argv)
    args.extra = {}
    if args.quick:
        args.seeds, args.labels, args.n_train, args.n_test = 1, [10], 600, 200
        args.extra = dict(max_epochs=2, lc_start_epoch=1, lc_rampup=1)
        ABLATION.update(lc_epsilon=[1.0], lc_weight=[1.0])
    torch.set_num_threads(1)
    path = args.out.with_suffix(".json")
    results = read_json(path) or dict(runs=[])
    if not args.report:
        results.update(machine=machine_info(), command=command_line())
        if args.compare or not (args.ablation or args.schedule):
            compare(args, results)
        if args.ablation:
            ablation(args, results)
        if args.schedule:
            schedule(args, results)
        write_json(path, results)
    markdown = _markdown(results)
    args.out.with_suffix(".md").write_text(markdown)
    print(markdown)


if __name__ == "__main__":
    main()
