"""scikit-learn's own estimator checks, run on every gpunn estimator and transformer."""

from sklearn.utils.estimator_checks import parametrize_with_checks

import gpunn as gn
from gpunn.preprocessing import MeanSubtraction, PCAWhitening, Standardize

ESTIMATORS = [
    gn.KNeighborsClassifier(device="cpu"),
    gn.KNeighborsClassifier(device="cpu", precision="float64"),
    gn.LinearClassifier(device="cpu"),
    gn.LinearClassifier(device="cpu", precision="float64"),
    gn.LinearClassifier(loss="svm", device="cpu"),
    gn.LinearClassifier(loss="svm", device="cpu", precision="float64"),
    gn.MLPClassifier(device="cpu"),
    gn.MLPClassifier(device="cpu", precision="float64"),
    gn.MLPClassifier(device="cpu", precision="float64", early_stopping=True),  # the validation split's path
    Standardize(),
    MeanSubtraction(),
    PCAWhitening(),
]


FLOAT32_ROUNDING = (
    "float32 scores of a row predicted alone and within a batch differ in the last bits (about 1e-6 relative: "
    "BLAS sums a one-row product in another order); the check allows 1e-7. The float64 instance passes it."
)


def expected_failed_checks(estimator):
    """The checks a gpunn estimator is known to fail, each with the reason."""
    if isinstance(estimator, gn.MLPClassifier) and estimator.precision == "float32":
        return {"check_methods_subset_invariance": FLOAT32_ROUNDING}
    return {}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
