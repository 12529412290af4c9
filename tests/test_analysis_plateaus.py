"""Plateau / transition detection and power-law fits (analysis/plateaus.py): synthetic
staircases with known transition times and levels, an exact linear-network learning curve,
analytic crossings, and least-squares fits whose confidence intervals are checked for
coverage."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from reducedflow.analysis.plateaus import (
    PlateauAnalysis,
    ScalingFit,
    detect_plateaus,
    fit_scaling,
    transition_time,
)
from reducedflow.models.linear_modes import BalancedModes

TIMES = (1e-6, 1e-3, 1e-1)
LEVELS = (1.5, 1.0, 0.5, 0.0)


def staircase(t, times=TIMES, levels=LEVELS, width=0.1):
    """Sum of logistic steps in log10 t: level levels[k] -> levels[k+1] centred at times[k]
    (width in decades). Each step is antisymmetric about its centre, so with well separated
    steps the curve crosses the midpoint of two levels at the step time."""
    x = np.log10(t)
    risk = np.full_like(x, levels[-1])
    for tk, before, after in zip(times, levels[:-1], levels[1:]):
        risk += (before - after) / (1.0 + np.exp((x - np.log10(tk)) / width))
    return risk


def _check_staircase(analysis, times, levels, *, time_tol, level_tol):
    assert len(analysis.plateaus) == len(levels)
    assert len(analysis.transitions) == len(times)
    np.testing.assert_allclose(analysis.levels, levels, atol=level_tol)
    log_error = np.abs(np.log(analysis.transition_times / np.array(times)))
    assert log_error.max() < time_tol, log_error
    for tr, before, after in zip(analysis.transitions, levels[:-1], levels[1:]):
        assert tr.start < tr.time < tr.end
        assert abs(tr.risk_before - before) < level_tol and abs(tr.risk_after - after) < level_tol
        assert tr.drop == pytest.approx(tr.risk_before - tr.risk_after)
    for p, q in zip(analysis.plateaus[:-1], analysis.plateaus[1:]):
        assert p.start < p.end < q.start < q.end


# ----------------------------------------------------------------------------------------------
# Synthetic staircases


def test_staircase_on_log_grid():
    t = np.logspace(-9, 2, 2201)
    analysis = detect_plateaus(t, staircase(t))
    _check_staircase(analysis, TIMES, LEVELS, time_tol=1e-3, level_tol=1e-6)
    assert analysis.plateaus[0].start == t[0] and analysis.plateaus[-1].end == t[-1]
    assert analysis.plateaus[0].log_duration == pytest.approx(math.log10(analysis.plateaus[0].end / t[0]))
    # JAX arrays in, the same analysis out.
    from_jax = detect_plateaus(jnp.asarray(t), jnp.asarray(staircase(t)))
    assert from_jax.plateaus == analysis.plateaus and from_jax.transitions == analysis.transitions


def test_staircase_on_random_nonuniform_grid():
    rng = np.random.default_rng(11)
    t = np.sort(10 ** rng.uniform(-9, 2, 3000))
    _check_staircase(detect_plateaus(t, staircase(t)), TIMES, LEVELS, time_tol=5e-3, level_tol=1e-3)


def test_staircase_on_uniform_time_grid():
    # 2e5 samples uniform in t: the last decades hold almost all of them (grid cells take medians).
    times = (0.1, 3.0, 100.0)
    t = np.linspace(1e-3, 1e4, 200_001)
    _check_staircase(detect_plateaus(t, staircase(t, times)), times, LEVELS, time_tol=0.01, level_tol=1e-3)


def test_initial_transient_is_not_a_plateau():
    # The record starts in the middle of a fast drop from 3.0 to 1.5 (on a 1e-8 timescale).
    t = np.logspace(-9, 2, 2201)
    risk = staircase(t) + 1.5 * np.exp(-t / 1e-8)
    analysis = detect_plateaus(t, risk)
    _check_staircase(analysis, TIMES, LEVELS, time_tol=1e-3, level_tol=1e-3)
    assert analysis.plateaus[0].start > 3e-8  # the first plateau begins after the transient


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_noisy_staircase(seed):
    # 10% multiplicative log-normal noise (median 1), 200 samples per decade, smoothed over 0.3 decades.
    rng = np.random.default_rng(seed)
    t = np.logspace(-9, 2, 2201)
    risk = staircase(t) * np.exp(0.1 * rng.standard_normal(t.shape))
    analysis = detect_plateaus(t, risk, smoothing=0.3)
    _check_staircase(analysis, TIMES, LEVELS, time_tol=0.1, level_tol=0.02)
    # The unsmoothed detector is not fooled into extra transitions either.
    assert len(detect_plateaus(t, risk, smoothing=0.0).transitions) <= 3


def test_closer_steps_need_shorter_min_duration():
    # Steps 1.5 decades apart with width 0.1: the stretch between them that is flat to 5% of
    # the height per decade lasts ~0.5 decades, so a 1-decade minimum merges the two steps
    # into one transition, the default (0.3) does not.
    times, levels = (1e-2, 10**-0.5), (1.0, 0.6, 0.0)
    t = np.logspace(-5, 2, 1401)
    risk = staircase(t, times, levels)
    _check_staircase(detect_plateaus(t, risk), times, levels, time_tol=1e-3, level_tol=1e-3)
    merged = detect_plateaus(t, risk, min_log_duration=1.0)
    assert len(merged.transitions) == 1
    assert merged.transitions[0].risk_before == pytest.approx(1.0, abs=1e-3)
    assert merged.transitions[0].risk_after == pytest.approx(0.0, abs=1e-3)


# ----------------------------------------------------------------------------------------------
# Curves without (intermediate) plateaus


def test_exponential_decay_seen_from_far_before_its_timescale():
    # On log t, exp(-t) sampled from t = 1e-4 is flat at 1, drops at t ~ 1, and rests at 0.
    t = np.logspace(-4, 3, 701)
    analysis = detect_plateaus(t, np.exp(-t))
    assert len(analysis.plateaus) == 2 and len(analysis.transitions) == 1
    np.testing.assert_allclose(analysis.levels, [1.0, 0.0], atol=2e-3)
    tr = analysis.transitions[0]
    # The midpoint crossing, checked against the inverse of exp(-t) at the reported midpoint.
    midpoint = 0.5 * (tr.risk_before + tr.risk_after)
    assert tr.time == pytest.approx(-math.log(midpoint), rel=1e-4)
    assert tr.time == pytest.approx(math.log(2.0), rel=0.01)


def test_exponential_decay_from_its_start_has_only_the_final_plateau():
    t = np.logspace(-1, 3, 401)  # the decay is under way at the first sample
    analysis = detect_plateaus(t, np.exp(-t))
    assert len(analysis.plateaus) == 1 and len(analysis.transitions) == 0
    final = analysis.plateaus[0]
    assert final.level < 1e-6 and final.end == t[-1] and final.start > 5.0
    # On linear time (thresholds then in units of t), likewise.
    t = np.linspace(0.0, 20.0, 2001)
    analysis = detect_plateaus(t, np.exp(-t), log_time=False, min_log_duration=1.0)
    assert len(analysis.plateaus) == 1 and len(analysis.transitions) == 0
    assert analysis.plateaus[0].level < 1e-4 and 8.0 < analysis.plateaus[0].start < 12.0


def test_power_law_decay_is_never_flat():
    # risk = 1/(1 + t): flat at 1 for t << 1, then a power law ~ 1/t, which changes by a
    # factor 10 per decade: no final plateau (flatness is relative to the height).
    t = np.logspace(-4, 3, 701)
    analysis = detect_plateaus(t, 1.0 / (1.0 + t))
    assert len(analysis.plateaus) == 1 and len(analysis.transitions) == 0
    assert analysis.plateaus[0].level == pytest.approx(1.0, abs=5e-3)
    assert analysis.plateaus[0].end < 0.1


def test_constant_curve_and_rise():
    t = np.logspace(0, 3, 301)
    analysis = detect_plateaus(t, np.full_like(t, 0.7))
    assert len(analysis.plateaus) == 1 and not analysis.transitions
    assert analysis.plateaus[0].level == 0.7
    # A rise separates two plateaus but is not a transition.
    rising = detect_plateaus(t, staircase(t, (10.0,), (0.2, 0.8)))
    assert len(rising.plateaus) == 2 and not rising.transitions
    np.testing.assert_allclose(rising.levels, [0.2, 0.8], atol=1e-3)


def test_baseline_for_a_curve_with_an_offset():
    # The same staircase lifted by 5: relative thresholds measure heights above the baseline.
    t = np.logspace(-9, 2, 2201)
    lifted = staircase(t) + 5.0
    levels = tuple(level + 5.0 for level in LEVELS)
    _check_staircase(detect_plateaus(t, lifted, baseline=5.0), TIMES, levels, time_tol=1e-3, level_tol=1e-6)


# ----------------------------------------------------------------------------------------------
# A real learning curve: balanced two-layer linear network modes (Saxe et al. 2014)


def test_linear_network_modes_transitions_match_closed_form():
    s = np.array([4.0, 1.0, 0.25])
    u0 = 1e-12 * s
    modes = BalancedModes(s)
    t = np.logspace(-2, 3, 1001)
    u = np.asarray(modes.closed_form(t, u0))
    risk = 0.5 * np.sum((s - u) ** 2, axis=-1)
    analysis = detect_plateaus(t, risk)
    assert len(analysis.transitions) == 3
    # Plateau levels: 0.5 * sum of the squared singular values not yet learned.
    expected_levels = [0.5 * np.sum(s[k:] ** 2) for k in range(4)]
    np.testing.assert_allclose(analysis.levels, expected_levels, rtol=1e-6, atol=1e-8)
    # Mode k's risk 0.5 (s - u)^2 crosses the midpoint of its drop when u = s (1 - 1/sqrt 2).
    midpoint_times = np.asarray(modes.learning_time(u0, s * (1.0 - 2**-0.5)))
    np.testing.assert_allclose(analysis.transition_times, midpoint_times, rtol=1e-3)
    # ... which is within a few % of the half-learning time (tau / 2s) log((s - u0) / u0).
    half_times = np.asarray(modes.learning_time(u0, s / 2))
    np.testing.assert_allclose(half_times, np.log((s - u0) / u0) / (2 * s), rtol=1e-12)
    np.testing.assert_allclose(analysis.transition_times, half_times, rtol=0.05)


# ----------------------------------------------------------------------------------------------
# transition_time


def test_transition_time_analytic_crossings():
    t = np.logspace(-3, 3, 61)  # contains t = 1 exactly
    assert transition_time(t, 1.0 / (1.0 + t), 0.5) == pytest.approx(1.0, rel=1e-12)
    # Off the grid: 1/(1 + t) is a logistic in log t, interpolated linearly between samples.
    t = np.logspace(-3, 3, 50)
    assert transition_time(t, 1.0 / (1.0 + t), 0.5) == pytest.approx(1.0, rel=1e-4)
    assert transition_time(t, 1.0 / (1.0 + t), 0.1) == pytest.approx(9.0, rel=0.02)
    # Linear interpolation in t with log_time=False: exact for a linear curve.
    t = np.linspace(0.0, 2.0, 5)
    assert transition_time(t, 1.0 - t, 0.3, log_time=False) == pytest.approx(0.7, rel=1e-12)
    # Never reached, or already below at the start: NaN. A rise then a fall: the fall.
    t = np.logspace(0, 2, 21)
    assert math.isnan(transition_time(t, 1.0 / (1.0 + t), 0.001))
    assert math.isnan(transition_time(t, 0.1 + 0.0 * t, 0.5))
    bump_t, bump = np.array([1.0, 10.0, 100.0, 1000.0]), np.array([0.2, 2.0, 1.0, 0.0])
    assert transition_time(bump_t, bump, 0.5) == pytest.approx(10**2.5, rel=1e-12)


# ----------------------------------------------------------------------------------------------
# fit_scaling


def test_fit_exact_power_law():
    p = np.logspace(-6, -1, 8)
    fit = fit_scaling(p, 3.7 * p**0.5)
    assert isinstance(fit, ScalingFit)
    assert abs(fit.exponent - 0.5) < 1e-10
    assert fit.prefactor == pytest.approx(3.7, rel=1e-9)
    assert fit.r_squared == pytest.approx(1.0, abs=1e-12) and fit.n == 8
    assert fit.stderr < 1e-10 and np.abs(fit.residuals).max() < 1e-10
    np.testing.assert_allclose(fit.predict([1e-4, 0.3]), 3.7 * np.array([1e-4, 0.3]) ** 0.5, rtol=1e-9)
    assert str(fit).startswith("exponent 0.5 ± ") and "(95% CI)" in str(fit)


def test_fit_log_factor_recovers_exponent():
    eps = np.logspace(-8, -2, 7)
    times = eps**0.5 * np.log(1.0 / eps)
    fit = fit_scaling(eps, times, log_factor=1.0)
    assert abs(fit.exponent - 0.5) < 1e-10 and fit.prefactor == pytest.approx(1.0, rel=1e-9)
    np.testing.assert_allclose(fit.predict(eps), times, rtol=1e-9)
    # Without dividing out the logarithm, the fitted exponent is visibly off.
    assert abs(fit_scaling(eps, times).exponent - 0.5) > 0.05


def _noisy_power_law(rng, p, exponent=-0.75, prefactor=2.0, sigma=0.1, repeats=None):
    shape = p.shape if repeats is None else p.shape + (repeats,)
    clean = prefactor * p**exponent
    if repeats is not None:
        clean = clean[:, None]
    return clean * np.exp(sigma * rng.standard_normal(shape))


def test_noisy_fit_interval_covers_truth():
    rng = np.random.default_rng(5)
    p = np.logspace(-4, 0, 10)
    fit = fit_scaling(p, _noisy_power_law(rng, p))
    lo, hi = fit.interval
    assert lo < -0.75 < hi and hi - lo < 0.2
    assert fit.prefactor_interval[0] < 2.0 < fit.prefactor_interval[1]
    # The 99% interval is wider than the 95% one by the ratio of Student quantiles (8 dof).
    wide = fit_scaling(p, _noisy_power_law(np.random.default_rng(5), p), confidence=0.99)
    ratio = (wide.interval[1] - wide.interval[0]) / (hi - lo)
    assert ratio == pytest.approx(3.3553873313333957 / 2.3060041350333704, rel=1e-9)


def test_interval_coverage_over_repetitions():
    rng = np.random.default_rng(2024)
    p = np.logspace(-4, 0, 10)
    covered_exponent = covered_prefactor = covered_scatter = 0
    repetitions = 200
    for _ in range(repetitions):
        fit = fit_scaling(p, _noisy_power_law(rng, p))
        covered_exponent += fit.interval[0] < -0.75 < fit.interval[1]
        covered_prefactor += fit.prefactor_interval[0] < 2.0 < fit.prefactor_interval[1]
        repeated = fit_scaling(p[:5], _noisy_power_law(rng, p[:5], repeats=4))
        covered_scatter += repeated.scatter_interval[0] < -0.75 < repeated.scatter_interval[1]
    for covered in (covered_exponent, covered_prefactor, covered_scatter):
        assert 0.90 <= covered / repetitions <= 0.99, covered


def test_repeated_measurements():
    rng = np.random.default_rng(7)
    p = np.logspace(-3, 0, 6)
    times = _noisy_power_law(rng, p, repeats=5)
    fit = fit_scaling(p, times)
    flat = fit_scaling(np.repeat(p, 5), times.reshape(-1))
    assert fit.n == 30 and fit.n_values == 6
    assert fit.exponent == pytest.approx(flat.exponent, rel=1e-12)
    assert fit.scatter_stderr == pytest.approx(flat.scatter_stderr, rel=1e-12)
    # Pure-error standard error by hand: pooled within-group variance of log t.
    logs = np.log(times)
    pooled = np.sum((logs - logs.mean(axis=1, keepdims=True)) ** 2) / (30 - 6)
    sxx = 5 * np.sum((np.log(p) - np.log(p).mean()) ** 2)
    assert fit.scatter_stderr == pytest.approx(math.sqrt(pooled / sxx), rel=1e-12)
    assert fit.lack_of_fit_pvalue > 1e-3 and "scatter of repeats" in str(fit)
    # A curved law (log t quadratic in log p) fails the lack-of-fit test.
    curved = times * np.exp(0.2 * np.log(p)[:, None] ** 2)
    assert fit_scaling(p, curved).lack_of_fit_pvalue < 1e-6
    # Without repeats the scatter quantities are NaN.
    single = fit_scaling(p, times[:, 0])
    assert math.isnan(single.scatter_stderr) and math.isnan(single.lack_of_fit_pvalue)


# ----------------------------------------------------------------------------------------------
# Output


def test_table_xarray_and_plot():
    t = np.logspace(-9, 2, 1101)
    analysis = detect_plateaus(t, staircase(t))
    assert isinstance(analysis, PlateauAnalysis)
    text = analysis.table()
    assert text.startswith("4 plateau(s), 3 transition(s)") and str(analysis) == text
    ds = analysis.to_xarray()
    np.testing.assert_allclose(ds["plateau_level"].values, analysis.levels)
    np.testing.assert_allclose(ds["transition_time"].values, analysis.transition_times)
    np.testing.assert_allclose(ds["risk"].values, staircase(t))
    import matplotlib.pyplot as plt

    ax = analysis.plot()
    assert ax.get_xscale() == "log"
    dotted = [line for line in ax.get_lines() if line.get_linestyle() == ":"]
    np.testing.assert_allclose(sorted(line.get_xdata()[0] for line in dotted), analysis.transition_times)
    plt.close(ax.figure)


# ----------------------------------------------------------------------------------------------
# Bad inputs


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: detect_plateaus([1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0]), "`ts` and `risk`"),
        (lambda: detect_plateaus([0.0, 1.0, 2.0, 3.0], [1.0, 1.0, 1.0, 1.0]), "`ts`"),
        (lambda: detect_plateaus([1.0, 2.0, 3.0, 4.0], [1.0, np.nan, 1.0, 1.0]), "`risk`"),
        (lambda: detect_plateaus([1.0, 3.0, 2.0, 4.0], [1.0, 1.0, 1.0, 1.0]), "`ts`"),
        (lambda: detect_plateaus([1.0, 2.0, 3.0, 4.0], [1.0] * 4, flatness=-0.1), "`flatness`"),
        (lambda: detect_plateaus([1.0, 2.0, 3.0, 4.0], [1.0] * 4, min_log_duration=0), "`min_log_duration`"),
        (lambda: detect_plateaus([1.0, 2.0, 3.0, 4.0], [1.0] * 4, smoothing=np.nan), "`smoothing`"),
        (lambda: transition_time([-1.0, 1.0], [1.0, 0.0], 0.5), "`ts`"),
        (lambda: transition_time([1.0, 2.0], [1.0, 0.0], np.nan), "`level`"),
        (lambda: fit_scaling([1.0, 2.0], [1.0, 2.0]), "`times`"),
        (lambda: fit_scaling([1.0, 2.0, 3.0], [1.0, 2.0]), "`times`"),
        (lambda: fit_scaling([1.0, -2.0, 3.0], [1.0, 2.0, 3.0]), "`parameters`"),
        (lambda: fit_scaling([1.0, 2.0, 3.0], [1.0, np.nan, 3.0]), "`times`"),
        (lambda: fit_scaling([1.0, 2.0, 3.0], [1.0, 0.0, 3.0]), "`times`"),
        (lambda: fit_scaling([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]), "`parameters`"),
        (lambda: fit_scaling([0.1, 0.2, 3.0], [1.0, 2.0, 3.0], log_factor=1.0), "`parameters`"),
        (lambda: fit_scaling([0.1, 0.2, 0.3], [1.0, 2.0, 3.0], confidence=1.5), "`confidence`"),
    ],
)
def test_bad_inputs_raise(call, name):
    with pytest.raises(ValueError, match=name.replace("(", r"\(")):
        call()
