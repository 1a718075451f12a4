"""The CUDA paths: faiss GPU search, the conjugate gradient on a CUDA device
and the estimators with ``device="cuda"``.

Every test is marked ``gpu`` and skipped where no CUDA device is visible to
torch (and, for the search, to faiss), so the suite passes on CPU-only
machines; run ``pytest -m gpu`` on a GPU machine to check these paths alone.
"""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from skssl import DeepLabelPropagationClassifier, LabelSpreadingCG
from skssl.datasets import mask_labels
from skssl.graph import _gpu_available, knn_search, normalize_affinity
from skssl.solvers import solve_diffusion

CUDA = torch.cuda.is_available()

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not CUDA, reason="no CUDA device visible to torch"),
]
needs_faiss_gpu = pytest.mark.skipif(
    not _gpu_available(), reason="this faiss build has no GPU support or sees no GPU"
)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X.astype(np.float32), y


@needs_faiss_gpu
def test_faiss_gpu_search_matches_exact_cpu_search(digits):
    X, _ = digits
    gpu = knn_search(X, 7, backend="gpu")
    cpu = knn_search(X, 7, backend="exact")
    assert gpu.backend == "gpu"
    # Exact search on both devices: the same neighbours up to float ties.
    assert np.mean(gpu.indices == cpu.indices) > 0.99
    np.testing.assert_allclose(gpu.scores, cpu.scores, rtol=1e-3, atol=1e-2)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_conjugate_gradient_on_cuda_matches_cpu(digits, dtype):
    from skssl.graph import KNNGraph

    X, y = digits
    Wn, _ = normalize_affinity(KNNGraph(7, backend="exact").fit(X).affinity_)
    Y = np.eye(10)[y] * (mask_labels(y, per_class=3, random_state=0) >= 0)[:, None]
    cuda = solve_diffusion(Wn, Y, tol=1e-6, dtype=dtype, device="cuda")
    cpu = solve_diffusion(Wn, Y, tol=1e-6, dtype=dtype, device="cpu")
    assert cuda.converged and cpu.converged
    np.testing.assert_allclose(cuda.solution, cpu.solution, rtol=1e-4, atol=1e-6)


def test_label_spreading_on_cuda(digits):
    X, y = digits
    ym = mask_labels(y, per_class=5, random_state=0)
    gpu = LabelSpreadingCG(device="cuda").fit(X, ym)
    cpu = LabelSpreadingCG(device="cpu", backend="exact").fit(X, ym)
    assert np.mean(gpu.transduction_ == cpu.transduction_) > 0.99


def test_deep_label_propagation_on_cuda(digits):
    X, y = digits
    ym = mask_labels(y, per_class=10, random_state=0)
    clf = DeepLabelPropagationClassifier(
        device="cuda", max_epochs=4, n_warmup_epochs=2, random_state=0
    ).fit(X, ym)
    assert next(clf.module_.parameters()).is_cuda
    assert clf.score(X, y) > 0.5
