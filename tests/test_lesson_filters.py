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


def test_run_writes_the_picture_and_returns_its_numbers(tmp_path):
    pytest.importorskip("matplotlib")
    assert LESSONS["filters"] == "gpunn.lessons.filters"
    result = filters.run(tmp_path, device="cpu", seed=0)
    assert (tmp_path / "filters.png").read_bytes()[:4] == b"\x89PNG"
    assert result["files"] == [str(tmp_path / "filters.png")]
    assert "test accuracy" in result["summary"]
    assert result["filters"].shape == result["initial_filters"].shape == (32, 1, 5, 5)
    assert result["test_accuracy"] > 0.95
    # training moved the filters far from their random start
    change = np.linalg.norm(result["filters"] - result["initial_filters"]) / np.linalg.norm(result["initial_filters"])
    assert change > 2
