"""Classification modes under cross-entropy and hinge loss (models/classification_modes.py, our
construction for the claims of Tachet des Combes et al. 2018): every closed form against an
integration of the mode ODEs.

The solves use the scipy backend (DOP853 / Radau, right-hand side compiled by JAX): the mode
systems are tiny and each diffrax compilation would cost more than the solve."""

import numpy as np
import pytest

import reducedflow as rf
from reducedflow.models.classification_modes import (
    RELU_DEAD,
    RELU_INACTIVE,
    RELU_SADDLE,
    RELU_SUCCESS,
    ClassificationModes,
    DeepChainMode,
    FrequencyStarvation,
    relu_mode_outcome,
)

# scipy warns that `jac` has no effect for the explicit methods used with backend="scipy".
pytestmark = pytest.mark.filterwarnings("ignore:The following arguments have no effect")

TIGHT = dict(rtol=1e-12, atol=1e-14, backend="scipy", solver="DOP853")
P = np.array([0.5, 0.3, 0.2])
R = np.array([1.0, 2.0, 0.5])


def _state(u, v):
    return {"input_weight": np.asarray(u, float), "output_weight": np.asarray(v, float)}


def _margins(t, y, system):
    return system.margins(y)


def test_balanced_cross_entropy_exponential_integral_closed_form():
    system = ClassificationModes(P, R, labels=[1.0, -1.0, 1.0], learning_rate=0.7)
    u0 = np.array([0.1, 0.05, 0.2])
    y0 = _state(u0, u0 * np.array([1.0, -1.0, 1.0]))
    traj = rf.solve(system, y0, 300.0, saveat=rf.LinearTimes(40), **TIGHT)
    margins = traj.observables["margins"][1:]
    predicted = system.balanced_time(margins, y0)
    err = float(np.max(np.abs(predicted - traj.ts[1:, None]) / traj.ts[1:, None]))
    drift = float(np.max(np.abs(traj.observables["imbalance"] - traj.observables["imbalance"][0])))
    print(f"Ei closed form: max rel time error {err:.1e}; u^2 - v^2 drift {drift:.1e}; final margins {margins[-1]}")
    assert err <= 1e-8
    assert drift <= 1e-10
    assert np.all(margins[-1] > 3.0)  # well into the log phase


def test_general_cross_entropy_tau_quadrature_and_error_crossing():
    system = ClassificationModes(P, R, learning_rate=1.0)
    y0 = _state([0.3, 0.2, 0.4], [-0.1, 0.05, -0.3])  # modes 0 and 2 start misclassified
    tau = np.array([2.0, 1.5, 3.0])
    t_of_tau, m_of_tau = system.cross_entropy_time(tau, y0)
    zero = rf.Crossing("zero", _margins, level=0.0, direction=+1)
    t1 = 1.5 * float(np.nanmax(system.error_crossing_time(y0)))
    assert t1 > t_of_tau.max()
    traj = rf.solve(system, y0, t1, saveat=np.concatenate([[0.0], np.sort(t_of_tau), [t1]]), events=(zero,), **TIGHT)
    order = np.argsort(t_of_tau)
    solved = np.array([traj.observables["margins"][1 + int(np.where(order == i)[0][0]), i] for i in range(3)])
    err_margin = float(np.max(np.abs(solved - m_of_tau)))
    crossing = system.error_crossing_time(y0)
    events = traj.events["zero"].first_per_component(3)
    print(f"tau-quadrature: margin error {err_margin:.1e}; crossing times {crossing} vs events {events}")
    assert err_margin <= 1e-9
    assert np.isnan(crossing[1]) and np.isnan(events[1])
    np.testing.assert_allclose(crossing[[0, 2]], events[[0, 2]], rtol=1e-8)


def test_hinge_stopping_time_and_hyperbolae():
    system = ClassificationModes(P, R, loss="hinge", learning_rate=1.0)
    y0 = _state([0.3, 0.2, 0.1], [-0.1, 0.05, 0.1])
    one = rf.Crossing("one", _margins, level=1.0, direction=+1)
    t_star = system.hinge_stopping_time(y0)
    traj = rf.solve(system, y0, 1.5 * float(t_star.max()), saveat=rf.LinearTimes(40), events=(one,), **TIGHT)
    events = traj.events["one"].first_per_component(3)
    path = system.hinge_solution(traj.ts, y0)
    err_path = max(float(np.max(np.abs(path[k] - traj.ys[k]))) for k in path)
    balanced = np.log(1.0 / (R[2] * 0.1**2)) / (2 * P[2] * R[2])
    print(f"hinge: t* {t_star} vs events {events}; hyperbola error {err_path:.1e}")
    np.testing.assert_allclose(events, t_star, rtol=1e-8)
    assert abs(t_star[2] - balanced) <= 1e-12 * balanced
    assert err_path <= 1e-8
    # learning has stopped: margins stay at 1 after t*
    after = traj.ts > t_star.max() * 1.01
    np.testing.assert_allclose(traj.observables["margins"][after], 1.0, atol=1e-8)
    np.testing.assert_allclose(traj.observables["loss"][after], 0.0, atol=1e-8)
    drift = float(np.max(np.abs(traj.observables["imbalance"] - traj.observables["imbalance"][0])))
    assert drift <= 1e-10


def test_relu_failure_boundary_on_a_grid():
    # each grid point is its own cluster (p = 1/k, r = 1): one solve covers the (u0, v0) plane
    u_axis, v_axis = np.linspace(0.05, 1.0, 7), np.linspace(-1.0, 1.0, 9)
    uu, vv = np.meshgrid(u_axis, v_axis)
    u0, v0 = uu.ravel(), vv.ravel()
    keep = np.abs(u0**2 - v0**2) > 1e-3  # the saddle line c = 0 takes infinitely long either way
    u0, v0 = u0[keep], v0[keep]
    k = u0.size
    system = ClassificationModes(np.full(k, 1.0 / k), np.ones(k), activation="relu", learning_rate=float(k))
    traj = rf.solve(system, _state(u0, v0), 100.0, saveat=rf.LinearTimes(5), rtol=1e-10, atol=1e-12,
                    backend="scipy", solver="DOP853")
    final_margin = traj.observables["margins"][-1]
    final_u = traj.ys["input_weight"][-1]
    predicted = relu_mode_outcome(u0, v0)
    dead = predicted == RELU_DEAD
    print(f"ReLU grid: {dead.sum()} dead, {(~dead).sum()} successful; min success margin "
          f"{final_margin[~dead].min():.2f}, max |u| of dead units {np.abs(final_u[dead]).max():.1e}")
    assert dead.sum() > 5 and (~dead).sum() > 5
    assert np.all(dead == ((u0**2 - v0**2 < 0) & (v0 < 0)))
    assert np.all(final_margin[~dead] > 2.0)
    assert np.all(final_u[dead] <= 1e-9) and np.all(final_margin[dead] == 0.0)
    per_mode_loss = np.log(2.0) * np.full(k, 1.0 / k)
    successful_loss = np.sum(np.logaddexp(0.0, -final_margin[~dead])) / k
    assert abs(traj.observables["loss"][-1] - successful_loss - per_mode_loss[dead].sum()) <= 1e-12
    # codes for the other regions; a linear unit never fails
    assert relu_mode_outcome(-0.1, 0.5) == RELU_INACTIVE
    assert relu_mode_outcome(0.5, -0.5) == RELU_SADDLE
    assert relu_mode_outcome(0.5, 0.9) == RELU_SUCCESS
    assert relu_mode_outcome(0.5, 0.9, label=-1.0) == RELU_DEAD
    linear = ClassificationModes(np.full(k, 1.0 / k), np.ones(k), learning_rate=float(k))
    lin = rf.solve(linear, _state(u0, v0), 100.0, saveat=rf.LinearTimes(5), rtol=1e-10, atol=1e-12,
                   backend="scipy", solver="DOP853")
    assert np.all(lin.observables["margins"][-1] > 2.0)


def test_depth_chain_hinge_closed_form_and_conservation():
    for depth in (3, 4):
        chain = DeepChainMode(0.4, 1.5, depth, learning_rate=1.0, loss="hinge")
        w0 = 0.3
        t_star = chain.hinge_stopping_time(w0)
        one = rf.Crossing("one", lambda t, y, s: s.observables(t, y)["margin"], level=1.0, direction=+1)
        traj = rf.solve(chain, np.full(depth, w0), 1.3 * t_star, saveat=rf.LinearTimes(30), events=(one,), **TIGHT)
        err = float(np.max(np.abs(traj.observables["product"] - chain.hinge_product(traj.ts, w0))))
        print(f"depth {depth}: t* = {t_star:.6f} vs event {traj.events['one'].first():.6f}; a(t) error {err:.1e}")
        assert abs(traj.events["one"].first() - t_star) <= 1e-8 * t_star
        assert err <= 1e-8
    chain = DeepChainMode(0.4, 1.5, 3, loss="cross_entropy")
    traj = rf.solve(chain, np.array([0.2, 0.5, -0.3]), 50.0, saveat=rf.LinearTimes(30), **TIGHT)
    w = traj.ys
    for a, b in ((0, 1), (1, 2)):
        drift = np.max(np.abs((w[:, a] ** 2 - w[:, b] ** 2) - (w[0, a] ** 2 - w[0, b] ** 2)))
        assert drift <= 1e-10
    assert traj.observables["margin"][-1] > 1.0  # crossed from a negative margin


def test_training_error_curve_from_crossing_times():
    p = np.array([0.4, 0.3, 0.2, 0.1])
    r = np.array([1.0, 0.5, 2.0, 1.0])
    system = ClassificationModes(p, r, loss="hinge")
    y0 = _state([0.3, 0.3, 0.3, 0.2], [-0.2, -0.1, -0.25, 0.1])
    ts = np.linspace(0.0, 40.0, 161)
    traj = rf.solve(system, y0, 40.0, saveat=ts, **TIGHT)
    crossing = system.error_crossing_time(y0)
    predicted = system.error_curve(ts, y0)
    near = np.min(np.abs(ts[:, None] - crossing[None, :3]), axis=1) < 1e-6
    print(f"hinge error-curve crossing times {crossing}; curve {predicted[::20]}")
    np.testing.assert_allclose(traj.observables["training_error"][~near], predicted[~near], atol=1e-12)
    assert predicted[0] == pytest.approx(0.9) and predicted[-1] == 0.0
    assert np.all(np.diff(predicted) <= 0)


def test_convergence_time_inverse_in_p_times_r():
    # same initial margin b0 = r u0^2 for every mode: the time to reach margin 2 is c / (eta p r)
    p, r = np.array([0.5, 0.25, 0.1]), np.array([0.5, 2.0, 1.0])
    b0 = 0.01
    u0 = np.sqrt(b0 / r)
    system = ClassificationModes(p, r)
    reach = rf.Crossing("reach", _margins, level=2.0, direction=+1)
    traj = rf.solve(system, _state(u0, u0), 400.0, saveat=rf.LinearTimes(5), events=(reach,), **TIGHT)
    times = traj.events["reach"].first_per_component(3)
    scaled = times * p * r
    print(f"t(b = 2) * p * r = {scaled}")
    np.testing.assert_allclose(scaled, scaled[0], rtol=1e-8)
    np.testing.assert_allclose(times, system.balanced_time(2.0, _state(u0, u0)), rtol=1e-8)


def test_frequency_starvation_ratio_decays():
    toy = FrequencyStarvation(0.2)
    traj = rf.solve(toy, np.zeros(2), 1e30, log_time=True, saveat=rf.LogTimes(30, first=1.0), rtol=1e-11, atol=1e-12,
                    backend="scipy", solver="Radau")
    ratio = traj.observables["ratio"][1:]
    late = traj.ts[1:] > 1e6
    q = traj.observables["invariant"][1:][late]
    a_a, a_b = traj.ys[-1]
    print(f"a_B/a_A: {ratio[late][::5]}; Q drift on t > 1e6 {np.ptp(q):.1e}; a_B {a_b:.3f} vs log(p a_A/(1-p)) "
          f"= {np.log(0.2 * a_a / 0.8):.3f}")
    assert np.all(np.diff(ratio[late]) < 0)
    assert ratio[-1] < 0.1
    assert np.ptp(q) < 1e-5
    assert abs(a_a - np.log(0.8 * 1e30)) < 0.05  # e^{a_A} ~ (1 - p) t: a_A ~ log t
    assert abs(a_b - np.log(0.2 * a_a / 0.8)) < 0.2  # a_B ~ log log t


def test_bad_inputs():
    with pytest.raises(ValueError, match="loss"):
        ClassificationModes(P, R, loss="mse")
    with pytest.raises(ValueError, match="input_norms"):
        ClassificationModes(P, R[:2])
    with pytest.raises(ValueError, match="frequencies"):
        ClassificationModes(-P, R)
    with pytest.raises(ValueError, match="labels"):
        ClassificationModes(P, R, labels=[1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="balanced"):
        ClassificationModes(P, R).balanced_time(1.0, _state([0.1, 0.1, 0.1], [0.2, 0.1, 0.1]))
    with pytest.raises(ValueError, match="frequency"):
        FrequencyStarvation(1.5)
    with pytest.raises(ValueError, match="depth"):
        DeepChainMode(0.5, 1.0, 1)
