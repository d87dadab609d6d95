"""bench/tables.py and bench/report.py: what a performance table says, from a benchmark's record."""

import statistics
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import report  # noqa: E402
import tables  # noqa: E402


def benchmark(group, samples: dict, base="gpunn", **extra):
    return {"group": group, "extra_info": {"interleaved": {k: statistics.median(v) for k, v in samples.items()},
                                           "samples": samples, "base": base, "rounds": 5, "block": 2, **extra}}


@pytest.fixture
def data():
    peers = {"gpunn": {"threads": 2, "blas": "NumPy's openblas 0.3.31 SkylakeX"},
             "faiss": {"threads": 2, "blas": "faiss-cpu's openblas 0.3.15 Prescott"}}
    return {"datetime": "2026-12-06T00:00:00", "machine_info": {"cpu": {"brand_raw": "CPU", "count": 2}},
            "benchmarks": [
                benchmark("far apart", {"gpunn": [1.0, 1.1, 1.2, 1.0, 1.1], "faiss": [3.0, 3.1, 3.3, 2.9, 3.0]},
                          peers=peers, data="random normal float32 (1000, 64)"),
                benchmark("close", {"gpunn": [1.0, 1.4, 1.2, 0.9, 1.3], "faiss": [1.1, 1.5, 1.0, 1.3, 1.2]},
                          peers=peers, data="random normal float32 (10, 64)"),
            ],
            "environment": {"openblas_coretype": "SkylakeX", "openblas_coretype_why": "faiss_cpu's OpenBLAS ..."},
            "measured": {"commit": "0123456789abcdef", "files": ["gpunn/a.py", "bench/test_x.py"], "uncommitted": []}}


def test_rows_give_median_quartiles_extremes_and_whether_the_spread_hides_the_difference(data):
    rows = {(r.group, r.impl): r for r in report.timings(data)}
    far, close = rows[("far apart", "faiss")], rows[("close", "faiss")]
    q1, _, q3 = statistics.quantiles([3.0, 3.1, 3.3, 2.9, 3.0], n=4, method="inclusive")
    assert far.ms == pytest.approx(3000) and (far.q1_ms, far.q3_ms) == pytest.approx((q1 * 1e3, q3 * 1e3))
    assert (far.low_ms, far.high_ms, far.samples) == (pytest.approx(2900), pytest.approx(3300), 5)
    assert far.ratio == pytest.approx(3.0 / 1.1) and not far.within_spread
    assert close.within_spread  # middle halves of 0.2 s against medians 0.0 s apart
    assert not rows[("close", "gpunn")].within_spread and rows[("close", "gpunn")].is_base


def test_the_table_names_data_peers_commit_and_coretype(data):
    text = tables.table("demo", data)
    for expected in ("random normal float32 (1000, 64)", "5 rounds of 2 calls, interleaved in one process",
                     "faiss-cpu's openblas 0.3.15 Prescott", "``0123456789``, 2 files measured",
                     "``OPENBLAS_CORETYPE=SkylakeX``", "middle halves wider than the difference"):
        assert expected in text, expected
    assert text.count("middle halves wider than the difference") == 1


def test_a_generic_openblas_kernel_asks_for_numpys():
    numpy_blas = {"internal_api": "openblas", "version": "0.3.31", "architecture": "SkylakeX",
                  "filepath": "/venv/site-packages/numpy.libs/libscipy_openblas64_.so"}
    faiss_blas = {"internal_api": "openblas", "version": "0.3.15", "architecture": "Prescott",
                  "filepath": "/venv/site-packages/faiss_cpu.libs/libopenblaso.so"}
    coretype, why = tables.coretype_needed([numpy_blas, faiss_blas])
    assert coretype == "SkylakeX" and "faiss_cpu's OpenBLAS 0.3.15 picks its generic Prescott kernel" in why
    assert tables.coretype_needed([numpy_blas, {**faiss_blas, "architecture": "SkylakeX"}]) == (None, None)


def test_the_blas_libraries_are_read_from_a_real_process():
    from threadpoolctl import threadpool_info

    import numpy  # noqa: F401

    here = {p["filepath"] for p in threadpool_info() if p["user_api"] == "blas"}
    assert here <= {p["filepath"] for p in tables.blas_libraries()}  # NumPy's at least, as this process sees it
