"""The filters lesson: trains the ConvNet, draws the first layer's filters, reports its numbers."""

import numpy as np
import pytest

from gpunn.lessons import LESSONS
from gpunn.lessons import filters


def test_filter_grid_tiles_each_filter_scaled_to_its_own_range(rng):
    W = rng.standard_normal((5, 1, 3, 2))
    grid = filters.filter_grid(W, columns=3, gap=1)
    assert grid.shape == (2 * 4 - 1, 3 * 3 - 1)
    first = grid[:3, :2]
    np.testing.assert_allclose(first, (W[0, 0] - W[0, 0].min()) / np.ptp(W[0, 0]))
    assert grid[:3, 2].tolist() == [1.0, 1.0, 1.0]  # the gap
    assert filters.filter_grid(rng.standard_normal((4, 3, 5, 5))).shape == (5, 4 * 6 - 1, 3)  # colour


def smoothness(W):
    """Mean over filters of np.corrcoef of neighbouring weights (right and down neighbours pooled), each filter centred."""
    W, values = np.asarray(W, dtype=np.float64), []
    for w in W - W.mean(axis=(1, 2, 3), keepdims=True):
        pairs = np.array([(w[c, i, j], w[c, i + di, j + dj]) for c in range(w.shape[0]) for i in range(w.shape[1])
                          for j in range(w.shape[2]) for di, dj in ((0, 1), (1, 0))
                          if i + di < w.shape[1] and j + dj < w.shape[2]])
        a, b = pairs.T
        values.append((a @ b) / np.sqrt((a @ a) * (b @ b)))  # about the mean 0 of the whole filter, as the lesson
    return float(np.mean(values))


def test_neighbour_correlation_tells_noise_from_smooth_filters(rng):
    noise = rng.standard_normal((16, 3, 7, 7))
    ramp = np.broadcast_to(np.linspace(-1, 1, 7), (16, 3, 7, 7)) * rng.standard_normal((16, 1, 1, 1))
    assert abs(filters.neighbour_correlation(noise)) < 0.1
    assert filters.neighbour_correlation(noise) == pytest.approx(smoothness(noise), abs=1e-12)
    assert filters.neighbour_correlation(ramp) == pytest.approx(smoothness(ramp), abs=1e-12) and smoothness(ramp) > 0.4


def test_enlarge_is_bilinear(rng):
    images = rng.standard_normal((2, 1, 8, 8))
    big = filters.enlarge(images, 3)
    assert big.shape == (2, 1, 24, 24)
    np.testing.assert_allclose(big[:, :, 0, 0], images[:, :, 0, 0])  # corners stay; between them, straight lines
    np.testing.assert_allclose(big[:, :, 0, :], np.stack([np.interp(np.linspace(0, 7, 24), np.arange(8), row)
                                                           for row in images[:, 0, 0, :]])[:, None], atol=1e-12)
    assert filters.enlarge(images, 1) is images


def test_run_writes_the_picture_and_returns_its_numbers(tmp_path):
    pytest.importorskip("matplotlib")
    assert LESSONS["filters"] == "gpunn.lessons.filters"
    result = filters.run(tmp_path, device="cpu", seed=0)
    assert (tmp_path / "filters.png").read_bytes()[:4] == b"\x89PNG"
    assert result["files"] == [str(tmp_path / "filters.png")]
    assert "test accuracy" in result["summary"] and "enlarged to 24x24" in result["summary"]
    assert result["filters"].shape == result["initial_filters"].shape == (32, 1, 7, 7)
    assert result["test_accuracy"] > 0.95
    # training moved the filters far from their random start
    change = np.linalg.norm(result["filters"] - result["initial_filters"]) / np.linalg.norm(result["initial_filters"])
    assert change > 2
    # and what they hold is structure, not noise: neighbouring weights of the learned filters go together
    assert abs(smoothness(result["initial_filters"])) < 0.1 and smoothness(result["filters"]) > 0.6
    assert result["neighbour_correlation"][1] == pytest.approx(smoothness(result["filters"]), abs=1e-9)


def test_cifar_files_give_colour_filters(tmp_path, rng):
    pytest.importorskip("matplotlib")
    from test_data import fake_cifar  # random pixels in the real file format

    fake_cifar(tmp_path / "cifar", rng, n=400)
    result = filters.run(tmp_path / "out", device="cpu", data_dir=tmp_path / "cifar")
    assert result["filters"].shape == (32, 3, 7, 7) and result["dataset"] == "cifar10"
    assert (tmp_path / "out" / "filters.png").read_bytes()[:4] == b"\x89PNG"
