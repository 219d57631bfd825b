"""Which matrix-product kernel spaCy's layers run on when tickertag tags with a pipeline.

Why: a spaCy NER spends most of its CPU time in the CNN's matrix products, which thinc's
``NumpyOps.gemm`` sends to the BLIS kernels bundled with the ``blis`` package. On some CPUs BLIS
runs its generic kernel: on an AMD EPYC host (2026-12-07) it multiplied the student's shapes at
11-17 GFLOP/s on one thread against 29-66 for numpy's own BLAS (OpenBLAS), and the student
tagged 1.9x faster on numpy's with the same entities on all 1,200 headlines timed
(``python benchmarks/spacy_gemm.py``). On a CPU where BLIS is the faster one it stays.

``TICKERTAG_SPACY_GEMM`` (``spacy_gemm`` in ``tickertag.toml``) picks ``auto`` (default: time
both once per process on the student's shapes and keep the faster), ``numpy`` or ``blis``. Only
products that go through thinc's ops move; spaCy's parser computes its action scores in its own
compiled code on BLIS either way. Training keeps BLIS (its recorded results were trained there).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from functools import cache
from typing import Any

GEMM_ENV = "TICKERTAG_SPACY_GEMM"  # ``spacy_gemm`` in common/settings.py


def numpy_blas_ops() -> Any:
    """thinc's CPU ops with ``gemm`` on ``numpy.matmul`` (the BLAS numpy was built with). It
    keeps the name ``numpy`` so code that asks which ops a layer has still sees CPU ops."""
    import numpy
    from thinc.api import NumpyOps

    class NumpyBlasOps(NumpyOps):
        name = "numpy"

        def gemm(self, x, y, out=None, trans1: bool = False, trans2: bool = False):
            x = x.T if trans1 else x
            y = y.T if trans2 else y
            if out is None:
                return numpy.matmul(x, y)
            numpy.matmul(x, y, out=out)
            return out

    return NumpyBlasOps()


def _gemm_seconds(ops: Any, repeat: int = 30) -> float:
    """Best time of the student's hidden-layer product for one 64-headline batch."""
    import numpy

    rng = numpy.random.default_rng(0)
    x = rng.random((640, 96), dtype=numpy.float32)
    w = rng.random((288, 96), dtype=numpy.float32)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        ops.gemm(x, w, trans2=True)
        best = min(best, time.perf_counter() - t0)
    return best


@cache
def chosen_gemm() -> str:
    """``numpy`` or ``blis``: the setting, or under ``auto`` the faster here (timed once)."""
    from common.settings import get_settings

    choice = get_settings().spacy_gemm
    if choice != "auto":
        return choice
    from thinc.api import NumpyOps

    return "numpy" if _gemm_seconds(numpy_blas_ops()) < _gemm_seconds(NumpyOps()) else "blis"


@contextlib.contextmanager
def tagging_ops() -> Iterator[str]:
    """Build (load) spaCy pipelines inside this block to give their layers the chosen kernel;
    layers keep the ops they were built with, so the block is needed only while loading."""
    from thinc.api import get_current_ops, set_current_ops

    choice = chosen_gemm()
    if choice == "blis":
        yield choice
        return
    before = get_current_ops()
    set_current_ops(numpy_blas_ops())
    try:
        yield choice
    finally:
        set_current_ops(before)


@contextlib.contextmanager
def forced_gemm(kernel: str) -> Iterator[None]:
    """Tag with ``kernel`` (``numpy`` or ``blis``) inside this block, in this process and in
    the processes it spawns (the setting travels in the environment): for benchmarks that time
    both kernels in one run. The setting as it was comes back after the block."""
    from common.settings import get_settings

    before = os.environ.get(GEMM_ENV)
    os.environ[GEMM_ENV] = kernel
    get_settings.cache_clear()
    chosen_gemm.cache_clear()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(GEMM_ENV, None)
        else:
            os.environ[GEMM_ENV] = before
        get_settings.cache_clear()
        chosen_gemm.cache_clear()
