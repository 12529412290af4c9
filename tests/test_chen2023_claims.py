"""Every chen2023 claim passes with numeric measurements, and the acceptance rules reject a wrong
theory (the Stratonovich reading, which has no noise-induced collapse)."""

import numpy as np
import pytest

from reducedflow.claims import chen2023
from reducedflow.claims._registry import REGISTRY, run_checks

NAMES = sorted(REGISTRY["chen2023"])


def _numeric(value):
    arr = np.asarray(value)
    return np.issubdtype(arr.dtype, np.number) and np.all(np.isfinite(arr))


@pytest.mark.parametrize("name", NAMES)
def test_claim_passes_with_numeric_measurements(name):
    (result,) = run_checks("chen2023", name)
    assert result.passed, result.summary()
    assert result.measured and all(_numeric(v) for v in result.measured.values()), result.summary()


def test_registry_lists_the_issue_claims():
    assert set(NAMES) == {
        "quartic-threshold", "tanh-neuron-threshold-label-noise-sgd", "tanh-neuron-threshold-minibatch-sgd",
        "noise-makes-maximum-and-saddle-attractive", "isotropic-noise-repels-in-three-dimensions",
        "quartic-stationary-moments", "label-noise-modes-soft-threshold", "soft-thresholding-beats-gradient-flow",
    }


def test_stratonovich_prediction_fails_the_exponent_check():
    from reducedflow.models.collapse_sgd import discrete_multiplier_exponent

    zeta, step = 1.25 * np.sqrt(2 * chen2023.MU), 0.01
    measured, stderr = chen2023.quartic_linearised_exponent(zeta, step)
    ito = discrete_multiplier_exponent(chen2023.MU, zeta, step)
    stratonovich = chen2023.MU  # exponent of d theta = mu theta dt + zeta theta o dB: no collapse
    assert chen2023.exponent_agrees(measured, stderr, ito)
    assert not chen2023.exponent_agrees(measured, stderr, stratonovich)
    # and a factor-2 error in the Ito correction (mu - zeta^2) is rejected too
    assert not chen2023.exponent_agrees(measured, stderr, chen2023.MU - zeta**2)
