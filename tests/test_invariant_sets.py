"""Invariant sets of SGD (vanishing and identical units) in a two-layer network: exact invariance
under SGD, label-noise SGD and the stochastic gradient flow, the witness that breaks it
(sigma(0) != 0), and detection of planted collapsed units in weights."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import reducedflow as rf
from reducedflow.analysis.invariant_sets import (
    check_invariance,
    collapse_report,
    distance_to_subspace,
    effective_rank,
    identical_unit_groups,
    intersect_subspaces,
    permutation_invariant_subspace,
    sign_invariant_subspace,
    unit_distance_matrix,
    vanishing_units,
)
from reducedflow.models.sgd_flow import sgd_paths
from reducedflow.networks.two_layer_mlp import TwoLayerLayout, TwoLayerMLP, label_noise_sgd_paths

LAYOUT = TwoLayerLayout(input_dim=3, width=5)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 3))
    y = np.sin(x @ np.array([1.0, -0.5, 0.3])) + 0.1 * rng.standard_normal(16)
    return x, y


def _start(net, on):
    """A generic point, then placed exactly on the set: unit 1 zeroed and/or unit 3 := unit 2."""
    w_in, w_out = (np.array(a) for a in LAYOUT.unpack(net.init(7, scale=1.5)))
    if "sign" in on:
        w_in[1], w_out[1] = 0.0, 0.0
    if "perm" in on:
        w_in[3], w_out[3] = w_in[2], w_out[2]
    return np.asarray(LAYOUT.pack(w_in, w_out))


def test_layout_and_subspaces_are_what_they_claim():
    theta = np.arange(LAYOUT.size, dtype=float)
    w_in, w_out = LAYOUT.unpack(theta)
    assert w_in.shape == (5, 4) and w_out.shape == (5, 1)
    np.testing.assert_array_equal(LAYOUT.pack(w_in, w_out), theta)
    incoming, outgoing = LAYOUT.unit_indices(2)
    np.testing.assert_array_equal(theta[incoming], w_in[2])
    np.testing.assert_array_equal(theta[outgoing], w_out[2])
    sign = sign_invariant_subspace(LAYOUT, 1)
    perm = permutation_invariant_subspace(LAYOUT, 2, 3)
    assert (sign.codimension, perm.codimension) == (5, 5)
    for s in (sign, perm, sign & perm):
        basis = s.basis
        np.testing.assert_allclose(basis.T @ basis, np.eye(s.dimension), atol=1e-12)
        np.testing.assert_allclose(s.normal_basis.T @ basis, 0.0, atol=1e-12)
        np.testing.assert_allclose(s.projector @ s.projector, s.projector, atol=1e-12)
    # the distance is that of the explicit formulas
    rng = np.random.default_rng(1)
    th = rng.standard_normal(LAYOUT.size)
    wi, wo = (np.asarray(a) for a in LAYOUT.unpack(th))
    assert sign.distance(th) == pytest.approx(np.sqrt(np.sum(wi[1] ** 2) + np.sum(wo[1] ** 2)), rel=1e-14)
    expected = np.sqrt((np.sum((wi[2] - wi[3]) ** 2) + np.sum((wo[2] - wo[3]) ** 2)) / 2)
    assert perm.distance(th) == pytest.approx(expected, rel=1e-14)
    # dense-basis path agrees with the normal-basis path
    both = intersect_subspaces(sign, perm)
    assert distance_to_subspace(th, both.basis) == pytest.approx(both.distance(th), rel=1e-12)
    assert both.distance(both.project(th)) < 1e-14


@pytest.mark.parametrize("kind", ["sign", "perm", "sign+perm"])
def test_per_sample_gradients_are_tangent_to_the_sets_with_tanh(data, kind):
    net = TwoLayerMLP(LAYOUT, jnp.tanh)
    flow = net.flow(*data, learning_rate=0.1)
    subspace = {"sign": sign_invariant_subspace(LAYOUT, 1), "perm": permutation_invariant_subspace(LAYOUT, 2, 3)}
    subspace["sign+perm"] = subspace["sign"] & subspace["perm"]
    samples = np.random.default_rng(2).standard_normal((3, LAYOUT.size))
    result = check_invariance(flow.per_sample_gradients, subspace[kind], samples)
    assert result.invariant and result.max_gradient > 0.1
    # softplus has sigma(0) = log 2: the sign set is not invariant, the permutation set still is
    flow_sp = TwoLayerMLP(LAYOUT, jax.nn.softplus).flow(*data, learning_rate=0.1)
    result_sp = check_invariance(flow_sp.per_sample_gradients, subspace[kind], samples)
    assert result_sp.invariant == (kind == "perm")


def test_sgd_started_inside_stays_inside_and_softplus_leaves(data):
    x, y = data
    tanh_net, softplus_net = TwoLayerMLP(LAYOUT, jnp.tanh), TwoLayerMLP(LAYOUT, jax.nn.softplus)
    sign, perm = sign_invariant_subspace(LAYOUT, 1), permutation_invariant_subspace(LAYOUT, 2, 3)
    theta0 = _start(tanh_net, "sign+perm")
    assert sign.distance(theta0) == 0.0 and perm.distance(theta0) == 0.0
    flow = tanh_net.flow(x, y, learning_rate=0.05, batch_size=4)
    _, thetas = sgd_paths(flow, theta0, 1000, key=0, n_paths=3, save_every=100)
    _, noisy = label_noise_sgd_paths(flow, theta0, 1000, label_noise=1.0, key=1, n_paths=3, save_every=100)
    for path in (thetas, noisy):
        assert np.all(np.isfinite(path))
        assert np.max(np.abs(path[:, -1] - theta0)) > 0.05  # the parameters did move
        assert np.all(sign.distance(path) == 0.0)  # exact zeros stay exact
        assert np.max(perm.distance(path)) < 1e-14
    # the witness that the test can fail: sigma(0) != 0 pushes the vanishing unit out
    flow_sp = softplus_net.flow(x, y, learning_rate=0.05, batch_size=4)
    _, thetas_sp = sgd_paths(flow_sp, theta0, 1000, key=0, n_paths=3, save_every=100)
    assert np.min(sign.distance(thetas_sp[:, -1])) > 1e-3
    assert np.max(perm.distance(thetas_sp)) < 1e-14  # identical units stay identical for any sigma


def test_stochastic_gradient_flow_keeps_the_sign_set(data):
    flow = TwoLayerMLP(LAYOUT, jnp.tanh).flow(*data, learning_rate=0.05, batch_size=2)
    theta0 = _start(TwoLayerMLP(LAYOUT), "sign")
    traj = rf.euler_maruyama(flow, theta0, 5.0, dt=0.01, key=3, n_paths=2, saveat=[0.0, 2.5, 5.0])
    assert np.all(sign_invariant_subspace(LAYOUT, 1).distance(traj.ys) == 0.0)
    assert np.max(np.abs(traj.ys[:, -1] - theta0)) > 0.05


def _planted_weights(rng, noise):
    """10 units: 2 vanishing (0, 5), units {1, 4, 7} and {2, 8} duplicated, 3, 6, 9 distinct."""
    base_in, base_out = rng.standard_normal((10, 6)), rng.standard_normal((10, 2))
    for p in (4, 7):
        base_in[p], base_out[p] = base_in[1], base_out[1]
    base_in[8], base_out[8] = base_in[2], base_out[2]
    w_in = base_in + noise * rng.standard_normal(base_in.shape)
    w_out = base_out + noise * rng.standard_normal(base_out.shape)
    w_in[[0, 5]] *= 1e-3
    w_out[[0, 5]] *= 1e-3
    return w_in, w_out


def test_detection_recovers_planted_vanishing_and_identical_units():
    w_in, w_out = _planted_weights(np.random.default_rng(4), noise=0.02)  # D_pq ~ 2 * 8 * 4e-4 / 16 << 0.1
    np.testing.assert_array_equal(vanishing_units(w_in, w_out), [0, 5])
    report = collapse_report(w_in, w_out)
    np.testing.assert_array_equal(report.vanishing, [0, 5])
    groups = [g.tolist() for g in report.groups]
    assert groups == [[1, 4, 7], [2, 8], [3], [6], [9]]
    assert report.effective_width == 5 and report.independent_fraction == 0.5
    d = report.distance_matrix
    assert d.shape == (10, 10) and np.allclose(d, d.T) and np.all(np.diag(d) == 0)
    assert d[1, 4] < 0.01 and d[1, 3] > 0.3
    # more noise than the threshold tolerates: the duplicates split
    w_in_noisy, w_out_noisy = _planted_weights(np.random.default_rng(4), noise=1.0)
    assert collapse_report(w_in_noisy, w_out_noisy).effective_width == 8
    # opposite units are not identical (D = 4)
    assert unit_distance_matrix(np.array([[1.0, 2.0], [-1.0, -2.0]]), np.array([0.5, -0.5]))[0, 1] == pytest.approx(4.0)
    assert len(identical_unit_groups(np.zeros((3, 2)), np.zeros(3))) == 1  # all exactly zero: identical


@pytest.mark.parametrize("rank", [1, 3, 5])
def test_effective_rank_of_rank_r_matrices(rank):
    rng = np.random.default_rng(rank)
    q1, _ = np.linalg.qr(rng.standard_normal((20, rank)))
    q2, _ = np.linalg.qr(rng.standard_normal((12, rank)))
    flat = q1 @ q2.T  # equal singular values: both measures give exactly r
    assert effective_rank(flat) == pytest.approx(rank, rel=1e-10)
    assert effective_rank(flat, "participation") == pytest.approx(rank, rel=1e-10)
    graded = q1 @ np.diag(np.geomspace(1, 0.1, rank)) @ q2.T
    for method in ("entropy", "participation"):
        value = effective_rank(graded, method)
        assert 1 <= value <= rank + 1e-10 and (rank == 1 or value < rank - 0.1)
    assert effective_rank(np.zeros((3, 3))) == 0.0


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="`p` and `q`"):
        permutation_invariant_subspace(LAYOUT, 2, 2)
    with pytest.raises(ValueError, match="`unit`"):
        sign_invariant_subspace(LAYOUT, 7)
    with pytest.raises(ValueError, match="`params_layout`"):
        sign_invariant_subspace(object(), 0)
    with pytest.raises(ValueError, match="`method`"):
        effective_rank(np.eye(2), "nuclear")
    with pytest.raises(ValueError, match="`tol`"):
        vanishing_units(np.ones((2, 2)), np.ones(2), tol=-1)
