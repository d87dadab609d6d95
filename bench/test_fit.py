"""Fitting gpunn's classifiers with their defaults beside scikit-learn's references, on the CPU.

The split of issue 10: scikit-learn's digits, features / 16, ``train_test_split(test_size=0.25,
random_state=0)`` (1347 training rows, 450 test rows, 64 features, 10 classes). Peers, timed
interleaved on the same arrays: ``LogisticRegression(max_iter=1000)`` beside
``LinearClassifier(loss="softmax")``, ``LinearSVC()`` beside ``LinearClassifier(loss="svm")`` and
scikit-learn's ``MLPClassifier()`` beside gpunn's. Test accuracies go into ``extra_info``:
gpunn's (and scikit-learn's MLP's) as the mean, min and max over seeds 0-4.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SklearnMLP
from sklearn.svm import LinearSVC

from peers import gpunn_peer, numpy_peer, record, scipy_peer

import gpunn as gn

SEEDS = range(5)


@pytest.fixture(scope="module")
def split():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16, y, test_size=0.25, random_state=0)


def accuracies(make, split) -> dict:
    """Test accuracy of ``make(seed)`` fitted on the training part, over SEEDS."""
    X_train, X_test, y_train, y_test = split
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = [make(seed).fit(X_train, y_train).score(X_test, y_test) for seed in SEEDS]
    return {"mean": float(np.mean(scores)), "min": float(np.min(scores)), "max": float(np.max(scores))}


CASES = {
    "softmax": (lambda seed: gn.LinearClassifier(loss="softmax", device="cpu", random_state=seed),
                "LogisticRegression(max_iter=1000)", lambda seed: LogisticRegression(max_iter=1000)),
    "svm": (lambda seed: gn.LinearClassifier(loss="svm", device="cpu", random_state=seed),
            "LinearSVC()", lambda seed: LinearSVC(random_state=seed)),
    "mlp": (lambda seed: gn.MLPClassifier(device="cpu", random_state=seed),
            "sklearn MLPClassifier()", lambda seed: SklearnMLP(random_state=seed)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_fit_with_defaults(case, split, benchmark, interleaved):
    ours, peer_name, peer = CASES[case]
    X_train, _, y_train, _ = split

    def fit(make):
        def run():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)  # scikit-learn's MLP stops at 200 epochs
                return make(0).fit(X_train, y_train)
        return run

    benchmark.group = f"fit on digits, defaults: {case}"
    peer_info = {"softmax": scipy_peer, "svm": {"threads": 1, "blas": "none (liblinear, one thread)"},
                 "mlp": numpy_peer}[case]
    record(benchmark, {"gpunn": gpunn_peer, peer_name: peer_info},
           data="scikit-learn's digits / 16, train_test_split(test_size=0.25, random_state=0): 1,347 training rows "
                "of 64 features, 10 classes")
    slow = case == "mlp"
    interleaved({"gpunn": fit(ours), peer_name: fit(peer)}, primary="gpunn",
                rounds=5 if slow else 10, block=1 if slow else 3)
    benchmark.extra_info["accuracy"] = {"gpunn": accuracies(ours, split), peer_name: accuracies(peer, split)}
