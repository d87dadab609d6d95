"""Benchmark settings shared by every suite in bench/."""

import time

import pytest


@pytest.fixture(autouse=True)
def settle():
    """A short pause before each benchmark so BLAS threads and caches settle after the last one."""
    time.sleep(0.5)
    yield
