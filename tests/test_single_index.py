"""Single-index reduced flows (Berthier, Montanari, Zhou 2023): the mean-field field against the
theory note's reference right-hand side, the structured Jacobian against autodiff, the Woodbury
Newton solves against the dense solver, the phase laws against their closed forms, the trap,
the stage blow-up, dissipation identities and input validation."""

import math

import diffrax as dfx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import reducedflow as rf
from reducedflow.analysis import transition_time
from reducedflow.models.single_index import (
    OneAtom,
    SingleIndexExact,
    SingleIndexMeanField,
    StageFlow,
    finite_dimension_initial_state,
    half_learning_times,
    hermite_coefficients,
    mean_field_initial_state,
    phase_one_second_moment,
    phase_one_solution,
    phase_one_time,
    stage_blow_up_time,
)

EXP4 = [math.exp(0.5) / math.sqrt(math.factorial(k)) for k in range(5)]  # exp truncated at degree 4
REFERENCE = hermite_coefficients(EXP4, [0.0, 1.0, 1.0, 1.0, 0.0])
WIDTH = 64
SAVE = np.logspace(-9, np.log10(3.0), 300)
SAVE[-1] = 3.0


def _random_state(m, seed=0):
    rng = np.random.default_rng(seed)
    return {"second_layer": jnp.asarray(rng.normal(size=m)), "overlap": jnp.asarray(rng.uniform(-0.9, 0.9, size=m))}


def test_mean_field_field_matches_reference_numpy():
    m, eps = 9, 1e-3
    system = SingleIndexMeanField(REFERENCE, eps, m)
    y = _random_state(m)
    phi, sig = REFERENCE.target, REFERENCE.activation
    a, s = np.asarray(y["second_layer"]), np.asarray(y["overlap"])
    ks = np.arange(len(phi))
    P = s[None, :] ** ks[:, None]
    r = phi - sig * (P @ a) / m
    dP = np.zeros_like(P)
    dP[1:] = ks[1:, None] * s[None, :] ** (ks[1:, None] - 1)
    field = system.vector_field(0.0, y, None)
    np.testing.assert_allclose(field["second_layer"], (sig * r) @ P / eps, rtol=1e-13)
    np.testing.assert_allclose(field["overlap"], (1 - s**2) * a * ((sig * r) @ dP), rtol=1e-12, atol=1e-14)
    assert float(system.risk(y)) == pytest.approx(0.5 * np.sum(r**2), rel=1e-13)


def test_particle_jacobian_matches_autodiff_and_woodbury_solves_the_newton_system():
    m = 11
    system = SingleIndexMeanField(REFERENCE, 1e-4, m)
    y = _random_state(m, seed=1)

    def flat(v):
        out = system.vector_field(0.0, {"overlap": v[:m], "second_layer": v[m:]}, None)
        return jnp.concatenate([out["overlap"], out["second_layer"]])

    rhs = jnp.asarray(np.random.default_rng(2).normal(size=(2, m)))
    cs = jnp.array([1e-6, 1e-3, 0.3])

    @jax.jit
    def everything(y, rhs):
        dense = jax.jacfwd(flat)(jnp.concatenate([y["overlap"], y["second_layer"]]))
        structured = system.particle_jacobian(0.0, y, None)
        solves = jax.vmap(lambda c: structured.shifted_inverse(c).solve(rhs))(cs)
        return dense, structured.as_dense(), structured.matvec(rhs), solves

    dense, as_dense, matvec, solves = everything(y, rhs)
    np.testing.assert_allclose(as_dense, dense, rtol=1e-12, atol=1e-12 * np.abs(dense).max())
    np.testing.assert_allclose(matvec.reshape(-1), dense @ rhs.reshape(-1), rtol=1e-11, atol=1e-9)
    for c, x in zip(cs, solves):
        residual = (np.eye(2 * m) - c * np.asarray(dense)) @ np.asarray(x).reshape(-1) - np.asarray(rhs).reshape(-1)
        assert np.max(np.abs(residual)) < 1e-9


def test_structured_newton_solves_give_the_dense_solution():
    m = 16
    system = SingleIndexMeanField(REFERENCE, 1e-4, m)
    assert isinstance(rf.default_solver(system).root_finder, rf.StructuredChord)
    y0 = mean_field_initial_state(m)
    save = SAVE[::6]
    fast = rf.solve(system, y0, 3.0, saveat=save)
    # The same method with diffrax's dense chord (same tolerance): only the linear solves differ.
    tol = rf._solve.PARTICLE_CHORD_TOLERANCE
    dense = rf.solve(system, y0, 3.0, saveat=save, solver=dfx.Kvaerno5(root_finder=dfx.VeryChord(rtol=tol, atol=tol)))
    np.testing.assert_allclose(fast.observables["risk"], dense.observables["risk"], rtol=1e-7, atol=1e-10)
    assert abs(fast.stats.steps - dense.stats.steps) <= 0.02 * dense.stats.steps
    # Learning proceeds from 1.5 (nothing learned) to below the level after degree 2 (0.5).
    assert fast.observables["risk"][0] == pytest.approx(1.5, abs=1e-6)
    assert fast.observables["risk"][-1] < 0.2


def test_risk_is_non_increasing_and_dissipation_matches_autodiff():
    system = SingleIndexMeanField(REFERENCE, 1e-3, WIDTH)
    traj = rf.solve(system, mean_field_initial_state(WIDTH, "uniform"), 3.0, saveat=SAVE)
    risk = traj.observables["risk"]
    assert np.all(np.diff(risk) <= 1e-12 * risk[0])
    # dR/dt along the flow (autodiff through the risk) = -(dissipation formula of the note, Sec. 10).
    for i in (50, 150, 250):
        y = jax.tree_util.tree_map(lambda v: jnp.asarray(v[i]), traj.ys)
        _, rate = jax.jvp(system.risk, (y,), (system.vector_field(0.0, y, None),))
        assert float(rate) == pytest.approx(-float(system.dissipation(y)), rel=1e-9, abs=1e-14)


@pytest.mark.parametrize("law", ["gaussian", "uniform"])
def test_phase_one_learning_time_law(law):
    """(T1): time to learn r_1^2 < phi_1^2 / 2 vs the asinh closed form, within 3% for eps <= 1e-3."""
    ratios = []
    for eps in (1e-3, 1e-4, 1e-5):
        system = SingleIndexMeanField(REFERENCE, eps, WIDTH)
        y0 = mean_field_initial_state(WIDTH, law)
        traj = rf.solve(system, y0, 3.0, saveat=SAVE)
        r1 = traj.observables["residuals"][:, 1]
        measured = transition_time(SAVE, r1**2, 0.5 * REFERENCE.target[1] ** 2)
        assert half_learning_times(traj, REFERENCE)[1] == measured
        second_moment = phase_one_second_moment(y0["second_layer"], REFERENCE)
        predicted = phase_one_time(eps, REFERENCE.activation[1], REFERENCE.target[1], second_moment)
        ratios.append(measured / predicted)
    ratios = np.array(ratios)
    assert np.all(np.abs(ratios - 1) < 0.03), ratios
    # The approximation improves as eps -> 0 (linearisation at s ~ 0 gets better).
    assert abs(ratios[-1] - 1) < abs(ratios[0] - 1)


def test_phase_one_closed_form_solves_the_linearised_stage():
    """The degree-1 stage with frozen residual is the linear system eps a' = c s, s' = c a: its
    solution is a0 cosh(c t / sqrt eps), a0 sqrt(eps) sinh(c t / sqrt eps)."""
    eps, sigma_1, phi_1 = 1e-2, 0.9, 1.1
    a0 = jnp.array([-1.0, 0.3, 2.0])
    system = StageFlow(1, sigma_1, phi_1, eps, frozen_residual=True)
    traj = rf.solve(system, {"second_layer": a0, "overlap": jnp.zeros(3)}, 0.5, saveat=rf.LinearTimes(11),
                    rtol=1e-11, atol=1e-13)
    a, s = phase_one_solution(sigma_1 * phi_1 * traj.ts[:, None], a0, eps)
    np.testing.assert_allclose(traj.ys["second_layer"], a, rtol=1e-8)
    np.testing.assert_allclose(traj.ys["overlap"], s, rtol=1e-8, atol=1e-12)


def test_phase_one_law_uses_the_variance_of_the_second_layer():
    """With sigma_0 != 0 the constant residual is slaved, which freezes the mean of a: only the
    deviations grow, so A_2 = Var a(0). For a(0) with mean 1 the variance law holds to 1% while
    the mean-square law (A_2 = mean a(0)^2) is > 8% off."""
    eps = 1e-5
    y0 = mean_field_initial_state(WIDTH)
    y0["second_layer"] = y0["second_layer"] + 1.0
    traj = rf.solve(SingleIndexMeanField(REFERENCE, eps, WIDTH), y0, 3.0, saveat=SAVE)
    measured = half_learning_times(traj, REFERENCE, (1,))[1]
    a0 = np.asarray(y0["second_layer"])
    assert phase_one_second_moment(a0, REFERENCE) == pytest.approx(np.var(a0), rel=1e-14)
    law = phase_one_time(eps, REFERENCE.activation[1], REFERENCE.target[1], phase_one_second_moment(a0, REFERENCE))
    mean_square_law = phase_one_time(eps, REFERENCE.activation[1], REFERENCE.target[1], float(np.mean(a0**2)))
    assert abs(measured / law - 1) < 0.01
    assert abs(measured / mean_square_law - 1) > 0.08


def test_learning_order_of_hermite_degrees():
    system = SingleIndexMeanField(REFERENCE, 1e-5, WIDTH)
    traj = rf.solve(system, mean_field_initial_state(WIDTH), 3.0, saveat=SAVE)
    times = list(half_learning_times(traj, REFERENCE).values())
    assert times[0] < times[1] < times[2] < 3.0
    # Before degree 2 starts, the risk sits at 1/2 sum_{k >= 2} phi_k^2 = 1.0 (degree 1 learned).
    i = np.searchsorted(SAVE, 2 * times[0])
    assert traj.observables["risk"][i] == pytest.approx(1.0, abs=0.08)


def test_trap_when_first_hermite_product_vanishes():
    """phi_1 = 0 at d = infinity: s stays exactly 0 and only the constant is learned (phase 0:
    the mean of a relaxes to phi_0 / sigma_0 at rate sigma_0^2 / eps)."""
    coeffs = hermite_coefficients(EXP4, [0.3, 0.0, 1.0, 0.5, 0.0])
    eps = 1e-3
    system = SingleIndexMeanField(coeffs, eps, WIDTH)
    y0 = mean_field_initial_state(WIDTH)
    traj = rf.solve(system, y0, 3.0, saveat=SAVE)
    assert np.all(traj.ys["overlap"] == 0.0)
    risk = traj.observables["risk"]
    assert risk[-1] == pytest.approx(0.5 * (1.0 + 0.25), rel=1e-10)
    mean_a = traj.ys["second_layer"].mean(axis=1)
    target_mean = 0.3 / coeffs.activation[0]
    expected = target_mean + (float(np.mean(y0["second_layer"])) - target_mean) * np.exp(-coeffs.activation[0] ** 2 * SAVE / eps)
    np.testing.assert_allclose(mean_a, expected, atol=1e-6)


@pytest.mark.parametrize("degree", [2, 3])
def test_stage_blow_up_time(degree):
    eps, sigma_l, phi_l, s0 = 1e-4, 0.8, 1.3, 0.05
    system = StageFlow(degree, sigma_l, phi_l, eps, frozen_residual=True)
    y0 = {"second_layer": jnp.array([s0 / math.sqrt(degree * eps)]), "overlap": jnp.array([s0])}
    big = s0 * 10 ** (5 / (degree - 1))  # far into the blow-up: t(big) differs from t* by (s0 / big)^(l - 1) = 1e-5
    event = rf.Crossing("large", lambda t, y, system: y["overlap"][0], level=big, direction=1)
    t_star = stage_blow_up_time(eps, degree, sigma_l, phi_l, s0)
    traj = rf.solve(system, y0, t_star * (1 - 1e-7), events=[event], rtol=1e-12, atol=1e-14, solver=dfx.Tsit5(),
                    saveat=rf.LinearTimes(20), max_steps=200_000)
    hit = traj.events["large"].times[0]
    c = sigma_l * phi_l
    exact_hit = math.sqrt(eps) / ((degree - 1) * math.sqrt(degree) * c) * (s0 ** (1 - degree) - big ** (1 - degree))
    assert hit == pytest.approx(exact_hit, rel=1e-7)
    assert abs(hit - t_star) / t_star < 1e-4
    # Per-particle invariant eps a^2 - s^2 / l (= 0 on this trajectory), relative to s^2.
    invariant = traj.observables["invariant"][:, 0]
    scale = traj.ys["overlap"][:, 0] ** 2
    assert np.max(np.abs(invariant) / scale) < 1e-9


def test_missing_coefficient_stalls_the_stage():
    """phi_l = 0: d/dt (eps/2) mean(a^2) = -sigma_l^2 M_l^2 <= 0 (the readout cannot grow)."""
    eps = 1e-3
    system = StageFlow(2, 0.7, 0.0, eps)
    rng = np.random.default_rng(3)
    y0 = {"second_layer": jnp.asarray(rng.normal(size=40)), "overlap": jnp.asarray(rng.uniform(-0.3, 0.3, size=40))}
    traj = rf.solve(system, y0, 1.0, saveat=rf.LinearTimes(50), rtol=1e-10, atol=1e-12)
    energy = traj.observables["readout_energy"]
    assert np.all(np.diff(energy) <= 1e-14)
    y = jax.tree_util.tree_map(lambda v: jnp.asarray(v[10]), traj.ys)
    _, rate = jax.jvp(lambda z: 0.5 * eps * jnp.mean(z["second_layer"] ** 2), (y,), (system.vector_field(0.0, y, None),))
    moment = float(jnp.mean(y["second_layer"] * y["overlap"] ** 2))
    assert float(rate) == pytest.approx(-(0.7**2) * moment**2, rel=1e-10)


def test_one_atom_is_the_mean_field_flow_of_identical_neurons_and_its_slow_risk():
    eps = 1e-2
    one = OneAtom(REFERENCE, eps)
    many = SingleIndexMeanField(REFERENCE, eps, 3)
    a, s = 0.7, 0.4
    f1 = one.vector_field(0.0, jnp.array([a, s]), None)
    fm = many.vector_field(0.0, {"second_layer": jnp.full(3, a), "overlap": jnp.full(3, s)}, None)
    # Identical neurons: the mean-field risk uses U(s_i s_j) = U(s^2), exactly as the one-atom flow.
    np.testing.assert_allclose([fm["second_layer"][0], fm["overlap"][0]], f1, rtol=1e-12)
    # min_a R(a, s) by brute force equals the closed-form slow risk.
    grid = np.linspace(-5, 5, 200001)
    risks = np.asarray(jax.vmap(lambda g: one.risk(jnp.array([g, s])))(jnp.asarray(grid)))
    assert float(one.slow_risk(s)) == pytest.approx(risks.min(), abs=1e-9)


def test_exact_system_dissipation_and_psd_initial_state():
    m = 5
    system = SingleIndexExact(REFERENCE, 0.1, m)
    y0 = finite_dimension_initial_state(m, 40, key=0)
    np.testing.assert_allclose(np.diag(y0["gram"]), 1.0)
    traj = rf.solve(system, y0, 2.0, saveat=rf.LinearTimes(21), rtol=1e-10, atol=1e-12)
    assert np.all(np.diff(traj.observables["risk"]) <= 1e-12)
    y = jax.tree_util.tree_map(lambda v: jnp.asarray(v[5]), traj.ys)
    _, rate = jax.jvp(system.risk, (y,), (system.vector_field(0.0, y, None),))
    assert float(rate) == pytest.approx(-float(system.dissipation(y)), rel=1e-9)
    np.testing.assert_allclose(np.diagonal(traj.ys["gram"], axis1=1, axis2=2), 1.0, atol=1e-14)


def test_log_time_keeps_the_structured_solver():
    system = SingleIndexMeanField(REFERENCE, 1e-4, WIDTH)
    y0 = mean_field_initial_state(WIDTH)
    plain = rf.solve(system, y0, 3.0, saveat=SAVE)
    logged = rf.solve(system, y0, 3.0, saveat=SAVE, log_time=True)
    np.testing.assert_allclose(logged.observables["risk"], plain.observables["risk"], rtol=1e-5, atol=1e-8)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="epsilon"):
        SingleIndexMeanField(REFERENCE, 0.0, 4)
    with pytest.raises(ValueError, match="epsilon"):
        SingleIndexExact(REFERENCE, -1e-3, 4)
    with pytest.raises(ValueError, match="width"):
        SingleIndexMeanField(REFERENCE, 1e-3, 0)
    system = SingleIndexMeanField(REFERENCE, 1e-3, 2)
    with pytest.raises(ValueError, match="overlap"):
        rf.solve(system, {"second_layer": jnp.ones(2), "overlap": jnp.array([0.5, 1.5])}, 1.0)
    with pytest.raises(ValueError, match="target"):
        hermite_coefficients("relu", lambda z: np.exp(z**2), degree=4)
    with pytest.raises(ValueError, match="degree"):
        hermite_coefficients("relu", "tanh")
    exact = SingleIndexExact(REFERENCE, 1e-2, 2)
    bad_gram = {"second_layer": jnp.ones(2), "overlap": jnp.array([0.9, -0.9]), "gram": jnp.array([[1.0, 0.9], [0.9, 1.0]])}
    with pytest.raises(ValueError, match="positive semidefinite"):
        rf.solve(exact, bad_gram, 1.0)


def test_relu_coefficients_and_unfittable_degrees():
    coeffs = hermite_coefficients("relu", "cubic", degree=4)
    assert coeffs.activation[0] == pytest.approx(1 / math.sqrt(2 * math.pi), rel=1e-12)
    assert coeffs.activation[1] == pytest.approx(0.5, rel=1e-12)
    assert coeffs.activation[2] == pytest.approx(1 / math.sqrt(4 * math.pi), rel=1e-12)
    assert coeffs.activation[3] == pytest.approx(0.0, abs=1e-14)
    # z^3 = He3 + 3 He1: phi_3 = sqrt(6), but ReLU has sigma_3 = 0.
    assert coeffs.unfittable_degrees() == (3,)
    assert coeffs.information_exponent == 1


def test_explicit_solver_needs_many_more_steps_and_agrees():
    """The stiffness the implicit default removes: Tsit5 (given a first step dt0) needs >20x the
    steps at eps = 1e-6 on a short horizon and agrees with the structured implicit solve."""
    m = 16
    system = SingleIndexMeanField(REFERENCE, 1e-6, m)
    y0 = mean_field_initial_state(m)
    save = rf.LinearTimes(5)
    implicit = rf.solve(system, y0, 0.01, saveat=save)
    explicit = rf.solve(system, y0, 0.01, saveat=save, solver=dfx.Tsit5(), dt0=1e-8, max_steps=10**6)
    np.testing.assert_allclose(explicit.observables["risk"], implicit.observables["risk"], rtol=1e-6)
    assert explicit.stats.steps > 20 * implicit.stats.steps
    with pytest.raises(ValueError, match="dt0"):
        rf.solve(system, y0, 0.01, dt0=-1.0)
