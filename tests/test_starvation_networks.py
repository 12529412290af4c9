"""Finite networks for gradient starvation (networks/two_moons.py, networks/ntk_mlp.py): the data
generator's geometry, the Jacobian at initialisation against finite differences, linearised GD
against the reduced flow (O(learning rate)), and the full network against its linearisation as
the width grows. Small sizes: 16 samples, widths 64-1024."""

import jax.numpy as jnp
import numpy as np
import pytest

from reducedflow.models.ntk_cross_entropy import LinearisedPrimalFlow
from reducedflow.networks.ntk_mlp import (
    init_ntk_mlp,
    ntk_mlp_jacobian,
    ntk_mlp_outputs,
    train_linearised,
    train_ntk_mlp,
    validate_linearised_flow,
    validate_two_moons,
)
from reducedflow.networks.two_moons import decision_grid, starved_boundary_fraction, two_moons
from reducedflow.validate import convergence_in_learning_rate, convergence_study


def test_two_moons_geometry():
    x, y = two_moons(300, noise=0.1, margin=0.1, key=3)
    assert x.shape == (300, 2) and set(np.unique(y)) == {-1.0, 1.0} and np.sum(y > 0) == 150
    # separable by the first coordinate with a gap of 2 * margin
    assert x[y > 0, 0].max() <= -0.1 and x[y < 0, 0].min() >= 0.1
    x_again, y_again = two_moons(300, noise=0.1, margin=0.1, key=3)
    assert np.array_equal(x, x_again) and np.array_equal(y, y_again)
    assert not np.array_equal(x, two_moons(300, noise=0.1, margin=0.1, key=4)[0])
    # negative margin: the classes overlap along x1
    xo, yo = two_moons(300, noise=0.1, margin=-0.1, key=3)
    assert xo[yo > 0, 0].max() > xo[yo < 0, 0].min()
    # rotation keeps norms
    xr, _ = two_moons(300, noise=0.1, margin=0.1, rotation=45.0, key=3)
    np.testing.assert_allclose(np.linalg.norm(xr, axis=1), np.linalg.norm(x, axis=1), rtol=1e-14)
    # the strong-feature rule classifies perfectly; a boundary along x1 is "starved"
    x1, x2, grid = decision_grid(2.0, 50)
    assert starved_boundary_fraction(-grid[:, 0], grid) == 0.0
    assert starved_boundary_fraction(-grid[:, 0] + 3 * grid[:, 1], grid) > 0.1
    with pytest.raises(ValueError, match="n_samples"):
        two_moons(1)
    with pytest.raises(ValueError, match="noise"):
        two_moons(10, noise=-1.0)


def test_jacobian_matches_finite_differences():
    x, y = two_moons(16, margin=0.1, key=0)
    params = init_ntk_mlp(32, key=1)
    phi = np.asarray(ntk_mlp_jacobian(params, jnp.asarray(x)))
    assert phi.shape == (16, 32 * 4)
    rng = np.random.default_rng(0)
    direction = {k: jnp.asarray(rng.standard_normal(v.shape)) for k, v in params.items()}
    flat_direction = np.concatenate([np.ravel(direction[k]) for k in sorted(direction)])
    h = 1e-6
    shifted = lambda s: {k: params[k] + s * direction[k] for k in params}  # noqa: E731
    fd = (np.asarray(ntk_mlp_outputs(shifted(h), x)) - np.asarray(ntk_mlp_outputs(shifted(-h), x))) / (2 * h)
    err = np.max(np.abs(phi @ flat_direction - fd)) / np.max(np.abs(fd))
    print(f"Jacobian vs central differences: {err:.1e}")
    assert err <= 1e-7


def test_linearised_gd_is_euler_and_converges_to_the_reduced_flow():
    x, y = two_moons(16, margin=0.1, key=0)
    params = init_ntk_mlp(64, key=1)
    phi = np.asarray(ntk_mlp_jacobian(params, jnp.asarray(x)))
    offset = np.asarray(ntk_mlp_outputs(params, x))
    outputs = np.asarray(train_linearised(phi, offset, y, learning_rate=0.05, steps=20, record_every=20,
                                          spectral_decoupling=0.01))
    flow = LinearisedPrimalFlow(phi, y, 0.0, 0.01, 1.0, offset)
    theta = jnp.zeros(phi.shape[1])
    for _ in range(20):
        theta = theta + 0.05 * flow.vector_field(0.0, theta, None)
    np.testing.assert_allclose(outputs[-1], np.asarray(flow.outputs(theta)), rtol=1e-12, atol=1e-12)
    study = convergence_in_learning_rate(validate_linearised_flow, [0.1, 0.05, 0.025], width=64, t1=10.0,
                                         spectral_decoupling=0.01)
    print(f"linearised GD vs reduced flow: gaps {study.errors}, ratios {study.ratios}, order {study.order:.3f}")
    assert np.all(np.abs(study.ratios - 2.0) < 0.15)
    scale = np.abs(study.results[-1].reduced["responses"]).max()
    assert study.errors[-1] < 0.01 * scale


@pytest.mark.parametrize("spectral_decoupling", [0.0, 0.05])
def test_network_approaches_linearisation_as_width_grows(spectral_decoupling):
    study = convergence_study(validate_two_moons, "width", [64, 256, 1024], steps=200, record_every=20,
                              spectral_decoupling=spectral_decoupling, key=0)
    result = study.results[-1]
    scale = np.abs(result.reduced["responses"]).max()
    print(f"SD {spectral_decoupling}: sup_t |z_net - z_lin| per width {study.errors} (|z| ~ {scale:.1f}), "
          f"fitted order {study.order:.2f}")
    assert np.all(np.diff(study.errors) < 0)
    assert study.order < -0.5
    assert study.errors[-1] < 0.05 * scale
    assert result.diagnostics["loss_network"][-1] < 0.5 * result.diagnostics["loss_network"][0]  # it did learn
    assert result.to_xarray()["max_abs_error_responses"].size == 16


def test_bad_inputs():
    x, y = two_moons(16, key=0)
    params = init_ntk_mlp(8, key=1)
    with pytest.raises(ValueError, match="labels"):
        train_ntk_mlp(params, x, (y + 1) / 2, learning_rate=0.1, steps=10)
    with pytest.raises(ValueError, match="multiple"):
        train_ntk_mlp(params, x, y, learning_rate=0.1, steps=10, record_every=3)
    with pytest.raises(ValueError, match="spectral_decoupling"):
        train_ntk_mlp(params, x, y, learning_rate=0.1, steps=10, spectral_decoupling=-1.0)
    with pytest.raises(ValueError, match="one row per label"):
        train_linearised(np.zeros((5, 3)), None, y, learning_rate=0.1, steps=10)
