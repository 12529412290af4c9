"""Claims about gradient flow of a single ReLU neuron: Lee, Sim, Ye, "Support Vectors and
Gradient Dynamics of Single-Neuron ReLU Networks", arXiv:2202.05510 (2022) (norm growth,
support vectors), and Vardi, Shamir, "Implicit Regularization in ReLU Networks with the Square
Loss", COLT 2021, arXiv:2012.05156 (no function of w selects the limit). Only the abstracts were
read (shared/theory/relu_neuron.md §0): the statements below are the model's derived forms,
checked with the exact event-driven solver of ``reducedflow.models.relu_neuron``."""

from __future__ import annotations

import numpy as np

from ._registry import claim

PAPER = "lee2022"
N_PROBLEMS = 40


def _problems(init_scale, n=5, d=3, count=N_PROBLEMS, offset=1000):
    from ..models.relu_neuron import ReluNeuron, random_relu_problem, solve_event_driven

    for seed in range(count):
        x, y, w0 = random_relu_problem(offset + seed, n, d, init_scale)
        yield ReluNeuron(x, y), w0, solve_event_driven(ReluNeuron(x, y), w0)


def _norm_curve(sol, points=3000):
    """||w(t)|| on a log grid reaching 30 / (slowest rate) past the last switch."""
    last = max([e.time for e in sol.events] + [0.0])
    lam = sol.segments[-1].eigenvalues
    lam = lam[lam > 0]
    t1 = last + (30.0 / lam.min() if lam.size else 1.0)
    ts = np.concatenate([[0.0], np.geomspace(1e-6 * t1, t1, points)])
    return ts, np.linalg.norm(sol.evaluate(ts), axis=1)


@claim(PAPER, "norm-identity",
       "Along every trajectory d/dt ||w||^2/2 = sum over active points of u_i (y_i - u_i) (u_i = x_i . w).")
def _norm_identity():
    worst = 0.0
    for _, _, sol in _problems(1.0, count=10):
        ts = np.linspace(0.05, 3.0, 60)
        if sol.events:
            ts = ts[np.all(np.abs(ts[:, None] - sol.event_times[None, :]) > 1e-3, axis=1)]
        h = 1e-5
        half = lambda t: 0.5 * np.sum(sol.evaluate(t) ** 2, axis=-1)
        fd = (half(ts + h) - half(ts - h)) / (2 * h)
        worst = max(worst, float(np.max(np.abs(fd - sol.norm_rate(ts)) / np.maximum(1.0, np.abs(fd)))))
    return ({"max relative gap, finite difference vs identity": worst},
            {"max relative gap, finite difference vs identity": 0.0}, 1e-7, worst < 1e-7,
            "10 random problems (n = 5, d = 3, y = |N(0,1)|); central differences h = 1e-5 of the exact flow, away from switches")


@claim(PAPER, "norm-growth-small-init",
       "From small initialisation the weight norm increases monotonically along the flow; from large initialisation it mostly does not.")
def _norm_growth():
    fractions = {}
    for scale in (1e-4, 10.0):
        increasing = decreasing = moving = 0
        for _, _, sol in _problems(scale):
            _, norm = _norm_curve(sol)
            step = np.diff(norm)
            tol = 1e-12 * norm.max()
            if np.all(np.abs(step) <= tol):
                continue  # no point ever active: w never moves
            moving += 1
            increasing += bool(np.all(step >= -tol))
            decreasing += bool(np.all(step <= tol))
        fractions[f"fraction increasing, init {scale:g}"] = increasing / moving
        fractions[f"fraction decreasing, init {scale:g}"] = decreasing / moving
    small, large = fractions["fraction increasing, init 0.0001"], fractions["fraction increasing, init 10"]
    passed = small >= 0.95 and large <= 0.5
    expected = {"fraction increasing, init 0.0001": 1.0, "fraction increasing, init 10": "< 0.5"}
    return (fractions, expected, 0.05, passed,
            f"{N_PROBLEMS} random problems (x ~ N(0, I_3), 5 points, y = |N(0,1)|, w0 = scale * N(0, I)/sqrt(3)), "
            "exact flows, ||w(t)|| on 3000 log-spaced times; runs where w never moves are excluded; "
            "pass: small-init fraction >= 0.95 and large-init fraction <= 0.5 (the theorem's conditions are unread)")


@claim(PAPER, "support-vectors-projection",
       "If every point ever active is active at the limit, the limit is the projection of w0 onto {w : X_A w = y_A} (A = support vectors); it interpolates the support vectors exactly.")
def _projection():
    from ..models.relu_neuron import projection_limit

    worst, interp, count = 0.0, 0.0, 0
    for scale in (1e-4, 1.0):
        for neuron, w0, sol in _problems(scale, n=4, d=5, count=20, offset=2000):
            if not sol.projection_formula_applies:
                continue
            count += 1
            x, y = sol.inputs, sol.targets
            a = list(sol.final_active)
            worst = max(worst, float(np.max(np.abs(sol.limit - projection_limit(x, y, w0, a)))))
            if a:
                interp = max(interp, float(np.max(np.abs(x[a] @ sol.limit - y[a]))))
    passed = count >= 10 and worst < 1e-9 and interp < 1e-9
    return ({"max |w_inf - projection|": worst, "max |u_i - y_i| on support vectors": interp, "problems where it applies": count},
            {"max |w_inf - projection|": 0.0, "max |u_i - y_i| on support vectors": 0.0}, 1e-9, passed,
            "40 random problems (n = 4, d = 5, init 1e-4 and 1); absolute criterion 1e-9")


@claim(PAPER, "vardi-shamir-path-dependence",
       "On x1 = (3,-1,0), x2 = (4,2,0), x3 = (0,g,g), y = (16,18,0), the zero-loss set {(5,-1,w3): w3 <= 1} is the same for every g > 0, yet the limit w3 changes with g: no function of w alone selects the limit (Vardi-Shamir 2021).")
def _path_dependence():
    from ..models.relu_neuron import ReluNeuron, solve_event_driven, vardi_shamir_data

    limits, losses = {}, []
    for gamma in (1.0, 2.0, 5.0, 20.0):
        x, y, w0 = vardi_shamir_data(gamma)
        sol = solve_event_driven(ReluNeuron(x, y), w0)
        limits[gamma] = sol.limit
        losses.append(sol.limit_loss)
    w3 = np.array([limits[g][2] for g in limits])
    on_set = max(float(np.max(np.abs(w[:2] - [5.0, -1.0]))) for w in limits.values())
    spread = float(np.ptp(w3))
    passed = max(losses) < 1e-20 and on_set < 1e-12 and np.all(w3 <= 1.0) and spread > 0.1
    measured = {"w3(inf) for gamma = 1, 2, 5, 20": w3, "max loss at limit": max(losses),
                "max |(w1, w2) - (5, -1)|": on_set, "spread of w3": spread}
    expected = {"w3(inf) for gamma = 1, 2, 5, 20": "distinct, <= 1", "max loss at limit": 0.0,
                "max |(w1, w2) - (5, -1)|": 0.0, "spread of w3": "> 0"}
    return (measured, expected, 1e-12, passed,
            "w0 = 1e-6 (1,1,1), exact event-driven flow; pass: loss < 1e-20, (w1, w2) within 1e-12 of (5, -1), "
            "w3 <= 1, and the w3 values spread by more than 0.1; the min-norm zero-loss point has w3 = 0")
