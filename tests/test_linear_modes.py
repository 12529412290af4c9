"""Deep linear networks (models/linear_modes.py): every closed form against an ODE solve or an
independent computation.

Sizes are small and shared (Sigma_yx is 3 x 4, hidden width 3; every solve of one system type
uses the same save-grid length and tolerances) so that each system compiles once."""

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest

import reducedflow as rf
from reducedflow.models.linear_modes import (
    BalancedModes,
    DeepLinearFlow,
    DeepModes,
    TwoLayerLinearFlow,
    UnbalancedModes,
)

TIGHT = dict(rtol=1e-11, atol=1e-13)
N_SAVE = 41  # one save-grid length for all matrix solves: one compilation per system type


def _orthonormal(rng, rows, cols):
    q, r = np.linalg.qr(rng.standard_normal((rows, cols)))
    return q * np.sign(np.diag(r))


@pytest.fixture(scope="module")
def problem():
    """Sigma_yx = U diag(s) V^T with random orthogonal U (3x3), V (4x3); s_max = 3."""
    rng = np.random.default_rng(20240611)
    s = np.array([3.0, 1.7, 0.6])
    u, v = _orthonormal(rng, 3, 3), _orthonormal(rng, 4, 3)
    return dict(rng=rng, s=s, u=u, v=v, syx=u @ np.diag(s) @ v.T, hidden=_orthonormal(rng, 3, 3))


def _modes_in_basis(maps, u, v):
    """U^T W V for each saved W: (diagonal, largest off-diagonal magnitude)."""
    m = np.einsum("ia,tij,jb->tab", u, maps, v)
    diag = np.einsum("taa->ta", m)
    off = m - diag[:, :, None] * np.eye(m.shape[-1])
    return diag, np.abs(off).max()


def _solve_matrix(system, y0, t1, events=()):
    # dense=True always, so that solves with and without events share one compilation.
    return rf.solve(system, y0, t1, saveat=np.linspace(0.0, t1, N_SAVE), dense=True, events=events, **TIGHT)


# ----------------------------------------------------------------------------------------------
# Per-mode closed forms vs the ODE


def test_balanced_closed_form_and_learning_time_match_ode():
    s = np.array([3.0, 1.5, 0.5])
    system = BalancedModes(s, tau=1.3)
    u0 = np.array([1e-3, 0.2, 2.0])  # the last mode starts above s and decays onto it
    targets = np.array([1.5, 0.75, 0.6])
    crossing = rf.Crossing("target", lambda t, y, sys: y, level=targets)
    traj = rf.solve(system, u0, 12.0, saveat=rf.LinearTimes(50), events=(crossing,), **TIGHT)

    closed = np.asarray(system.closed_form(traj.ts, u0))
    assert closed.shape == (50, 3)
    err_path = np.max(np.abs(closed - traj.ys) / closed)
    event_times = traj.events["target"].first_per_component(3)
    predicted = np.asarray(system.learning_time(u0, targets))
    err_time = np.max(np.abs(predicted - event_times) / event_times)
    print(f"balanced: closed form rel err {err_path:.2e}, learning time rel err {err_time:.2e}")
    assert err_path <= 1e-8
    assert err_time <= 1e-8
    # vectorised over any shape of t
    assert system.closed_form(np.ones((2, 4)), u0).shape == (2, 4, 3)


def test_depth_two_is_balanced():
    s = np.array([3.0, 1.5, 0.5])
    deep, balanced = DeepModes(s, 2, tau=1.3), BalancedModes(s, tau=1.3)
    y = np.array([0.3, 2.0, 1e-4])
    np.testing.assert_allclose(deep.vector_field(0.0, y, None), balanced.vector_field(0.0, y, None), rtol=1e-15)
    t = np.linspace(0.0, 5.0, 7)
    np.testing.assert_allclose(deep.closed_form(t, y), balanced.closed_form(t, y), rtol=1e-15)
    for u0 in (np.array([1e-3, 0.2, 0.1]), 1e-30):
        quad = deep.learning_time(u0, s / 2)
        exact = np.asarray(balanced.learning_time(u0, s / 2))
        err = np.max(np.abs(quad / exact - 1))
        print(f"depth 2 quadrature vs logistic time (u0={u0}): {err:.1e}")
        assert err <= 1e-12
    with pytest.raises(NotImplementedError):
        DeepModes(s, 3).closed_form(t, y)


def test_unbalanced_time_formula_inverts_ode():
    s = np.array([3.0, 1.5, 0.5])
    system = UnbalancedModes(s, tau=1.3)
    # small c0 (near balanced), u0 < 0 (the product passes through 0), |c0| > s (lazy)
    a0, b0 = np.array([0.01, 0.5, 1.2]), np.array([0.02, -0.3, 0.1])
    traj = rf.solve(system, {"first_layer": a0, "second_layer": b0}, 3.0, saveat=rf.LinearTimes(50), **TIGHT)
    u, c = traj.observables["product"], traj.observables["imbalance"]
    drift = np.abs(c - c[0]).max()
    times = np.stack([system.time_between(u[0], u[k], c[0]) for k in range(1, 50)])
    err = np.max(np.abs(times - traj.ts[1:, None]) / traj.ts[1:, None])
    print(f"unbalanced: imbalance drift {drift:.1e}, time formula rel err {err:.2e}")
    assert np.any(u[:, 1] < 0) and np.any(u[:, 1] > 0)
    assert drift <= 1e-10
    assert err <= 1e-8
    np.testing.assert_allclose(traj.observables["risk"], 0.5 * np.sum((s - u) ** 2, axis=1), rtol=1e-14)


def test_unbalanced_limits():
    s = np.array([3.0, 1.5, 0.5])
    unbalanced, balanced = UnbalancedModes(s, tau=1.3), BalancedModes(s, tau=1.3)
    u0 = np.array([1e-3, 0.1, 0.01])
    reference = np.asarray(balanced.learning_time(u0, s / 2))
    gaps = [np.max(np.abs(unbalanced.time_between(u0, s / 2, c0) / reference - 1)) for c0 in (1e-4, 1e-5, 1e-6)]
    exact = np.max(np.abs(unbalanced.time_between(u0, s / 2, 0.0) / reference - 1))
    print(f"c0 -> 0: relative gaps {gaps}, at c0 = 0: {exact:.1e}")
    assert exact <= 1e-14
    assert all(10 ** 1.9 <= g1 / g2 <= 10 ** 2.1 for g1, g2 in zip(gaps, gaps[1:]))  # O(c0^2)
    # |c0| >> s: exponential relaxation at rate |c0|/tau, t = tau/|c0| ln((s - u0)/(s - u))
    c0 = 1e4
    lazy = np.asarray(unbalanced.time_between(0.0, s / 2, c0)) * c0 / 1.3
    err = np.max(np.abs(lazy / np.log(2.0) - 1))
    print(f"lazy limit rel err at |c0| = 1e4: {err:.1e}")
    assert err <= 1e-6


def test_deep_modes_quadrature_matches_event_times():
    s = np.array([3.0, 1.5, 0.5])
    system = DeepModes(s, 3, tau=1.3)
    u0 = np.array([1e-6, 1e-3, 0.05])
    crossing = rf.Crossing("half", lambda t, y, sys: y, level=s / 2, direction=1)
    traj = rf.solve(system, u0, 50.0, saveat=rf.LinearTimes(N_SAVE), events=(crossing,), **TIGHT)
    event_times = traj.events["half"].first_per_component(3)
    quad = system.learning_time(u0, s / 2)
    err = np.max(np.abs(quad - event_times) / event_times)
    print(f"depth 3: quadrature vs event times {event_times}, rel err {err:.2e}")
    assert err <= 1e-8


@pytest.mark.parametrize("depth", [3, 5])
def test_deep_modes_quadrature_for_tiny_init(depth):
    """Against mpmath quadrature in u itself (split by decades, 30 digits)."""
    s, u0 = 1.7, 1e-30
    system = DeepModes(np.array([s]), depth, tau=0.9)
    ours = system.learning_time(u0, s / 2)[0]
    with mpmath.workdps(30):
        nodes = [mpmath.mpf(u0)] + [mpmath.mpf(10) ** k for k in range(-29, 0)] + [mpmath.mpf(s) / 2]
        integral = mpmath.quad(lambda v: 1 / (v ** (2 - mpmath.mpf(2) / depth) * (s - v)), nodes)
        reference = float(mpmath.mpf("0.9") / depth * integral)
    err = abs(ours / reference - 1)
    print(f"depth {depth}, u0 = 1e-30: t = {ours:.6e}, rel err vs mpmath {err:.1e}")
    assert err <= 1e-10


@pytest.mark.parametrize("depth", [3, 4])
def test_deep_modes_escape_asymptotic(depth):
    s = np.array([3.0, 0.5])
    system = DeepModes(s, depth, tau=1.3)
    a0 = np.array([1e-1, 1e-2, 1e-3, 1e-4])
    errs = np.array([
        np.max(np.abs(system.escape_time_asymptotic(a**depth) / system.learning_time(a**depth, s / 2) - 1))
        for a in a0
    ])
    print(f"depth {depth}: escape-time asymptotic rel err {errs}")
    assert np.all(np.diff(errs) < 0) and errs[-1] < 1e-3
    # the error is O(a0^(D-2)): each decade of a0 cuts it by 10^(D-2)
    ratios = errs[:-1] / errs[1:]
    assert np.all((ratios > 10 ** (depth - 2.3)) & (ratios < 10 ** (depth - 1.7)))


# ----------------------------------------------------------------------------------------------
# Full matrices


def test_riccati_matches_matrix_flow(problem):
    system = TwoLayerLinearFlow(problem["syx"], 3)
    y0 = system.balanced_init(np.array([0.3, 0.2, 0.1]), key=1)
    traj = _solve_matrix(system, y0, 8.0)
    scale = np.linalg.norm(problem["syx"])
    maps = traj.observables["network_map"]
    chunked = system.riccati_solution(traj.ts, y0)
    assert chunked.shape == (N_SAVE, 3, 4)
    err = np.max(np.linalg.norm(chunked - maps, axis=(1, 2))) / scale
    drift = np.abs(traj.observables["imbalance"] - traj.observables["imbalance"][0]).max()
    assert traj.observables["risk"][-1] < 0.02 * traj.observables["risk"][0]  # well into learning

    # one shot (chunk = inf): fine at t = 1, lost at t = 6 where exp(2 s_max t) ~ 1e15.6
    k1, k6 = np.searchsorted(traj.ts, 1.0), np.searchsorted(traj.ts, 6.0)
    one_shot_1 = np.linalg.norm(system.riccati_solution(traj.ts[k1], y0, chunk=np.inf) - maps[k1]) / scale
    one_shot_6 = np.linalg.norm(system.riccati_solution(traj.ts[k6], y0, chunk=np.inf) - maps[k6]) / scale
    chunked_6 = np.linalg.norm(system.riccati_solution(traj.ts[k6], y0) - maps[k6]) / scale
    print(
        f"riccati: chunked max err {err:.1e}; one shot err at t=1 {one_shot_1:.1e}, at t=6 "
        f"{one_shot_6:.1e} (chunked {chunked_6:.1e}); imbalance drift {drift:.1e}"
    )
    assert err <= 1e-10 and chunked_6 <= 1e-10 and one_shot_1 <= 1e-10
    assert one_shot_6 > 1e-7
    assert drift <= 1e-10


def test_riccati_rejects_what_it_cannot_solve(problem):
    system = TwoLayerLinearFlow(problem["syx"], 3)
    y0 = system.balanced_init(np.array([0.3, 0.2, 0.1]), key=1)
    lopsided = {"first_layer": 2.0 * y0["first_layer"], "second_layer": y0["second_layer"]}
    with pytest.raises(ValueError, match="`y0`"):
        system.riccati_solution(np.array([1.0]), lopsided)
    coloured = TwoLayerLinearFlow(problem["syx"], 3, input_correlation=np.diag([1.0, 2.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="`input_correlation`"):
        coloured.riccati_solution(np.array([1.0]), y0)
    with pytest.raises(ValueError, match="`t`"):
        system.riccati_solution(np.array([2.0, 1.0]), y0)
    with pytest.raises(ValueError, match="`chunk`"):
        system.riccati_solution(np.array([1.0]), y0, chunk=-1.0)


def test_aligned_matrix_flow_follows_modes(problem):
    s, u, v, r = problem["s"], problem["u"], problem["v"], problem["hidden"]
    tau = 0.8
    system = TwoLayerLinearFlow(problem["syx"], 3, tau=tau)
    a, b = np.array([0.05, 0.4, 0.9]), np.array([0.1, 0.4, -0.2])

    # balanced: the logistic closed form
    y0 = {"first_layer": r @ np.diag(a) @ v.T, "second_layer": u @ np.diag(a) @ r.T}
    traj = _solve_matrix(system, y0, 4.0)
    diag, off = _modes_in_basis(traj.observables["network_map"], u, v)
    closed = np.asarray(BalancedModes(s, tau=tau).closed_form(traj.ts, a**2))
    err_bal = np.max(np.abs(diag - closed) / closed)
    np.testing.assert_allclose(system.mode_strengths(traj.ys), diag, rtol=1e-12, atol=1e-14)

    # unbalanced: the exact time formula, where u(t) is not yet within 1e-3 of s
    y0 = {"first_layer": r @ np.diag(a) @ v.T, "second_layer": u @ np.diag(b) @ r.T}
    traj = _solve_matrix(system, y0, 4.0)
    diag_u, off_u = _modes_in_basis(traj.observables["network_map"], u, v)
    modes = UnbalancedModes(s, tau=tau)
    times = np.stack([modes.time_between(a * b, diag_u[k], a**2 - b**2) for k in range(1, N_SAVE)])
    valid = np.abs(s - diag_u[1:]) > 1e-3 * s
    err_unbal = np.max((np.abs(times - traj.ts[1:, None]) / traj.ts[1:, None])[valid])
    print(
        f"aligned init: balanced rel err {err_bal:.1e}, off-diag {off:.1e}; unbalanced time "
        f"rel err {err_unbal:.1e} ({valid.sum()} points), off-diag {off_u:.1e}"
    )
    assert err_bal <= 1e-8 and err_unbal <= 1e-8
    assert off <= 1e-10 and off_u <= 1e-10
    assert valid.sum() > 60


def test_two_layer_conservation_from_random_init(problem):
    system = TwoLayerLinearFlow(problem["syx"], 3)
    rng = np.random.default_rng(5)
    y0 = {"first_layer": 0.7 * rng.standard_normal((3, 4)), "second_layer": 0.2 * rng.standard_normal((3, 3))}
    traj = _solve_matrix(system, y0, 8.0)
    imbalance = traj.observables["imbalance"]
    drift = np.abs(imbalance - imbalance[0]).max()
    print(f"two layers, random init: imbalance {np.abs(imbalance[0]).max():.2f}, drift {drift:.1e}")
    assert np.abs(imbalance[0]).max() > 0.5
    assert drift <= 1e-10
    assert traj.observables["risk"][-1] < 1e-3 * traj.observables["risk"][0]


def test_incremental_learning_from_small_init(problem):
    s, u, v = problem["s"], problem["u"], problem["v"]
    tau = 0.8
    system = TwoLayerLinearFlow(problem["syx"], 3, tau=tau)
    rng = np.random.default_rng(11)
    kappa = 1e-4
    w1, w2 = kappa * rng.standard_normal((3, 4)), kappa * rng.standard_normal((3, 3))
    strengths = lambda t, y, sys: jnp.einsum("ia,ij,ja->a", u, y["second_layer"] @ y["first_layer"], v)
    crossing = rf.Crossing("half", strengths, level=s / 2, direction=1)
    traj = _solve_matrix(system, {"first_layer": w1, "second_layer": w2}, 25.0, events=(crossing,))
    half = traj.events["half"].first_per_component(3)
    # Effective initial strength: early on tau Q' = F Q, and mode a grows along the eigenvector
    # (v_a, u_a)/sqrt(2) of F, so u_a(t) ~ |W1 v_a + W2^T u_a|^2 / 4 * exp(2 s_a t / tau).
    u0 = 0.25 * np.linalg.norm(w1 @ v + w2.T @ u, axis=0) ** 2
    scaled = s * half / tau
    predicted = 0.5 * np.log(s / u0)
    print(f"incremental learning: half-way times {half}, s t / tau {scaled}, 0.5 ln(s/u0) {predicted}")
    assert np.all(np.isfinite(half)) and np.all(np.diff(half) > 0)  # decreasing order of s
    np.testing.assert_allclose(scaled, predicted, rtol=0.15)


def test_deep_linear_flow_matches_deep_modes(problem):
    s, u, v = problem["s"], problem["u"], problem["v"]
    tau = 0.8
    system = DeepLinearFlow(problem["syx"], (4, 3, 3, 3), tau=tau)
    a0 = np.array([0.2, 0.3, 0.5])
    y0 = system.aligned_init(a0, key=3)
    assert max(np.abs(m).max() for m in system.imbalances(y0)) < 1e-15
    ts = np.linspace(0.0, 10.0, N_SAVE)
    traj = rf.solve(system, y0, 10.0, saveat=ts, **TIGHT)
    modes = rf.solve(DeepModes(s, 3, tau=tau), a0**3, 10.0, saveat=ts, dense=True, **TIGHT)  # shares a compile
    diag, off = _modes_in_basis(traj.observables["network_map"], u, v)
    err = np.max(np.abs(diag - modes.ys) / modes.ys)
    print(f"depth 3 matrices vs DeepModes: rel err {err:.1e}, off-diag {off:.1e}")
    assert err <= 1e-8 and off <= 1e-10
    assert np.all(modes.ys[-1] > 0.99 * s)

    # conservation from a random (unbalanced) init; same shapes, no recompilation
    rng = np.random.default_rng(7)
    y_random = {k: 0.5 * rng.standard_normal(np.shape(w)) for k, w in y0.items()}
    traj = rf.solve(system, y_random, 10.0, saveat=ts, **TIGHT)
    imbalances = system.imbalances(traj.ys)
    drift = max(np.abs(m - m[0]).max() for m in imbalances)
    print(f"depth 3 random init: imbalance drift {drift:.1e}")
    assert len(imbalances) == 2 and imbalances[0].shape == (N_SAVE, 3, 3)
    assert drift <= 1e-10
    assert traj.observables["risk"][-1] < 0.05 * traj.observables["risk"][0]


def test_vector_fields_are_loss_gradients(problem):
    """tau dW = -dL/dW for the documented risk, with coloured and whitened inputs."""
    rng = np.random.default_rng(3)
    syx = problem["syx"]
    g = rng.standard_normal((4, 4))
    sigma_x = g @ g.T / 4 + 0.1 * np.eye(4)
    tau = 0.6
    y = {"first_layer": rng.standard_normal((3, 4)), "second_layer": rng.standard_normal((3, 3))}
    for system in (TwoLayerLinearFlow(syx, 3, tau=tau), TwoLayerLinearFlow(syx, 3, input_correlation=sigma_x, tau=tau)):
        grad = jax.grad(lambda y: system.observables(0.0, y)["risk"])(y)
        flow = system.vector_field(0.0, y, None)
        for part in y:
            np.testing.assert_allclose(flow[part], -grad[part] / tau, rtol=1e-12, atol=1e-12)
    whitened = TwoLayerLinearFlow(syx, 3, input_correlation=np.eye(4))
    np.testing.assert_allclose(
        whitened.observables(0.0, y)["risk"], TwoLayerLinearFlow(syx, 3).observables(0.0, y)["risk"], rtol=1e-13
    )
    # a general Sigma^x risk is the population loss minus (E|y|^2 - |Sigma_yx|^2)/2: y = T x
    t_map = rng.standard_normal((3, 4))
    coloured = TwoLayerLinearFlow(t_map @ sigma_x, 3, input_correlation=sigma_x)
    w = np.asarray(y["second_layer"] @ y["first_layer"])
    loss = 0.5 * np.trace((t_map - w) @ sigma_x @ (t_map - w).T)
    offset = 0.5 * (np.trace(t_map @ sigma_x @ t_map.T) - np.sum((t_map @ sigma_x) ** 2))
    np.testing.assert_allclose(coloured.observables(0.0, y)["risk"], loss - offset, rtol=1e-12)

    deep = DeepLinearFlow(syx, (4, 2, 5, 3), tau=tau)
    y_deep = {k: rng.standard_normal(sh.shape) for k, sh in deep.state_shapes().items()}
    grad = jax.grad(lambda y: deep.observables(0.0, y)["risk"])(y_deep)
    flow = deep.vector_field(0.0, y_deep, None)
    for part in y_deep:
        np.testing.assert_allclose(flow[part], -grad[part] / tau, rtol=1e-12, atol=1e-12)
    two = DeepLinearFlow(syx, (4, 3, 3), tau=tau).vector_field(0.0, {"layer_0": y["first_layer"], "layer_1": y["second_layer"]}, None)
    ref = TwoLayerLinearFlow(syx, 3, tau=tau).vector_field(0.0, y, None)
    np.testing.assert_allclose(two["layer_0"], ref["first_layer"], rtol=1e-13)
    np.testing.assert_allclose(two["layer_1"], ref["second_layer"], rtol=1e-13)


def test_initialisation_helpers(problem):
    system = TwoLayerLinearFlow(problem["syx"], 3)
    scales = np.array([0.9, 0.5])
    y0 = system.balanced_init(scales, key=jax.random.key(4))
    w1, w2 = np.asarray(y0["first_layer"]), np.asarray(y0["second_layer"])
    np.testing.assert_allclose(w2.T @ w2, w1 @ w1.T, atol=1e-15)
    np.testing.assert_allclose(np.linalg.svd(w2 @ w1, compute_uv=False)[:2], scales**2, rtol=1e-13)
    same = system.balanced_init(scales, key=jax.random.key(4))
    np.testing.assert_array_equal(same["first_layer"], y0["first_layer"])
    a, b = np.array([0.3, -0.2, 0.1]), np.array([0.5, 0.4, 0.2])
    aligned = system.aligned_init(a, b, key=2)
    np.testing.assert_allclose(system.mode_strengths(aligned), a * b, atol=1e-15)
    with pytest.raises(ValueError, match="`scales`"):
        system.balanced_init(np.ones(4), key=0)
    with pytest.raises(ValueError, match="`key`"):
        system.balanced_init(scales, key="seed")


# ----------------------------------------------------------------------------------------------
# Bad inputs


def test_bad_inputs_raise_value_errors_naming_the_argument(problem):
    s = np.array([1.0, 0.5])
    for cls in (BalancedModes, UnbalancedModes):
        with pytest.raises(ValueError, match="`tau`"):
            cls(s, tau=0.0)
        with pytest.raises(ValueError, match="`tau`"):
            cls(s, tau=-1.0)
        with pytest.raises(ValueError, match="`singular_values`"):
            cls(np.array([1.0, -0.5]))
        with pytest.raises(ValueError, match="`singular_values`"):
            cls(np.ones((2, 2)))
    for depth in (1, 2.5, 3.0, "3", True):
        with pytest.raises(ValueError, match="`depth`"):
            DeepModes(s, depth)
    with pytest.raises(ValueError, match="`singular_values`"):
        DeepModes(np.array([np.nan, 1.0]), 3)
    with pytest.raises(ValueError, match="`depth`"):
        DeepModes(s, 2).escape_time_asymptotic(1e-3)
    with pytest.raises(ValueError, match="`hidden_width`"):
        TwoLayerLinearFlow(problem["syx"], 0)
    with pytest.raises(ValueError, match="`input_correlation`"):
        TwoLayerLinearFlow(problem["syx"], 3, input_correlation=np.eye(3))
    with pytest.raises(ValueError, match="`input_correlation`"):
        TwoLayerLinearFlow(problem["syx"], 3, input_correlation=-np.eye(4))
    with pytest.raises(ValueError, match="`tau`"):
        TwoLayerLinearFlow(problem["syx"], 3, tau=-1.0)
    with pytest.raises(ValueError, match="`input_output_correlation`"):
        DeepLinearFlow(problem["syx"], (3, 3, 3))
    with pytest.raises(ValueError, match=r"`widths\[1\]`"):
        DeepLinearFlow(problem["syx"], (4, 0, 3))

    balanced = BalancedModes(s)
    with pytest.raises(ValueError, match="`y0`"):
        rf.solve(balanced, np.array([np.nan, 0.1]), 1.0)
    with pytest.raises(ValueError, match="`y0`"):
        rf.solve(balanced, np.array([0.1, 0.1, 0.1]), 1.0)
    with pytest.raises(ValueError, match="`y0`"):
        balanced.closed_form(1.0, np.array([0.1, np.nan]))
    with pytest.raises(ValueError, match="`y0`"):
        balanced.closed_form(1.0, np.array([0.1, -0.1]))
    with pytest.raises(ValueError, match="`u_final`"):
        balanced.learning_time(0.1, np.array([0.5, 0.7]))  # 0.7 is beyond s = 0.5
    with pytest.raises(ValueError, match="`u0`"):
        DeepModes(s, 3).learning_time(np.array([0.1, 0.1, 0.1]), 0.2)
    with pytest.raises(ValueError, match="`u0`"):
        DeepModes(s, 3).learning_time(-0.1, 0.2)
    with pytest.raises(ValueError, match="`u_start`"):
        UnbalancedModes(s).time_between(0.0, 0.2, 0.0)
    two = TwoLayerLinearFlow(problem["syx"], 3)
    with pytest.raises(ValueError, match="`y0"):
        rf.solve(two, {"first_layer": np.zeros((3, 3)), "second_layer": np.zeros((3, 3))}, 1.0)
    with pytest.raises(ValueError, match="`y0"):
        rf.solve(UnbalancedModes(s), {"first_layer": np.array([np.nan, 1.0]), "second_layer": np.ones(2)}, 1.0)
