"""Claims of Berthier, Montanari, Zhou, "Learning time-scales in two-layers neural networks",
arXiv:2303.00055 (FoCM 2024), as stated and derived in shared/theory/single_index.md, checked on
the mean-field flow (``SingleIndexMeanField``), the stage ODE and the exact finite-width flow.

Reference problem: sigma = exp truncated at degree 4, phi = He1 + He2 + He3 (normalised), a(0) on
Gaussian quantiles, s(0) = 0 (d = infinity), m = 64 neurons."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from .._events import Crossing
from .._save_times import LinearTimes
from .._solve import solve
from ._registry import claim, compare

PAPER = "berthier2023"
WIDTH = 64
T1 = 3.0


def _save_times():
    ts = np.logspace(-9, math.log10(T1), 300)
    ts[-1] = T1
    return ts


def _reference(target=(0.0, 1.0, 1.0, 1.0, 0.0)):
    from ..models.single_index import hermite_coefficients

    exp4 = [math.exp(0.5) / math.sqrt(math.factorial(k)) for k in range(5)]
    return hermite_coefficients(exp4, list(target))


def _mean_field_run(epsilon, coefficients=None, law="gaussian"):
    from ..models.single_index import SingleIndexMeanField, mean_field_initial_state

    coefficients = coefficients or _reference()
    system = SingleIndexMeanField(coefficients, epsilon, WIDTH)
    y0 = mean_field_initial_state(WIDTH, law)
    return system, y0, solve(system, y0, T1, saveat=_save_times())


def _half_learning_times(traj, coefficients, degrees=(1, 2, 3)):
    from ..models.single_index import half_learning_times

    return list(half_learning_times(traj, coefficients, degrees).values())


@claim(PAPER, "phase-one-learning-time",
       "From s = 0 the linear Hermite coefficient is learned at t_1 = sqrt(eps)/(2 sigma_1 phi_1) [asinh(2 x phi_1/(sigma_1 A_2 sqrt(eps))) - ln(1 - x)] "
       "~ sqrt(eps) ln(1/eps) / (4 sigma_1 phi_1) (x = 1 - 1/sqrt 2: first time r_1^2 < phi_1^2 / 2); within 3% for eps <= 1e-3.")
def _phase_one():
    from ..models.single_index import phase_one_second_moment, phase_one_time

    coefficients = _reference()
    eps_values = (1e-3, 1e-4, 1e-5, 1e-6)
    measured, predicted = [], []
    for eps in eps_values:
        _, y0, traj = _mean_field_run(eps)
        measured.append(_half_learning_times(traj, coefficients, (1,))[0])
        second_moment = phase_one_second_moment(y0["second_layer"], coefficients)
        predicted.append(phase_one_time(eps, coefficients.activation[1], coefficients.target[1], second_moment))
    return compare({"t_1 at eps = 1e-3..1e-6": np.array(measured)}, {"t_1 at eps = 1e-3..1e-6": np.array(predicted)}, rtol=0.03)


@claim(PAPER, "incremental-learning-order",
       "Hermite degrees are learned one after the other, in increasing order: t_1 < t_2 < t_3 (half-learning times, eps = 1e-5), "
       "and all of them before t = O(1); on the degree-1 plateau the risk is 1/2 sum_{k >= 2} phi_k^2 = 1.")
def _order():
    coefficients = _reference()
    _, _, traj = _mean_field_run(1e-5)
    times = _half_learning_times(traj, coefficients)
    i = int(np.searchsorted(traj.ts, 2 * times[0]))
    plateau = float(traj.observables["risk"][i])
    increasing = bool(np.all(np.diff(times) > 0)) and times[-1] < T1
    passed = increasing and abs(plateau - 1.0) < 0.08
    return (
        {"t_1, t_2, t_3": np.array(times), "risk at 2 t_1": plateau},
        {"t_1, t_2, t_3": "increasing, < 3", "risk at 2 t_1": 1.0},
        0.08,
        passed,
        "order of the half-learning times; plateau level within 0.08",
    )


@claim(PAPER, "trap-without-linear-coefficient",
       "If sigma_1 phi_1 = 0 then at d = infinity s(t) = 0 for all t: no degree >= 1 is ever learned and the risk stays at 1/2 sum_{k >= 1} phi_k^2 "
       "after the constant is fitted (App. E.2).")
def _trap():
    coefficients = _reference((0.3, 0.0, 1.0, 0.5, 0.0))
    _, _, traj = _mean_field_run(1e-3, coefficients)
    max_overlap = float(np.max(np.abs(traj.ys["overlap"])))
    final_risk = float(traj.observables["risk"][-1])
    expected_risk = 0.5 * (1.0**2 + 0.5**2)
    passed = max_overlap == 0.0 and abs(final_risk - expected_risk) < 1e-9
    return (
        {"max |s(t)|": max_overlap, "final risk": final_risk},
        {"max |s(t)|": 0.0, "final risk": expected_risk},
        1e-9,
        passed,
        "s must stay exactly 0; risk within 1e-9",
    )


@claim(PAPER, "stage-blow-up-time",
       "The degree-l stage ODE with frozen residual blows up at t* = sqrt(eps) / ((l - 1) sqrt(l) sigma_l phi_l s_0^(l - 1)) on the invariant set eps a^2 = s^2 / l "
       "(l = 2, 3; within 1e-4 relative).")
def _blow_up():
    import diffrax as dfx

    from ..models.single_index import StageFlow, stage_blow_up_time

    eps, sigma_l, phi_l, s0 = 1e-4, 0.8, 1.3, 0.05
    measured, predicted = [], []
    for degree in (2, 3):
        system = StageFlow(degree, sigma_l, phi_l, eps, frozen_residual=True)
        y0 = {"second_layer": jnp.array([s0 / math.sqrt(degree * eps)]), "overlap": jnp.array([s0])}
        far = s0 * 10 ** (6 / (degree - 1))
        t_star = stage_blow_up_time(eps, degree, sigma_l, phi_l, s0)
        event = Crossing("far", lambda t, y, s: y["overlap"][0], level=far, direction=1)
        traj = solve(system, y0, t_star * (1 - 1e-8), events=[event], rtol=1e-12, atol=1e-14, solver=dfx.Tsit5(),
                     saveat=LinearTimes(20), max_steps=200_000)
        measured.append(float(traj.events["far"].times[0]))
        predicted.append(t_star)
    return compare({"blow-up time l = 2, 3": np.array(measured)}, {"blow-up time l = 2, 3": np.array(predicted)}, rtol=1e-4,
                   note="measured: hitting time of s = s0 * 10^(6/(l-1)), which precedes t* by 1e-6 relative")


@claim(PAPER, "risk-dissipation",
       "The risk is non-increasing and obeys the dissipation identity dR/dt = -(1/(m eps)) sum_i (sum_k sigma_k r_k s_i^k)^2 "
       "- (1/m) sum_i (1 - s_i^2) a_i^2 (sum_k k sigma_k r_k s_i^(k-1))^2 along the flow.")
def _dissipation():
    system, _, traj = _mean_field_run(1e-4)
    risk = traj.observables["risk"]
    largest_increase = float(max(0.0, np.max(np.diff(risk))))
    errors = []
    for i in range(20, 300, 20):
        y = jax.tree_util.tree_map(lambda v: jnp.asarray(v[i]), traj.ys)
        _, rate = jax.jvp(system.risk, (y,), (system.vector_field(0.0, y, None),))
        dissipation = float(system.dissipation(y))
        errors.append(abs(float(rate) + dissipation) / max(dissipation, 1e-300))
    worst = float(np.max(errors))
    passed = largest_increase <= 1e-12 and worst < 1e-8
    return (
        {"largest risk increase": largest_increase, "max rel. error of dR/dt + dissipation": worst},
        {"largest risk increase": 0.0, "max rel. error of dR/dt + dissipation": 0.0},
        1e-8,
        passed,
        "dR/dt by autodiff of the risk along the field vs the closed-form dissipation, at 14 saved states",
    )
