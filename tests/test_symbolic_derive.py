"""Derived gradient flows (symbolic/derive.py, symbolic/two_layer.py): gradients against
jax.grad, the order-parameter flow against the projected weight-space flow, the Saad-Solla
committee formula, and the population risk against Monte Carlo with actual weights."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special
import sympy as sp

import reducedflow as rf
from reducedflow.derive import two_layer
from reducedflow.symbolic.codegen import to_jax
from reducedflow.symbolic.gaussian import committee_i3


@pytest.fixture(scope="module")
def relu_sphere():
    return two_layer("relu", width=2, teacher_width=1, epsilon=0.3)


@pytest.fixture(scope="module")
def erf_committee():
    return two_layer("erf_sqrt2", width=2, teacher_width=2, first_layer="free", second_layer="fixed",
                     normalisation="sum")


def _unit_rows(rng, rows, d):
    w = rng.standard_normal((rows, d))
    return w / np.linalg.norm(w, axis=1, keepdims=True)


def test_derived_gradients_equal_jax_grad(relu_sphere, erf_committee):
    rng = np.random.default_rng(0)
    for system, state in [(relu_sphere, None), (erf_committee, None)]:
        names = system.compiled.state_symbols
        args = [list(names), list(system.compiled.constant_symbols)]
        grad_fn = jax.jit(to_jax(args, system.gradient_expressions))
        risk_grad = jax.jit(jax.grad(to_jax(args, system.risk_expression)))
        for _ in range(5):
            w = rng.standard_normal((5, 5))
            if system is relu_sphere:
                u = _unit_rows(rng, 3, 5)
                gram = u @ u.T
                y = system.pack({"a_1": rng.normal(), "a_2": rng.normal(), "Q_12": gram[0, 1],
                                 "s_1": gram[0, 2], "s_2": gram[1, 2]})
            else:
                gram = w @ w.T / 5
                y = system.pack({"Q_11": gram[0, 0], "Q_12": gram[0, 1], "Q_22": gram[1, 1],
                                 "R_11": gram[0, 2], "R_12": gram[0, 3], "R_21": gram[1, 2], "R_22": gram[1, 3]})
            derived, auto = grad_fn(y, system.constants), risk_grad(y, system.constants)
            np.testing.assert_allclose(derived, auto, rtol=1e-10, atol=1e-14)


def _weight_space_rates(system, students, teachers, a, sphere, rate, second_rate):
    """Order-parameter velocities from the (projected) weight-space gradient flow, by autodiff
    of the risk written as a function of the weights through their Gram matrix."""
    m, k = students.shape[0], teachers.shape[0]

    def state_from(weights, a):
        gram = weights @ jnp.concatenate([weights, teachers]).T
        values = {f"a_{i + 1}": a[i] for i in range(m)}
        for i in range(m):
            values[f"Q_{i + 1}{i + 1}"] = gram[i, i]
            for j in range(i + 1, m):
                values[f"Q_{i + 1}{j + 1}"] = gram[i, j]
            for n in range(k):
                values[f"R_{i + 1}{n + 1}" if k > 1 else f"s_{i + 1}"] = gram[i, m + n]
        return jnp.stack([values[name] for name in system.state_names])

    def risk(weights, a):
        return system.risk(state_from(weights, a))

    gw, ga = jax.grad(risk, argnums=(0, 1))(students, a)
    if sphere:
        gw = gw - jnp.sum(gw * students, axis=1, keepdims=True) * students
    w_dot, a_dot = -rate * gw, -second_rate * ga
    _, velocity = jax.jvp(state_from, (students, a), (w_dot, a_dot))
    return state_from(students, a), velocity


def test_order_parameter_flow_equals_projected_weight_flow(relu_sphere):
    """Mean-field sphere: w' = -m (I - w w^T) grad R, a' = -(m / eps) dR/da; the overlaps'
    velocities equal the derived vector field (BMZ, arXiv:2303.00055, Eqs. (5)-(6))."""
    rng = np.random.default_rng(1)
    for eps in (0.3, 2.0):
        system = relu_sphere.with_constants(epsilon=eps)
        students, teachers = _unit_rows(rng, 2, 7), _unit_rows(rng, 1, 7)
        a = rng.standard_normal(2)
        y, velocity = _weight_space_rates(system, students, teachers, a, True, 2.0, 2.0 / eps)
        np.testing.assert_allclose(system.vector_field(0.0, y, None), velocity, rtol=1e-10, atol=1e-13)
        assert float(system.timescale_ratio()) == pytest.approx(max(eps, 1 / eps))


def test_committee_flow_equals_weight_flow_and_saad_solla_formula(erf_committee):
    """Free first layer, erf(z/sqrt2), v = A = 1: dR_in/dt = sum_m I3(i,n,m) - sum_j I3(i,n,j),
    the O(eta) part of the Saad-Solla ODE (committee.md Sec. 4)."""
    rng = np.random.default_rng(2)
    students = rng.standard_normal((2, 6)) / 2
    teachers = np.linalg.qr(rng.standard_normal((6, 2)))[0].T  # the system's teacher Gram T = I
    y, velocity = _weight_space_rates(erf_committee, students, teachers, jnp.ones(2), False, 1.0, 0.0)
    rhs = np.asarray(erf_committee.vector_field(0.0, y, None))
    np.testing.assert_allclose(rhs, velocity, rtol=1e-10, atol=1e-13)
    vectors = np.concatenate([students, teachers])
    cov = vectors @ vectors.T
    signs = np.array([-1.0, -1.0, 1.0, 1.0])  # students enter with -v, teachers with +A
    values = erf_committee.unpack(rhs)
    for i in range(2):
        for n in range(2):
            expected = sum(signs[p] * float(committee_i3(cov[np.ix_([i, 2 + n, p], [i, 2 + n, p])])) for p in range(4))
            assert float(values[f"R_{i + 1}{n + 1}"]) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("case", ["relu_free", "tanh_sphere", "erf_relu"])
def test_population_risk_equals_monte_carlo(case):
    """2 R(order parameters) = E (y - f(x))^2 for actual random weights in d = 20."""
    rng = np.random.default_rng(3)
    d, n = 20, 1_000_000
    if case == "relu_free":
        system = two_layer("relu", width=3, teacher_width=2, first_layer="free", teacher_overlaps=[[1.3, 0.4], [0.4, 0.7]],
                           teacher_second_layer=[1.0, -0.6])
        sigma = phi = lambda z: np.maximum(z, 0.0)
        students = rng.standard_normal((3, d)) / math.sqrt(d)
        t_chol = np.linalg.cholesky(np.array([[1.3, 0.4], [0.4, 0.7]]))
        basis = np.linalg.qr(rng.standard_normal((d, 2)))[0].T
        teachers = t_chol @ basis
        students[0] += 0.8 * teachers[0]
    elif case == "tanh_sphere":
        system = two_layer("tanh", width=2, degree=24)
        sigma = phi = np.tanh
        teachers = _unit_rows(rng, 1, d)
        students = _unit_rows(rng, 2, d) + 1.5 * teachers
        students /= np.linalg.norm(students, axis=1, keepdims=True)
    else:
        system = two_layer("erf", target="relu", width=2, first_layer="free")
        sigma, phi = scipy.special.erf, lambda z: np.maximum(z, 0.0)
        teachers = _unit_rows(rng, 1, d)
        students = rng.standard_normal((2, d)) / math.sqrt(d) + 0.5 * teachers
    m, k = students.shape[0], teachers.shape[0]
    a = rng.standard_normal(m)
    amps = np.asarray(system.constants[1:1 + k])
    gram = students @ np.concatenate([students, teachers]).T
    values = {f"a_{i + 1}": a[i] for i in range(m)}
    for i in range(m):
        values[f"Q_{i + 1}{i + 1}"] = gram[i, i]
        for j in range(i + 1, m):
            values[f"Q_{i + 1}{j + 1}"] = gram[i, j]
        for t in range(k):
            values[f"R_{i + 1}{t + 1}" if k > 1 else f"s_{i + 1}"] = gram[i, m + t]
    risk = float(system.risk(system.pack({name: values[name] for name in system.state_names})))
    x = rng.standard_normal((n, d))
    f = sigma(x @ students.T) @ a / m
    y = phi(x @ teachers.T) @ amps
    sq = (y - f) ** 2
    se = sq.std() / math.sqrt(n)
    assert abs(2 * risk - sq.mean()) <= 4 * se, (2 * risk, sq.mean(), se)


def test_solve_takes_derived_system_and_risk_decreases(relu_sphere):
    system = relu_sphere.with_constants(epsilon=1.0)
    y0 = system.pack({"a_1": 0.4, "a_2": -0.2, "Q_12": 0.1, "s_1": 0.3, "s_2": -0.1})
    traj = rf.solve(system, y0, 2.0, saveat=np.linspace(0.0, 2.0, 21), rtol=1e-9, atol=1e-11)
    risk = np.asarray(traj.observables["risk"])
    assert np.all(np.diff(risk) <= 1e-12) and risk[-1] < risk[0]
    # dR/dt = grad R . f (a gradient flow dissipates): check at the start.
    g = jax.grad(system.risk)(y0)
    assert float(g @ system.vector_field(0.0, y0, None)) < 0


def test_equations_text_and_latex(relu_sphere):
    text = relu_sphere.equations()
    latex = relu_sphere.equations(latex=True)
    for name in ("a_1", "s_2", "Q_12", "epsilon"):
        assert name in text
    assert r"\frac{da_{1}}{dt}" in latex and "atan" in latex
    assert relu_sphere.state_names == ("a_1", "a_2", "Q_12", "s_1", "s_2")
    # eps = 0.3: the second layer is the fast part.
    assert relu_sphere.fast_components().tolist() == [True, True, False, False, False]


def test_bad_inputs_raise_value_errors():
    with pytest.raises(ValueError, match="'relu'"):
        two_layer("rectified", width=2)
    with pytest.raises(ValueError, match="epsilon"):
        two_layer("relu", width=2, epsilon=0.0)
    with pytest.raises(ValueError, match="width"):
        two_layer("relu", width=0)
    with pytest.raises(ValueError, match="second_layer"):
        two_layer("relu", width=2, second_layer="frozen")
    with pytest.raises(ValueError, match="sphere"):
        two_layer("tanh", width=2, first_layer="free", degree=10)
    with pytest.raises(ValueError, match="positive semi-definite"):
        two_layer("relu", width=1, teacher_width=2, teacher_overlaps=[[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(ValueError, match="second moment"):
        two_layer(sp.exp(sp.Symbol("z") ** 2), width=1)
