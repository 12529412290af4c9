"""Claims of Tachet des Combes, Pezeshki, Shabanian, Courville, Bengio, "On the Learning Dynamics of
Deep Neural Networks", arXiv:1809.06848 (2018), checked on ``reducedflow.models.classification_modes``.

Provenance: **only the abstract of the paper was available.** The mode model and every formula
checked here are our own construction (``shared/theory/gradient_starvation.md`` §11.3), built to
reproduce the abstract's statements; they are not verified against the paper."""

from __future__ import annotations

import numpy as np

from ._registry import claim, compare

PAPER = "combes2018"


def _margins(t, y, system):
    return system.margins(y)


@claim(PAPER, "cross-entropy-log-growth-hinge-finite-stop",
       "Under cross-entropy a mode's margin never stops growing (b ~ log t: t db/dt -> 1), while under hinge loss "
       "learning stops at the finite time t* = ln(1/(r u0^2)) / (2 eta p r) (balanced start), when the margin reaches 1.")
def _ce_vs_hinge():
    from .._events import Crossing
    from .._save_times import LogTimes
    from .._solve import solve
    from ..models.classification_modes import ClassificationModes

    p, r, u0 = np.array([0.5]), np.array([1.0]), 0.1
    y0 = {"input_weight": np.array([u0]), "output_weight": np.array([u0])}
    ce = ClassificationModes(p, r, loss="cross_entropy")
    traj = solve(ce, y0, 1e8, log_time=True, saveat=LogTimes(40, first=1e-2), rtol=1e-11, atol=1e-12,
                 backend="scipy", solver="Radau")
    b, t = traj.observables["margins"][-2:, 0], traj.ts[-2:]
    slope = float((b[1] - b[0]) / np.log(t[1] / t[0]))  # d b / d log t at t ~ 1e8
    kappa = float(p[0] * r[0])
    b_end = b[1]
    from scipy.special import expit

    slope_theory = float(2 * kappa * t[1] * b_end * expit(-b_end))  # t db/dt from the exact ODE at the end point
    hinge = ClassificationModes(p, r, loss="hinge")
    one = Crossing("one", _margins, level=1.0, direction=+1)
    h = solve(hinge, y0, 40.0, saveat=np.linspace(0.0, 40.0, 9), events=(one,), rtol=1e-12, atol=1e-14,
              backend="scipy", solver="DOP853")
    t_star = float(np.log(1 / (r[0] * u0**2)) / (2 * kappa))
    stopped = float(np.max(np.abs(h.observables["margins"][h.ts > 1.1 * t_star] - 1.0)))
    measured = {"CE: d margin / d log t at t = 1e8": slope, "hinge: stopping time (event)": h.events["one"].first(),
                "hinge: max |margin - 1| after t*": stopped}
    expected = {"CE: d margin / d log t at t = 1e8": slope_theory, "hinge: stopping time (event)": t_star,
                "hinge: max |margin - 1| after t*": 0.0}
    passed = abs(slope / slope_theory - 1) < 1e-2 and 1.0 < slope < 1.2 and \
        abs(measured["hinge: stopping time (event)"] / t_star - 1) < 1e-8 and stopped < 1e-8
    return measured, expected, 1e-2, passed, ("CE slope vs 2 kappa t b sigma(-b) (finite difference over the last "
                                              "log-spaced interval, 1%); t* relative 1e-8; margin frozen to 1e-8")


@claim(PAPER, "relu-failure-region",
       "A ReLU mode with u0 > 0 fails (the unit dies, output 0, loss stuck at p log 2) if and only if u0^2 - v0^2 < 0 "
       "with v0 < 0 (conserved u^2 - v^2); a linear unit succeeds from the same points.")
def _relu_failure():
    from .._save_times import LinearTimes
    from .._solve import solve
    from ..models.classification_modes import ClassificationModes

    uu, vv = np.meshgrid(np.linspace(0.05, 1.0, 8), np.linspace(-1.0, 1.0, 11))
    u0, v0 = uu.ravel(), vv.ravel()
    keep = np.abs(u0**2 - v0**2) > 1e-3
    u0, v0 = u0[keep], v0[keep]
    k = u0.size
    y0 = {"input_weight": u0, "output_weight": v0}
    relu = ClassificationModes(np.full(k, 1.0 / k), np.ones(k), activation="relu", learning_rate=float(k))
    traj = solve(relu, y0, 100.0, saveat=LinearTimes(3), rtol=1e-10, atol=1e-12, backend="scipy", solver="DOP853")
    failed = traj.observables["margins"][-1] <= 0
    predicted = (u0**2 - v0**2 < 0) & (v0 < 0)
    linear = ClassificationModes(np.full(k, 1.0 / k), np.ones(k), learning_rate=float(k))
    lin = solve(linear, y0, 100.0, saveat=LinearTimes(3), rtol=1e-10, atol=1e-12, backend="scipy", solver="DOP853")
    measured = {"grid points where failure != (c < 0 and v0 < 0)": int(np.sum(failed != predicted)),
                "failed ReLU modes": int(failed.sum()), "failed linear modes": int(np.sum(lin.observables["margins"][-1] <= 0))}
    expected = {"grid points where failure != (c < 0 and v0 < 0)": 0, "failed ReLU modes": int(predicted.sum()),
                "failed linear modes": 0}
    passed = all(measured[key] == expected[key] for key in measured)
    return measured, expected, 0.0, passed, f"{k} initial points in (0.05, 1] x [-1, 1], |u0^2 - v0^2| > 1e-3, t = 100"


@claim(PAPER, "convergence-time-inverse-in-frequency-times-norm",
       "Input norm r and feature frequency p set distinct convergence speeds: from the same initial margin the time "
       "to reach a margin scales as 1 / (p r).")
def _time_pr():
    from .._events import Crossing
    from .._save_times import LinearTimes
    from .._solve import solve
    from ..models.classification_modes import ClassificationModes

    p, r = np.array([0.5, 0.25, 0.1, 0.05]), np.array([0.5, 2.0, 1.0, 4.0])
    u0 = np.sqrt(0.01 / r)  # initial margin r u0^2 = 0.01 for every mode
    system = ClassificationModes(p, r)
    reach = Crossing("reach", _margins, level=2.0, direction=+1)
    y0 = {"input_weight": u0, "output_weight": u0}
    traj = solve(system, y0, 200.0, saveat=LinearTimes(3), events=(reach,), rtol=1e-12, atol=1e-14,
                 backend="scipy", solver="DOP853")
    scaled = traj.events["reach"].first_per_component(4) * p * r
    exact = system.balanced_time(2.0, y0) * p * r
    return compare({"t(margin 2) * p * r": scaled}, {"t(margin 2) * p * r": exact}, rtol=1e-8,
                   note="theory: (ln(b/b0) + Ei(b) - Ei(b0)) / 2, equal for every (p, r)")


@claim(PAPER, "infrequent-feature-starved",
       "Of two equally predictive features, the less frequent one (present in a fraction p = 0.2 of the examples) is "
       "starved: the ratio of its weight to the frequent feature's decreases towards 0 (a_B ~ log(p a_A/(1-p)), "
       "a_A ~ log t).")
def _frequency():
    from .._solve import solve
    from ..models.classification_modes import FrequencyStarvation

    p = 0.2
    times = np.array([0.0, 1e5, 1e10, 1e20, 1e30])
    traj = solve(FrequencyStarvation(p), np.zeros(2), 1e30, log_time=True, saveat=times, rtol=1e-11, atol=1e-12,
                 backend="scipy", solver="Radau")
    ratio = traj.observables["ratio"][1:]
    a_a = traj.ys[1:, 0]
    predicted = np.log(p * a_a / (1 - p)) / a_a
    passed = bool(np.all(np.diff(ratio) < 0)) and bool(np.all(np.abs(ratio[-2:] / predicted[-2:] - 1) < 0.05))
    return (
        {"a_B / a_A at t = 1e5, 1e10, 1e20, 1e30": ratio},
        {"a_B / a_A at t = 1e5, 1e10, 1e20, 1e30": predicted},
        0.05, passed, "strictly decreasing; asymptotic formula within 5% at t = 1e20, 1e30 (it is a large-margin asymptote)",
    )
