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

    python benchmarks/bench_cclp.py            # the full protocol
    python benchmarks/bench_cclp.py --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from skssl import CCLPClassifier, DeepLabelPropagationClassifier
from skssl.datasets import load_mnist1d, mask_labels
from skssl.deep import CNN1DModule, MLPModule, SemiSupervisedNet
from skssl.deep.losses import cclp_loss

RESULTS = Path(__file__).parent / "results"
# Defaults reported in the results, read from the estimators themselves.
_BASE = SemiSupervisedNet()
_CCLP = CCLPClassifier()


def _fit_score(make, X, y, X_test, y_test):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = make().fit(X, y)
    return float(model.score(X_test, y_test)), time.perf_counter() - start


def _methods(module, epochs, warmup, seed, steps=3):
    common = dict(module=module, max_epochs=epochs, random_state=seed)
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


def _mean_std(values):
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.3f} ± {v.std():.3f}"


def _markdown(results, args, argv):
    lines = [
        "# CCLP benchmark",
        "",
        f"Machine: {platform.machine()} {os.cpu_count()} CPU cores shared with "
        f"other jobs, torch {torch.__version__}, {args.threads} thread(s) for "
        f"training. Command: `python benchmarks/bench_cclp.py {' '.join(argv)}`.",
        "",
        f"Protocol of `bench_deep.py`: {args.epochs} epochs (DLP: {args.warmup} "
        "supervised warm-up), Adam lr 1e-3, the default batches of each "
        f"estimator (supervised and DLP: {_BASE.batch_size} rows with "
        f"{_BASE.batch_size_labeled} labeled; CCLP: {_CCLP.labeled_per_class} "
        f"labeled rows per class + {_CCLP.batch_size_unlabeled} unlabeled, "
        f"w = {_CCLP.weight}, S = {_CCLP.steps}), "
        f"{args.seeds} seed(s), mean ± std test accuracy; all methods in one "
        "process.",
        "",
    ]
    for name, runs in results["accuracy"].items():
        if not runs:
            continue
        methods = list(runs[0]["acc"])
        lines += [
            f"## {name}",
            "",
            "| labels/class | "
            + " | ".join(methods)
            + " | CCLP − supervised | CCLP − DLP |",
            "|---" * (len(methods) + 3) + "|",
        ]
        for per_class in sorted({r["per_class"] for r in runs}):
            rs = [r for r in runs if r["per_class"] == per_class]
            cells = [_mean_std([r["acc"][m] for r in rs]) for m in methods]
            gaps = []
            for peer in ("supervised", "dlp"):
                if peer in methods:
                    d = [100 * (r["acc"]["cclp"] - r["acc"][peer]) for r in rs]
                    gaps.append(f"{np.mean(d):+.1f} ± {np.std(d):.1f} points")
                else:
                    gaps.append("–")
            lines.append(f"| {per_class} | " + " | ".join(cells + gaps) + " |")
        secs = {m: np.mean([r["seconds"][m] for r in runs]) for m in methods}
        lines += [
            "",
            "Mean fit time: "
            + ", ".join(f"{m} {s:.0f} s" for m, s in secs.items())
            + ".",
            "",
        ]
    if results["ablation"]:
        lines += [
            f"## Ablation over S (MNIST-1D, {args.ablation_labels} labels per class)",
            "",
            "| S | test accuracy |",
            "|---|---|",
        ]
        for s in args.ablation_steps:
            accs = [r["acc"] for r in results["ablation"] if r["steps"] == s]
            lines.append(f"| {s} | {_mean_std(accs)} |")
        lines.append("")
    if results["timing"]:
        lines += [
            "## Cost of a training step (CNN1DModule on MNIST-1D, CPU)",
            "",
            "Median of repeated steps (forward, loss, backward, Adam) on the same "
            "batch, half labeled, half unlabeled.",
            "",
            "| N = N_L + N_U | threads | supervised step | CCLP step | overhead |",
            "|---|---|---|---|---|",
        ]
        for t in results["timing"]:
            lines.append(
                f"| {t['n']} | {t['threads']} | {1e3 * t['supervised']:.1f} ms | "
                f"{1e3 * t['cclp']:.1f} ms | {100 * t['overhead']:+.0f} % |"
            )
        lines.append("")
    lines.append(f"Total run time: {results['minutes']:.1f} min.")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
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
        "--sections",
        nargs="+",
        default=["mnist1d", "digits", "ablation", "timing"],
        choices=["mnist1d", "digits", "ablation", "timing"],
    )
    parser.add_argument("--out", default=str(RESULTS / "cclp"))
    raw = argv if argv is not None else __import__("sys").argv[1:]
    args = parser.parse_args(raw)
    if args.quick:
        args.seeds, args.epochs, args.warmup = 1, 2, 1
        args.labels, args.n_train, args.n_test = [10], 1000, 300
        args.ablation_steps, args.ablation_seeds = [1, 3], 1
        args.out = str(RESULTS / "cclp_quick")
    start = time.perf_counter()
    torch.set_num_threads(args.threads)
    results = {"accuracy": {}, "ablation": [], "timing": []}
    with threadpool_limits(args.threads):
        data = load_mnist1d(args.n_train + args.n_test, random_state=0)
        X, y_true = data.X[: args.n_train], data.y[: args.n_train]
        X_test, y_test = data.X[args.n_train :], data.y[args.n_train :]
        methods = ["supervised", "dlp", "cclp"]
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
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    out.with_suffix(".md").write_text(_markdown(results, args, raw))
    print(out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
