"""Lyapunov exponents (analysis/lyapunov.py): linear systems (exponents = real parts of the
eigenvalues), the Lorenz attractor (largest exponent 0.9056, sum = trace of the Jacobian),
and the almost-sure growth rate mu - sigma^2/2 of geometric Brownian motion."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import reducedflow as rf
from reducedflow.analysis.lyapunov import largest_lyapunov_exponent, lyapunov_spectrum, sde_lyapunov_exponent
from reducedflow.models.classic import FoldNormalForm, LinearSystem, Lorenz

LORENZ_LARGEST = 0.9056  # Sprott (2003)


def test_linear_system_exponents_are_the_real_parts_of_the_eigenvalues():
    # A non-normal matrix with a complex pair -1 +- 2i and a real eigenvalue 0.5 (coupled).
    matrix = np.array([[-1.0, 2.0, 0.0], [-2.0, -1.0, 0.0], [3.0, 0.0, 0.5]])
    result = lyapunov_spectrum(LinearSystem(matrix), np.zeros(3), t1=400.0, dt=0.01)
    expected = np.sort(np.linalg.eigvals(matrix).real)[::-1]
    np.testing.assert_allclose(result.exponents, expected, atol=5e-3)
    # Convergence like 1/t: the error halves when the averaging time doubles.
    half = np.abs(result.running[result.times.size // 2 - 1] - expected).max()
    assert np.abs(result.exponents - expected).max() < 0.75 * half
    assert largest_lyapunov_exponent(LinearSystem(np.diag([-0.3, -2.0])), np.zeros(2), t1=100.0) == pytest.approx(
        -0.3, abs=0.01)


def test_lorenz_largest_exponent_and_spectrum():
    start = {"x": 1.0, "y": 1.0, "z": 20.0}
    largest = lyapunov_spectrum(Lorenz(), start, t1=2000.0, dt=0.01, transient=20.0, n_exponents=1)
    assert largest.largest == pytest.approx(LORENZ_LARGEST, rel=0.03)
    full = lyapunov_spectrum(Lorenz(), start, t1=500.0, dt=0.01, transient=20.0)
    # The exponents sum to the (constant) divergence -(sigma + 1 + beta); the middle one is 0.
    assert full.exponents.sum() == pytest.approx(-(10.0 + 1.0 + 8.0 / 3.0), abs=1e-3)
    assert abs(full.exponents[1]) < 0.03
    assert full.kaplan_yorke_dimension == pytest.approx(2.06, abs=0.01)
    assert full.to_xarray()["exponent"].shape == (3,)


class GeometricBrownianMotion:
    """dX = mu X dt + sigma X dW (Ito), one coordinate per entry of mu, diagonal noise."""

    def __init__(self, mu, sigma, matrix_noise=False):
        self.mu, self.sigma, self.matrix_noise = jnp.asarray(mu), jnp.asarray(sigma), matrix_noise

    def vector_field(self, t, y, args):
        return self.mu * y

    def diffusion(self, t, y, args):
        return jnp.diag(self.sigma * y) if self.matrix_noise else self.sigma * y


def test_geometric_brownian_motion_growth_rate():
    mu, sigma = 0.2, 0.8
    result = sde_lyapunov_exponent(GeometricBrownianMotion([mu], [sigma]), y0=jnp.array([1.0]), t1=40.0, dt=1e-3,
                                   n_paths=128, key=3)
    expected = mu - sigma**2 / 2  # Ito: not mu (Stratonovich reading), not mu - sigma^2
    assert result.standard_error < 0.015
    assert abs(result.exponent - expected) < 4 * result.standard_error + 2e-3
    assert abs(result.exponent - mu) > 0.2 and abs(result.exponent - (mu - sigma**2)) > 0.2


def test_two_dimensional_sde_takes_the_largest_rate_and_matrix_noise():
    mu, sigma = jnp.array([0.1, 0.4]), jnp.array([0.3, 1.0])  # rates 0.055, -0.1
    for matrix_noise in (False, True):
        result = sde_lyapunov_exponent(GeometricBrownianMotion(mu, sigma, matrix_noise), y0=jnp.ones(2), t1=20.0,
                                       dt=2e-3, n_paths=64, key=0)
        assert abs(result.exponent - 0.055) < 4 * result.standard_error + 2e-3


def test_drift_and_diffusion_as_callables_and_bad_inputs():
    drift = lambda t, y, args: -y
    diffusion = lambda t, y, args: 0.5 * y
    result = sde_lyapunov_exponent(drift, diffusion, y0=jnp.array([1.0]), t1=10.0, dt=1e-3, n_paths=32, key=1)
    assert abs(result.exponent - (-1.125)) < 4 * result.standard_error + 3e-3
    with pytest.raises(ValueError, match="`diffusion`"):
        sde_lyapunov_exponent(drift, lambda t, y, args: jnp.ones(3), y0=jnp.array([1.0, 2.0]), t1=1.0)
    with pytest.raises(ValueError, match="`sde`"):
        sde_lyapunov_exponent(object(), y0=jnp.array([1.0]))
    with pytest.raises(ValueError, match="`n_exponents`"):
        lyapunov_spectrum(Lorenz(), {"x": 1.0, "y": 1.0, "z": 1.0}, n_exponents=4)
    with pytest.raises(ValueError, match="`dt`"):
        lyapunov_spectrum(Lorenz(), {"x": 1.0, "y": 1.0, "z": 1.0}, dt=0.0)
    with pytest.raises(ValueError, match="non-finite"):
        lyapunov_spectrum(FoldNormalForm(r=1.0), {"x": 0.0}, t1=10.0, dt=0.01)  # blows up at t = pi/2


class RotatingMultiplicative(rf.AbstractSDESystem):
    """dX = A X dt + sigma X dB with ONE Brownian motion (scalar noise): X(t) =
    exp((A - sigma^2/2) t + sigma B_t) X0, so the growth rate is max Re eig(A) - sigma^2/2."""

    sigma: float = 0.6

    def vector_field(self, t, y, args):
        return jnp.array([[0.1, 1.0], [-1.0, 0.1]]) @ y

    def diffusion(self, t, y, args):
        return self.sigma * y

    def noise_type(self):
        return "scalar"

    def state_shapes(self):
        return jax.ShapeDtypeStruct((2,), jnp.float64)


def test_sde_system_with_scalar_noise():
    result = sde_lyapunov_exponent(RotatingMultiplicative(), y0=jnp.array([1.0, 0.0]), t1=20.0, dt=1e-3, n_paths=64,
                                   key=2)
    assert abs(result.exponent - (0.1 - 0.18)) < 4 * result.standard_error + 2e-3
    with pytest.raises(ValueError, match="general noise"):
        sde_lyapunov_exponent(RotatingMultiplicative(), y0=jnp.array([1.0, 0.0]), noise="general")
