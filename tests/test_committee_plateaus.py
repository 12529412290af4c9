"""The symmetric plateau of the committee ODE at finite learning rate, the exact overlaps of
random weights, and the ln N growth of the escape time from a random start (Saad & Solla 1995;
Biehl, Riegler & Wöhler 1996)."""

import math

import numpy as np
import pytest

from reducedflow.models.committee import (
    escape_times_from_random_weights,
    plateau_escape_rate,
    plateau_generalisation_error,
    random_weight_overlaps,
    symmetric_plateau,
)
from reducedflow.networks.committee import sample_committee


def test_symmetric_plateau_tends_to_the_closed_form_and_moves_with_eta():
    small = symmetric_plateau(2, 1e-6)
    assert abs(small.generalisation_error - plateau_generalisation_error(2)) < 1e-7
    assert abs(small.escape_rate / 1e-6 - plateau_escape_rate(2)) < 1e-6 * plateau_escape_rate(2)
    finite = symmetric_plateau(2, 0.5)
    assert finite.residual < 1e-12
    q, r = finite.state["Q"], finite.state["R"]
    assert np.ptp(q) < 1e-12 and np.ptp(r) < 1e-12  # still symmetric
    assert finite.generalisation_error > 1.2 * plateau_generalisation_error(2)  # the eta^2 terms raise it
    assert finite.escape_rate > plateau_escape_rate(2, 0.5)  # and the escape rate, at O(eta^2)


def test_random_weight_overlaps_match_actual_random_weights():
    """Mean and spread of Q and R against order parameters measured from N-dimensional weights."""
    n, draws = 30, 4000
    exact = random_weight_overlaps(2, 2, n, key=0, seeds=draws)
    teacher, students = sample_committee(2, 2, n, key=1, seeds=draws)
    q = np.einsum("skn,sln->skl", students, students) / n
    r = np.einsum("skn,mn->skm", students, teacher) / n
    for mine, theirs in ((exact["Q"], q), (exact["R"], r)):
        stderr = theirs.std(axis=0) / math.sqrt(draws)
        assert np.all(np.abs(mine.mean(axis=0) - theirs.mean(axis=0)) < 5 * math.sqrt(2) * stderr)
        assert np.allclose(mine.std(axis=0), theirs.std(axis=0), rtol=0.08)
    # and the spreads are the textbook ones: Var Q_ii = 2/N, Var R = 1/N
    assert abs(exact["Q"][:, 0, 0].var() * n / 2 - 1) < 0.1
    assert abs(exact["R"].var() * n - 1) < 0.1
    with pytest.raises(ValueError, match="dimension"):
        random_weight_overlaps(2, 2, 3, key=0)


def test_escape_time_grows_like_log_n_over_twice_the_escape_rate():
    """t_esc = a + b ln N with b = 1 / (2 lambda_esc): exp(lambda t_esc) ~ N^(1/2)."""
    study = escape_times_from_random_weights(2, 0.5, (1e4, 1e5, 1e6, 1e7), seeds=32, key=1)
    assert np.all(np.diff(study.mean_times) > 0)
    assert 0.38 < study.fit.exponent < 0.65, study.fit  # 1/lambda would give 1.0, 1/(4 lambda) 0.25
    b = study.fit.exponent / study.escape_rate
    print(f"b = {b:.3f}, 1/(2 lambda) = {0.5 / study.escape_rate:.3f}, fit {study.fit}")
