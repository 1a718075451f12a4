"""CCLPClassifier against the supervised network and DLP, S ablation, step cost.

The protocol is the one of ``bench_deep.py`` (same MNIST-1D draw and split,
same networks, epochs, label draws and seeds), with the peers fitted in this
process:

1. test accuracy of the supervised-only network, DeepLabelPropagationClassifier
   and CCLPClassifier on MNIST-1D (CNN1DModule) for each labels-per-class
   count, and on digits (MLPModule);
2. the paper's ablation (Fig. 4) over the Markov chain length S at 50 labels
   per class;
3. the time of one CCLP training step against one supervised step on the same
   batch of N = N_L + N_U rows (N = 200 and 1,000), on the CPU.

Writes ``results/cclp.json`` and ``results/cclp.md``.

Examples
--------
    python benchmarks/bench_cclp.py                          # ~15 min
    python benchmarks/bench_cclp.py --quick --out /tmp/cclp/cclp   # smoke run
    python benchmarks/bench_cclp.py --report                 # markdown from json
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from _common import (
    RESULTS,
    command_line,
    markdown_table,
    mean_std,
    read_json,
    write_json,
)
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from skssl import CCLPClassifier, DeepLabelPropagationClassifier
from skssl.datasets import load_mnist1d, mask_labels
from skssl.deep import CNN1DModule, MLPModule, SemiSupervisedNet
from skssl.deep.losses import cclp_loss

SECTIONS = ("mnist1d", "digits", "ablation", "timing")


def _fit_score(make, X, y, X_test, y_test):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = make().fit(X, y)
    return float(model.score(X_test, y_test)), time.perf_counter() - start


def _methods(module, epochs, warmup, seed, steps=3):
    # The protocol's fixed rate (its report says so), whatever the defaults.
    common = dict(module=module, max_epochs=epochs, lr=1e-3, random_state=seed)
    return {
        "supervised": lambda: SemiSupervisedNet(**common),
        "dlp": lambda: DeepLabelPropagationClassifier(n_warmup_epochs=warmup, **common),
        "cclp": lambda: CCLPClassifier(steps=steps, **common),
    }


def _protocol(name, X, y_true, X_test, y_test, *, module, labels, args, methods):
    runs = []
    for per_class in labels:
        for seed in range(args.seeds):
            y = mask_labels(y_true, per_class=per_class, random_state=seed)
            makers = _methods(module, args.epochs, args.warmup, seed)
            row = dict(data=name, per_class=per_class, seed=seed, acc={}, seconds={})
            for method in methods:
                acc, sec = _fit_score(makers[method], X, y, X_test, y_test)
                row["acc"][method], row["seconds"][method] = acc, sec
            runs.append(row)
            print(name, per_class, seed, row["acc"], flush=True)
    return runs


def _ablation(X, y_true, X_test, y_test, args):
    runs = []
    for steps in args.ablation_steps:
        for seed in range(args.ablation_seeds):
            y = mask_labels(y_true, per_class=args.ablation_labels, random_state=seed)
            make = _methods(CNN1DModule, args.epochs, args.warmup, seed, steps)["cclp"]
            acc, sec = _fit_score(make, X, y, X_test, y_test)
            runs.append(dict(steps=steps, seed=seed, acc=acc, seconds=sec))
            print("ablation S =", steps, "seed", seed, acc, flush=True)
    return runs


def _step_times(n_total, repeats, threads):
    """Seconds per training step: supervised CE vs CE + CCLP, same batch."""
    data = load_mnist1d(max(2 * n_total, 1000), random_state=1)
    n_l = n_total // 2
    X = torch.as_tensor(data.X[:n_total])
    y = torch.as_tensor(data.y[:n_l])
    module = CNN1DModule(n_features=X.shape[1], n_classes=10, normalize=False)
    opt = torch.optim.Adam(module.parameters(), lr=1e-3)
    ce = torch.nn.CrossEntropyLoss()

    def supervised():
        opt.zero_grad()
        Z = module.embed(X)
        loss = ce(module.head(Z[:n_l]), y)
        loss.backward()
        opt.step()

    def with_cclp():
        opt.zero_grad()
        Z = module.embed(X)
        loss = ce(module.head(Z[:n_l]), y) + cclp_loss(Z[:n_l], y, Z[n_l:], 10)
        loss.backward()
        opt.step()

    out = {}
    with threadpool_limits(threads):
        torch.set_num_threads(threads)
        for name, step in (("supervised", supervised), ("cclp", with_cclp)):
            for _ in range(3):
                step()
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                step()
                times.append(time.perf_counter() - start)
            out[name] = float(np.median(times))
    out["overhead"] = out["cclp"] / out["supervised"] - 1.0
    return out


def _estimator_defaults():
    """The batch settings the peers ran with, as the report quotes them."""
    base, cclp = SemiSupervisedNet(), CCLPClassifier()
    return dict(
        batch_size=base.batch_size,
        batch_size_labeled=base.batch_size_labeled,
        labeled_per_class=cclp.labeled_per_class,
        batch_size_unlabeled=cclp.batch_size_unlabeled,
        weight=cclp.weight,
        steps=cclp.steps,
    )


def _accuracy_section(name, runs):
    methods = list(runs[0]["acc"])
    rows = []
    for per_class in sorted({r["per_class"] for r in runs}):
        rs = [r for r in runs if r["per_class"] == per_class]
        cells = [mean_std([r["acc"][m] for r in rs]) for m in methods]
        for peer in ("supervised", "dlp"):
            if peer in methods:
                d = [100 * (r["acc"]["cclp"] - r["acc"][peer]) for r in rs]
                cells.append(f"{np.mean(d):+.1f} ± {np.std(d):.1f} points")
            else:
                cells.append("–")
        rows.append([per_class, *cells])
    secs = {m: np.mean([r["seconds"][m] for r in runs]) for m in methods}
    headers = ["labels/class", *methods, "CCLP − supervised", "CCLP − DLP"]
    return [
        f"## {name}",
        "",
        *markdown_table(rows, headers),
        "",
        "Mean fit time: " + ", ".join(f"{m} {s:.0f} s" for m, s in secs.items()) + ".",
        "",
    ]


def _markdown(results):
    cfg, d = results["config"], results["defaults"]
    lines = [
        "# CCLP benchmark",
        "",
        f"Machine: {results['machine']}, {cfg['threads']} thread(s) for "
        f"training. Command: `{results['command']}`.",
        "",
        f"Protocol of `bench_deep.py`: {cfg['epochs']} epochs (DLP: "
        f"{cfg['warmup']} supervised warm-up), Adam lr 1e-3, the default batches "
        f"of each estimator (supervised and DLP: {d['batch_size']} rows with "
        f"{d['batch_size_labeled']} labeled; CCLP: {d['labeled_per_class']} "
        f"labeled rows per class + {d['batch_size_unlabeled']} unlabeled, "
        f"w = {d['weight']}, S = {d['steps']}), "
        f"{cfg['seeds']} seed(s), mean ± std test accuracy; all methods in one "
        "process.",
        "",
    ]
    for name, runs in results["accuracy"].items():
        if runs:
            lines += _accuracy_section(name, runs)
    if results["ablation"]:
        rows = [
            [s, mean_std([r["acc"] for r in results["ablation"] if r["steps"] == s])]
            for s in cfg["ablation_steps"]
        ]
        lines += [
            f"## Ablation over S (MNIST-1D, {cfg['ablation_labels']} labels per class)",
            "",
            *markdown_table(rows, ["S", "test accuracy"]),
            "",
        ]
    if results["timing"]:
        rows = [
            [
                t["n"],
                t["threads"],
                f"{1e3 * t['supervised']:.1f} ms",
                f"{1e3 * t['cclp']:.1f} ms",
                f"{100 * t['overhead']:+.0f} %",
            ]
            for t in results["timing"]
        ]
        headers = ["N = N_L + N_U", "threads", "supervised step", "CCLP step"]
        lines += [
            "## Cost of a training step (CNN1DModule on MNIST-1D, CPU)",
            "",
            "Median of repeated steps (forward, loss, backward, Adam) on the same "
            "batch, half labeled, half unlabeled.",
            "",
            *markdown_table(rows, [*headers, "overhead"]),
            "",
        ]
    lines.append(f"Total run time: {results['minutes']:.1f} min.")
    return "\n".join(lines) + "\n"


def _run(args):
    start = time.perf_counter()
    torch.set_num_threads(args.threads)
    results = {
        "command": command_line(),
        "machine": f"{platform.machine()} {os.cpu_count()} CPU cores shared with "
        f"other jobs, torch {torch.__version__}",
        "config": {k: v for k, v in vars(args).items() if k not in ("out", "report")},
        "defaults": _estimator_defaults(),
        "accuracy": {},
        "ablation": [],
        "timing": [],
    }
    methods = ["supervised", "dlp", "cclp"]
    with threadpool_limits(args.threads):
        data = load_mnist1d(args.n_train + args.n_test, random_state=0)
        X, y_true = data.X[: args.n_train], data.y[: args.n_train]
        X_test, y_test = data.X[args.n_train :], data.y[args.n_train :]
        if "mnist1d" in args.sections:
            results["accuracy"]["MNIST-1D, CNN1DModule"] = _protocol(
                "mnist1d", X, y_true, X_test, y_test, module=CNN1DModule,
                labels=args.labels, args=args, methods=methods,
            )  # fmt: skip
        if "digits" in args.sections:
            Xd, yd = load_digits(return_X_y=True)
            Xd = (Xd / 16.0).astype(np.float32)
            Xtr, Xte, ytr, yte = train_test_split(
                Xd, yd, test_size=0.3, stratify=yd, random_state=0
            )
            results["accuracy"]["digits, MLPModule"] = _protocol(
                "digits", Xtr, ytr, Xte, yte, module=MLPModule, labels=[10],
                args=args, methods=methods,
            )  # fmt: skip
        if "ablation" in args.sections:
            results["ablation"] = _ablation(X, y_true, X_test, y_test, args)
    if "timing" in args.sections:
        repeats = 5 if args.quick else 30
        # One thread: on a shared machine torch's thread team spin-waits for
        # descheduled workers, which swamps millisecond steps with noise.
        for n in (200, 1000):
            t = _step_times(n, repeats, 1)
            results["timing"].append(dict(n=n, threads=1, **t))
            print("timing", n, t, flush=True)
    results["minutes"] = (time.perf_counter() - start) / 60
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--quick", action="store_true", help="smoke-test sizes")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--labels", type=int, nargs="+", default=[10, 50, 100])
    parser.add_argument("--n-train", type=int, default=10_000)
    parser.add_argument("--n-test", type=int, default=2_000)
    parser.add_argument("--ablation-steps", type=int, nargs="+", default=[1, 3, 6, 10])
    parser.add_argument("--ablation-labels", type=int, default=50)
    parser.add_argument("--ablation-seeds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--sections", nargs="+", default=list(SECTIONS), choices=SECTIONS
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="path stem of the json and markdown (default results/cclp, or "
        "results/cclp_quick with --quick)",
    )
    parser.add_argument(
        "--report",
        action="store_true",
        help="rewrite the markdown from the existing json",
    )
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = RESULTS / ("cclp_quick" if args.quick else "cclp")
    if args.quick:
        args.seeds, args.epochs, args.warmup = 1, 2, 1
        args.labels, args.n_train, args.n_test = [10], 1000, 300
        args.ablation_steps, args.ablation_seeds = [1, 3], 1
    if args.report:
        results = read_json(args.out.with_suffix(".json"))
        if results is None:
            parser.error(f"no results at {args.out.with_suffix('.json')}")
    else:
        results = _run(args)
        write_json(args.out.with_suffix(".json"), results)
    args.out.with_suffix(".md").write_text(_markdown(results))
    print(args.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
