"""Where the diffusion solve spends its time at n = 1e6, and what float32 saves.

On the scaling data (:func:`_common.make_manifold_mixture`) with its HNSW
graph (``KNNGraph(7, backend="hnsw")``, normalized), alpha = 0.99, 10 classes:

- one sparse product ``W @ Y`` in scipy float64, scipy float32 and torch CSR
  float32 (median of 5);
- whole solves to tol = 1e-6: skssl's ``solve_diffusion(solver="cg")``
  against :func:`plain_block_cg`, the textbook block CG that updates every
  column each iteration, in float64 and float32. The plain CG is a peer
  written here for the comparison, not a copy of skssl's solver.

Results go to ``results/propagation_cg_profile.json`` and the table to
``results/propagation.md``.

Examples
--------
    python benchmarks/bench_solver.py                  # n = 1e6, ~7 min
    python benchmarks/bench_solver.py --quick --out /tmp/solver   # n = 3e4
    python benchmarks/bench_solver.py --report         # table from json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _common import (
    RESULTS,
    command_line,
    emit,
    int_float,
    load_average,
    log,
    machine_info,
    make_manifold_mixture,
    markdown_table,
    median_seconds,
    run_worker,
    timed,
    write_json,
)

CG_JSON = "propagation_cg_profile.json"
ALPHA, TOL, MAX_ITER = 0.99, 1e-6, 10_000
SKSSL_CALL = "skssl.solvers.solve_diffusion(solver='cg')"


def plain_block_cg(W, Y, alpha, tol, max_iter, dtype):
    """Benchmark peer: block CG on ``(I - alpha W) Z = Y``, all columns always.

    No per-column step bookkeeping and no freezing of converged columns, so
    one iteration is one sparse product and a few dense updates, in ``dtype``
    (inner products accumulate in float64).
    """
    W = W.astype(dtype)
    Y = Y.astype(dtype)
    Z = np.zeros_like(Y)
    R = Y.copy()
    P = R.copy()
    rs = np.einsum("ij,ij->j", R, R, dtype=np.float64)
    scale = np.sqrt(rs)
    it = 0
    while it < max_iter and (np.sqrt(rs) / scale).max() > tol:
        AP = P - dtype(alpha) * (W @ P)
        denom = np.einsum("ij,ij->j", P, AP, dtype=np.float64)
        step = (rs / denom).astype(dtype)
        Z += P * step
        R -= AP * step
        rs_new = np.einsum("ij,ij->j", R, R, dtype=np.float64)
        P = R + P * (rs_new / rs).astype(dtype)
        rs = rs_new
        it += 1
    return Z, it


def sparse_products(Wn, Y, rec):
    """One ``W @ Y`` in scipy float64 / float32 and torch CSR float32."""
    import scipy.sparse as sp

    W32 = sp.csr_matrix(Wn, dtype=np.float32)
    Y32 = Y.astype(np.float32)
    rec["matvec_float64_s"] = median_seconds(lambda: Wn @ Y)
    rec["matvec_float32_s"] = median_seconds(lambda: W32 @ Y32)
    try:
        import torch

        Wt = torch.sparse_csr_tensor(
            torch.from_numpy(W32.indptr.astype(np.int64)),
            torch.from_numpy(W32.indices.astype(np.int64)),
            torch.from_numpy(W32.data),
            size=W32.shape,
        )
        Yt = torch.from_numpy(Y32)
        rec["matvec_torch_float32_s"] = median_seconds(lambda: Wt @ Yt)
        rec["torch_threads"] = torch.get_num_threads()
    except Exception as exc:  # torch is optional for this profile
        rec["torch_error"] = repr(exc)


def worker(n, seed):
    """Profile the solve at one n; prints the record."""
    from skssl.datasets import mask_labels
    from skssl.diffusion import class_mass_normalize, label_matrix
    from skssl.graph import KNNGraph, normalize_affinity
    from skssl.solvers import solve_diffusion

    X, y = make_manifold_mixture(n, random_state=seed)
    ym = mask_labels(y, per_class=10, random_state=seed)
    W = KNNGraph(7, backend="hnsw", random_state=seed).fit(X).affinity_
    del X
    Wn, _ = normalize_affinity(W)
    Y = label_matrix(ym, 10)
    unlabeled = ym == -1
    rec = {"n": n, "nnz": int(Wn.nnz), "load_before": load_average()}

    def accuracy(Z):
        pred = class_mass_normalize(Z).argmax(axis=1)
        return float(np.mean(pred[unlabeled] == y[unlabeled]))

    sparse_products(Wn, Y, rec)
    res, seconds = timed(
        solve_diffusion, Wn, Y, alpha=ALPHA, tol=TOL, max_iter=MAX_ITER
    )
    rec["skssl_call"] = SKSSL_CALL
    rec["skssl_cg_s"] = seconds
    rec["skssl_cg_iter"] = res.n_iter
    rec["skssl_cg_accuracy"] = accuracy(res.solution)
    for name, dtype in (("lean_float64", np.float64), ("lean_float32", np.float32)):
        (Z, it), seconds = timed(plain_block_cg, Wn, Y, ALPHA, TOL, MAX_ITER, dtype)
        Z64 = Z.astype(np.float64)
        true_res = np.linalg.norm(Y - (Z64 - ALPHA * (Wn @ Z64)), axis=0)
        rec[f"{name}_s"] = seconds
        rec[f"{name}_iter"] = it
        rec[f"{name}_accuracy"] = accuracy(Z)
        rec[f"{name}_true_residual"] = float(
            (true_res / np.linalg.norm(Y, axis=0)).max()
        )
        rec[f"{name}_agreement"] = float(
            np.mean(Z.argmax(axis=1) == res.solution.argmax(axis=1))
        )
    rec["load_after"] = load_average()
    emit(rec)


def run(args):
    log(f"[solver] n={args.n:,}")
    worker_args = ["profile", "--n", str(args.n), "--seed", str(args.seed)]
    rec = run_worker(__file__, worker_args, args.timeout)
    rec["command"] = command_line()
    write_json(args.out / CG_JSON, {"machine": machine_info(), "result": rec})


def markdown(cg):
    """The solver-profile section of propagation.md."""
    r = cg["result"]
    if r.get("status") != "ok":
        return ["## Conjugate-gradient profile", "", f"{r.get('status')}", ""]
    torch_part = (
        f", torch CSR float32 ({r['torch_threads']} threads) "
        f"{r['matvec_torch_float32_s']:.3f} s"
        if "matvec_torch_float32_s" in r
        else ""
    )
    # Profiles taken before solve_diffusion existed timed conjugate_gradient.
    call = r.get("skssl_call", "skssl.solvers.conjugate_gradient")
    rows = [
        [
            f"skssl {call.rsplit('.', 1)[-1]} (float64)",
            f"{r['skssl_cg_s']:.2f}",
            r["skssl_cg_iter"],
            f"{r['skssl_cg_s'] / r['skssl_cg_iter']:.3f}",
            "≤ 1e-6",
            f"{r['skssl_cg_accuracy']:.4f}",
            "1",
        ]
    ]
    for name in ("lean_float64", "lean_float32"):
        rows.append(
            [
                f"plain block CG ({name.split('_')[1]})",
                f"{r[name + '_s']:.2f}",
                r[name + "_iter"],
                f"{r[name + '_s'] / max(r[name + '_iter'], 1):.3f}",
                f"{r[name + '_true_residual']:.1e}",
                f"{r[name + '_accuracy']:.4f}",
                f"{r[name + '_agreement']:.4f}",
            ]
        )
    headers = ["solver", "seconds", "iterations", "s / iteration"]
    headers += ["true rel. residual", "accuracy", "agreement"]
    return [
        "## Conjugate-gradient profile",
        "",
        f"n = {r['n']:,} (HNSW graph, {r['nnz']:,} non-zeros, 10 classes), "
        "alpha 0.99, tol 1e-6. One sparse product W @ Y (n × 10), median of 5: "
        f"scipy float64 {r['matvec_float64_s']:.3f} s, scipy float32 "
        f"{r['matvec_float32_s']:.3f} s{torch_part}. Whole solves: `{call}` "
        "against a plain block CG that updates every column each iteration (no "
        "per-column bookkeeping), in float64 and float32. `agreement` = share of "
        "rows whose arg-max matches skssl's solve. Command: `" + r["command"] + "`.",
        "",
        *markdown_table(rows, headers),
        "",
    ]


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument(
        "--report",
        action="store_true",
        help="only rebuild propagation.md and the plot from the json files",
    )
    p.add_argument("--n", type=int_float, default=1_000_000, help="rows (1e6)")
    p.add_argument("--seed", type=int, default=0, help="data and label seed")
    p.add_argument(
        "--timeout", type=float, default=1200.0, help="seconds (default 1200)"
    )
    p.add_argument("--quick", action="store_true", help="smoke run: n = 30,000")
    p.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.n = min(args.n, 30_000)
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        worker(args.n, args.seed)
        return
    import report

    if not args.report:
        run(args)
    report.write_report(args.out)


if __name__ == "__main__":
    main()
