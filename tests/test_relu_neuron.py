"""Single ReLU neuron (models/relu_neuron.py, networks/relu_neuron.py): the exact event-driven
flow against independent integrations (matrix exponential, DOP853, diffrax with crossings,
gradient descent with a fitted order), the identities along trajectories, the limits, and the
error messages."""

import numpy as np
import pytest
import scipy.integrate
import scipy.linalg

import reducedflow as rf
from reducedflow.models.relu_neuron import (
    ReluNeuron,
    interpolation_coefficients,
    projection_limit,
    random_relu_problem,
    solve_event_driven,
    switching_crossing,
    vardi_shamir_data,
)
from reducedflow.networks.relu_neuron import train_relu_gd

ETAS = np.array([4e-3, 2e-3, 1e-3, 5e-4])


def _problem(seed, n, d, scale=1.0, shift=0.0):
    x, y, w0 = random_relu_problem(seed, n, d, scale)
    return ReluNeuron(x, y - shift), w0


def _dop853(neuron, w0, ts):
    x, y = np.asarray(neuron.design_matrix), np.asarray(neuron.targets)

    def field(t, w):
        u = x @ w
        return -x.T @ np.where(u > 0, u - y, 0.0)

    out = scipy.integrate.solve_ivp(field, (0.0, ts[-1]), w0, method="DOP853", t_eval=ts, rtol=1e-12, atol=1e-14)
    return out.y.T


def _fitted_order(etas, errors):
    return float(np.polyfit(np.log(etas), np.log(errors), 1)[0])


# ----------------------------------------------------------------------------------------------
# Closed form in a region


def test_region_closed_form_matches_matrix_exponential_and_integration():
    neuron, w0 = _problem(3, 5, 4)
    sol = solve_event_driven(neuron, w0)
    x, y = np.asarray(neuron.design_matrix), np.asarray(neuron.targets)
    assert len(sol.segments) >= 2
    for seg in sol.segments[:3]:
        a = list(seg.active)
        g, b = x[a].T @ x[a], x[a].T @ y[a]
        span = min(seg.t_end - seg.t_start, 3.0)
        taus = np.linspace(0.0, span, 7)
        # w(t) = w0 - G^+ (I - e^{-Gt}) (G w0 - b), with expm instead of the eigenbasis
        exact = np.array([seg.w_start - np.linalg.pinv(g) @ (np.eye(len(b)) - scipy.linalg.expm(-g * tau)) @ (g @ seg.w_start - b) for tau in taus])
        assert np.max(np.abs(seg.state(taus) - exact)) < 1e-12
        # the linear ODE with the active set frozen, integrated numerically
        frozen = scipy.integrate.solve_ivp(lambda t, w: -g @ w + b, (0.0, span), seg.w_start, method="DOP853",
                                           t_eval=taus, rtol=1e-13, atol=1e-15).y.T
        assert np.max(np.abs(seg.state(taus) - frozen)) < 1e-12
    # continuity across the switches
    for before, after in zip(sol.segments[:-1], sol.segments[1:]):
        assert np.max(np.abs(before.state(before.t_end - before.t_start) - after.w_start)) < 1e-13


def test_event_driven_matches_dop853_on_random_problems():
    worst = 0.0
    for seed in range(6):
        neuron, w0 = _problem(seed, 4, 3, scale=[1e-3, 1.0, 5.0][seed % 3])
        sol = solve_event_driven(neuron, w0)
        t1 = max([e.time for e in sol.events] + [1.0]) * 2
        ts = np.linspace(0.0, t1, 30)
        worst = max(worst, np.max(np.abs(sol.evaluate(ts) - _dop853(neuron, w0, ts))))
    # DOP853 steps over the kinks of the field: its own error is ~1e-8 here
    assert worst < 1e-6


# ----------------------------------------------------------------------------------------------
# Cross-checks: diffrax with crossings, gradient descent


def test_diffrax_solve_finds_the_same_switching_times():
    x, y, w0 = vardi_shamir_data(2.0)
    neuron = ReluNeuron(x, y)
    sol = solve_event_driven(neuron, w0)
    traj = rf.solve(neuron, w0, 4.0, saveat=np.linspace(0.0, 4.0, 21), events=(switching_crossing(),), rtol=1e-10, atol=1e-12)
    found = traj.events["switch"]
    assert list(found.components) == [e.point for e in sol.events] == [2]
    assert abs(found.times[0] - sol.events[0].time) < 1e-8
    assert np.max(np.abs(traj.ys - sol.evaluate(traj.ts))) < 1e-8


def test_gradient_descent_converges_to_the_flow_at_order_one():
    # Vardi-Shamir, gamma = 2: one switch-off (continuous field): clean O(eta) in both
    x, y, w0 = vardi_shamir_data(2.0)
    neuron = ReluNeuron(x, y)
    sol = solve_event_driven(neuron, w0)
    traj_err, event_err = [], []
    for eta in ETAS:
        gd = train_relu_gd(neuron, w0, eta, 2.0, n_records=100)
        traj_err.append(np.max(np.abs(gd.weights - sol.evaluate(gd.times))))
        event_err.append(abs(gd.switch_times[2] - sol.events[0].time))
    assert 0.95 < _fitted_order(ETAS, traj_err) < 1.05
    assert 0.95 < _fitted_order(ETAS, event_err) < 1.05


def test_gradient_descent_order_one_across_switch_ons():
    """Switching a point on makes the field jump by y_j x_j; GD picks it up at the next step, so
    the O(eta) constant depends on where the switch falls between steps: fit over 6 halvings
    and bound error / eta."""
    neuron, w0 = _problem(21, 4, 3, scale=0.1)  # four switches, one per point
    sol = solve_event_driven(neuron, w0)
    assert len({e.point for e in sol.events}) == 4
    first = {}
    for e in sol.events:
        first.setdefault(e.point, e.time)
    etas = 1e-3 / 2.0 ** np.arange(6)
    traj_err, event_err = [], []
    for eta in etas:
        gd = train_relu_gd(neuron, w0, eta, 1.5 * sol.events[-1].time, n_records=100)
        traj_err.append(np.max(np.abs(gd.weights - sol.evaluate(gd.times))))
        event_err.append(max(abs(gd.switch_times[j] - t) for j, t in first.items()))
    assert 0.8 < _fitted_order(etas, traj_err) < 1.2
    assert 0.8 < _fitted_order(etas, event_err) < 1.2
    assert np.max(np.array(traj_err) / etas) < 3.0 and np.max(np.array(event_err) / etas) < 2.0


def test_gd_also_follows_a_sliding_mode():
    """Negative targets: a Filippov sliding mode (u_j = 0 held); GD chatters around it at O(eta)."""
    neuron, w0 = _problem(70, 4, 6, shift=0.7)
    sol = solve_event_driven(neuron, w0)
    assert sol.sliding_occurred
    slide = [s for s in sol.segments if s.sliding][0]
    taus = np.linspace(0.0, slide.t_end - slide.t_start, 9)
    x = np.asarray(neuron.design_matrix)
    assert np.max(np.abs(slide.state(taus) @ x[list(slide.sliding)].T)) < 1e-12
    t1 = 2.0
    errors = [np.max(np.abs(train_relu_gd(neuron, w0, eta, t1, n_records=50).weights - sol.evaluate(np.linspace(0, t1, 51))))
              for eta in ETAS[1:]]
    assert 0.8 < _fitted_order(ETAS[1:], errors) < 1.2


# ----------------------------------------------------------------------------------------------
# Identities along trajectories


def test_norm_and_loss_identities_along_trajectories():
    for seed, scale in [(1, 1e-3), (2, 1.0), (5, 5.0)]:
        neuron, w0 = _problem(seed, 5, 3, scale)
        sol = solve_event_driven(neuron, w0)
        # times away from the switches (the derivatives jump there)
        switch = sol.event_times
        ts = np.linspace(0.05, 3.0, 40)
        ts = ts[np.all(np.abs(ts[:, None] - switch[None, :]) > 1e-3, axis=1)] if switch.size else ts
        h = 1e-5
        half_norm = lambda t: 0.5 * np.sum(sol.evaluate(t) ** 2, axis=-1)
        fd_norm = (half_norm(ts + h) - half_norm(ts - h)) / (2 * h)
        assert np.max(np.abs(fd_norm - sol.norm_rate(ts))) < 1e-8 * max(1.0, np.max(np.abs(fd_norm)))
        fd_loss = (sol.loss(ts + h) - sol.loss(ts - h)) / (2 * h)
        grads = np.array([-np.asarray(neuron.vector_field(0.0, w, None)) for w in sol.evaluate(ts)])
        assert np.max(np.abs(fd_loss + np.sum(grads**2, axis=1))) < 1e-7 * max(1.0, np.max(np.abs(fd_loss)))
        # the observables of the system agree with the solution's
        obs = neuron.observables(0.0, sol.evaluate(ts[3]))
        assert abs(float(obs["norm_rate"]) - sol.norm_rate(ts[3])) < 1e-12


def test_orthogonal_component_conserved_and_switched_off_coefficients_frozen():
    neuron, w0 = _problem(7, 3, 5, scale=1e-2)  # n < d: X has full row rank
    x = np.asarray(neuron.design_matrix)
    sol = solve_event_driven(neuron, w0)
    ts = np.linspace(0.0, 20.0, 200)
    ws = sol.evaluate(ts)
    q, _ = np.linalg.qr(x.T)
    orth = ws - (ws @ q) @ q.T
    assert np.max(np.abs(orth - orth[0])) < 1e-13
    coeff = interpolation_coefficients(x, ws - w0)
    states = np.array([[j in sol.active_set_at(t) for j in range(x.shape[0])] for t in ts])
    for j in range(x.shape[0]):
        inactive = ~states[:, j]
        if inactive.sum() > 1:
            # a point's coefficient only moves while it is active
            first = np.argmax(inactive)
            run = inactive[first:]
            end = first + (np.argmin(run) if not run.all() else run.size)
            assert np.ptp(coeff[first:end, j]) < 1e-12
    for j, c in sol.frozen_coefficients().items():
        off_time = max(e.time for e in sol.events if e.point == j and e.after == "inactive")
        assert abs(c - interpolation_coefficients(x, sol.evaluate(off_time) - w0)[j]) < 1e-12


def test_early_phase_from_small_init_moves_along_sum_of_active_targets():
    neuron, w0 = _problem(4, 4, 3, scale=1e-6)
    x, y = np.asarray(neuron.design_matrix), np.asarray(neuron.targets)
    active = x @ w0 > 0
    direction = x[active].T @ y[active]
    for t in [1e-3, 1e-2]:
        err = np.linalg.norm(solve_event_driven(neuron, w0).evaluate(t) - (w0 + t * direction))
        # O(t^2 |G||b|) from the curvature, O(t |w0|) from the initial predictions
        bound = 2 * t**2 * np.linalg.norm(x[active].T @ x[active], 2) * np.linalg.norm(direction) + 10 * t * 1e-6
        assert err < bound


# ----------------------------------------------------------------------------------------------
# Limits: interpolation, projection formula, the Vardi-Shamir example


def test_stationary_limits_interpolate_their_active_points_and_projection_formula():
    applied = 0
    for seed in range(12):
        neuron, w0 = _problem(100 + seed, [3, 4, 6][seed % 3], 4, scale=[1e-4, 1.0][seed % 2])
        sol = solve_event_driven(neuron, w0)
        x, y = np.asarray(neuron.design_matrix), np.asarray(neuron.targets)
        a = list(sol.final_active)
        u = x @ sol.limit
        assert sol.stationary_residual < 1e-9
        if a and np.linalg.matrix_rank(x[a]) == len(a):
            assert np.max(np.abs(u[a] - y[a])) < 1e-9
        off = [j for j in range(len(y)) if j not in a]
        assert np.all(u[off] <= 1e-12)
        # the flow really stops there: the limit is (numerically) where the trajectory ends
        last = sol.segments[-1]
        slowest = np.min(last.eigenvalues[last.eigenvalues > 0], initial=1.0)  # no active point: w constant
        assert np.max(np.abs(sol.evaluate(last.t_start + 40.0 / slowest) - sol.limit)) < 1e-12 * max(1.0, np.abs(sol.limit).max() * 1e3)
        if sol.projection_formula_applies:
            applied += 1
            assert np.max(np.abs(sol.limit - projection_limit(x, y, w0, a))) < 1e-9
    assert applied >= 3


def test_small_init_limit_tends_to_min_norm_interpolant():
    neuron, w0 = _problem(20, 2, 4, scale=1.0)
    x, y = np.asarray(neuron.design_matrix), np.asarray(neuron.targets)
    gaps = []
    for scale in [1e-2, 1e-4, 1e-6]:
        sol = solve_event_driven(neuron, scale * w0 / np.linalg.norm(w0))
        assert sol.projection_formula_applies
        a = list(sol.final_active)
        gaps.append(np.linalg.norm(sol.limit - np.linalg.pinv(x[a]) @ y[a]))
    assert gaps[0] < 2e-2 and gaps[2] < 1e-5 and gaps[2] < gaps[0] * 1e-3


def test_vardi_shamir_limit_depends_on_gamma_inside_a_fixed_zero_loss_set():
    w3 = {}
    for gamma in [0.0, 1.0, 5.0]:
        x, y, w0 = vardi_shamir_data(gamma)
        sol = solve_event_driven(ReluNeuron(x, y), w0)
        assert sol.limit_loss < 1e-20
        assert np.allclose(sol.limit[:2], [5.0, -1.0], atol=1e-12)
        assert sol.final_active == (0, 1)
        w3[gamma] = sol.limit[2]
        if gamma == 0.0:
            assert sol.events == () and w3[gamma] == 1e-6  # x3 = 0: the third component never moves
            continue
        (event,) = sol.events
        assert (event.point, event.after) == (2, "inactive")
        u3 = lambda t: float(sol.pre_activations(t)[2])
        integral = scipy.integrate.quad(u3, 0.0, event.time, epsabs=1e-14, epsrel=1e-12)[0]
        assert abs(w3[gamma] - (w0[2] - gamma * integral)) < 1e-10
        assert w3[gamma] <= 1.0 and abs(sol.evaluate(event.time + 5.0)[2] - w3[gamma]) < 1e-15
    assert abs(w3[1.0] - w3[5.0]) > 0.1  # same zero-loss set, different limits


# ----------------------------------------------------------------------------------------------
# Conventions, bias, errors


def test_relu_derivative_at_zero_convention_and_bias():
    x, y, _ = vardi_shamir_data(1.0)
    zero = np.zeros(3)
    assert np.all(solve_event_driven(ReluNeuron(x, y), zero).limit == 0.0)  # relu'(0) = 0: w = 0 is fixed
    moving = solve_event_driven(ReluNeuron(x, y, relu_derivative_at_zero=1), zero)
    assert np.allclose(moving.limit[:2], [5.0, -1.0], atol=1e-10)
    assert np.allclose(np.asarray(ReluNeuron(x, y, relu_derivative_at_zero=1).vector_field(0.0, zero, None)), x.T @ y)
    with_bias = ReluNeuron(x[:, :2], y, bias=True)
    augmented = ReluNeuron(np.hstack([x[:, :2], np.ones((3, 1))]), y)
    w0 = np.array([0.3, -0.1, 0.2])
    assert np.allclose(solve_event_driven(with_bias, w0).evaluate([0.5, 3.0]), solve_event_driven(augmented, w0).evaluate([0.5, 3.0]), atol=1e-14)


def test_bad_inputs_raise_clear_errors():
    x, y, w0 = vardi_shamir_data(1.0)
    with pytest.raises(ValueError, match="targets"):
        ReluNeuron(x, y[:2])
    with pytest.raises(ValueError, match="inputs"):
        ReluNeuron(x[0], y)
    with pytest.raises(ValueError, match="inputs.*finite"):
        ReluNeuron(np.where(x == 3.0, np.nan, x), y)
    with pytest.raises(ValueError, match="targets.*finite"):
        ReluNeuron(x, np.array([1.0, np.inf, 0.0]))
    with pytest.raises(ValueError, match="empty"):
        ReluNeuron(np.zeros((0, 3)), np.zeros(0))
    with pytest.raises(ValueError, match="relu_derivative_at_zero"):
        ReluNeuron(x, y, relu_derivative_at_zero=0.5)
    neuron = ReluNeuron(x, y)
    with pytest.raises(ValueError, match="w0"):
        solve_event_driven(neuron, np.zeros(2))
    with pytest.raises(ValueError, match="w0"):
        solve_event_driven(neuron, np.array([np.nan, 0.0, 0.0]))
    with pytest.raises(ValueError, match="learning_rate"):
        train_relu_gd(neuron, w0, -1e-3, 1.0)
    with pytest.raises(ValueError, match="gamma"):
        vardi_shamir_data(-1.0)
    with pytest.raises(ValueError, match="y0"):
        rf.solve(neuron, np.zeros(4), 1.0)
