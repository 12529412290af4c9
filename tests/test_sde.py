"""Itô SDE systems: diffrax paths, the fast Euler–Maruyama ensemble, and the collapse toys,
against closed-form exponents and stationary moments (tolerances: Monte-Carlo standard errors
plus the O(h) Euler–Maruyama bias)."""

import diffrax as dfx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import reducedflow as rf
from reducedflow import AbstractSDESystem, euler_maruyama
from reducedflow.models.collapse import GeometricBrownianMotion, IsotropicMultiplicativeNoise, QuarticWell


def em_bias(a, b, h):
    """First-order Euler–Maruyama bias of the GBM exponent (theory note §13)."""
    return h * (-a**2 / 2 + a * b**2 - 3 * b**4 / 4)


def test_gbm_exponent_in_log_coordinates_is_the_ito_one():
    # EM on log|X| of a GBM is exact in distribution: no bias, only Monte-Carlo error.
    a, b, T = 0.5, 1.0, 20.0
    traj = euler_maruyama(GeometricBrownianMotion(a, b), np.ones(1), T, dt=0.05, key=0, n_paths=4000,
                          coordinates="log", saveat=[0.0, T])
    rates = traj.observables["log_abs_state"][:, -1, 0] / T
    se = rates.std() / np.sqrt(rates.size)
    assert abs(rates.mean() - (a - b**2 / 2)) < 4 * se
    assert abs(rates.mean() - a) > 50 * se  # the Stratonovich answer is far away
    assert abs(rates.std() - b / np.sqrt(T)) < 0.05 * b / np.sqrt(T)


@pytest.mark.parametrize("solver", [dfx.Euler(), dfx.ItoMilstein(), dfx.Heun()], ids=lambda s: type(s).__name__)
def test_diffrax_solvers_give_the_ito_exponent(solver):
    # Heun converges to Stratonovich: solve adds the drift correction, so all three agree.
    a, b, T, h = 0.5, 1.0, 10.0, 0.01
    traj = rf.solve(GeometricBrownianMotion(a, b), np.ones(1), T, key=1, dt0=h, n_paths=1000,
                    solver=solver, brownian="unsafe", saveat=[0.0, T])
    rates = np.log(np.abs(traj.ys[:, -1, 0])) / T
    se = rates.std() / np.sqrt(rates.size)
    assert abs(rates.mean() - (a - b**2 / 2)) < 4 * se + abs(em_bias(a, b, h))
    assert traj.stats.steps == round(T / h)


def test_uncorrected_stratonovich_solver_gives_the_stratonovich_exponent():
    # The witness that the correction matters: raw diffrax Heun on the Itô coefficients.
    a, b, T, n = 0.5, 1.0, 10.0, 1000
    keys = jax.random.split(jax.random.PRNGKey(2), n)

    def one(key):
        bm = dfx.UnsafeBrownianPath(shape=(1,), key=key)
        terms = dfx.MultiTerm(dfx.ODETerm(lambda t, y, _: a * y), dfx.ControlTerm(lambda t, y, _: b * y[:, None], bm))
        return dfx.diffeqsolve(terms, dfx.Heun(), 0.0, T, 0.01, jnp.ones(1), saveat=dfx.SaveAt(t1=True),
                               adjoint=dfx.ForwardMode()).ys[-1, 0]

    rates = np.log(np.abs(np.asarray(jax.jit(jax.vmap(one))(keys)))) / T
    se = rates.std() / np.sqrt(n)
    assert abs(rates.mean() - a) < 5 * se
    assert abs(rates.mean() - (a - b**2 / 2)) > 20 * se


def test_fast_ensemble_and_diffrax_agree_in_distribution():
    system = QuarticWell(1.5, 1.0)
    kw = dict(n_paths=2000, saveat=[0.5, 2.0])
    fast = euler_maruyama(system, np.full(1, 0.3), 2.0, dt=0.01, key=3, **kw).ys[:, :, 0]
    slow = rf.solve(system, np.full(1, 0.3), 2.0, key=4, dt0=0.01, brownian="unsafe", **kw).ys[:, :, 0]
    for j in range(2):
        diff = fast[:, j].mean() - slow[:, j].mean()
        se = np.sqrt(fast[:, j].var() / fast.shape[0] + slow[:, j].var() / slow.shape[0])
        assert abs(diff) < 4 * se
        assert abs(fast[:, j].var() / slow[:, j].var() - 1) < 0.15


def test_fast_ensemble_is_reproducible_and_independent_of_save_times():
    system = QuarticWell(1.5, 1.0)
    one = euler_maruyama(system, np.full(1, 0.3), 1.0, dt=0.01, key=5, n_paths=8, saveat=[0.5, 1.0])
    two = euler_maruyama(system, np.full(1, 0.3), 1.0, dt=0.01, key=5, n_paths=8, saveat=np.linspace(0, 1, 11))
    np.testing.assert_array_equal(one.ys[:, -1], two.ys[:, -1])
    np.testing.assert_array_equal(one.ys[:, 0], two.ys[:, 5])
    other = euler_maruyama(system, np.full(1, 0.3), 1.0, dt=0.01, key=6, n_paths=8, saveat=[0.5, 1.0])
    assert not np.allclose(one.ys, other.ys)


def test_quartic_well_collapses_iff_noise_exceeds_sqrt_2mu():
    mu = 1.5  # threshold sqrt(3) = 1.732
    noises = np.array([1.0, 1.4, 2.2, 2.5])  # exponents mu - zeta^2/2 = 1, 0.52, -0.92, -1.63
    batch = jax.vmap(lambda z: QuarticWell(mu, z))(jnp.asarray(noises))
    traj = euler_maruyama(batch, np.ones(1), 150.0, dt=0.005, key=7, n_paths=200, coordinates="log",
                          saveat=[150.0], over_systems=True)
    collapsed = np.mean(traj.observables["log_abs_state"][:, :, -1, 0] < np.log(1e-15), axis=1)
    np.testing.assert_array_equal(collapsed, [0.0, 0.0, 1.0, 1.0])


def test_quartic_well_stationary_moments():
    system = QuarticWell(1.5, 1.0)  # E th^2 = 1, E th^4 = 2
    traj = euler_maruyama(system, np.ones(1), 400.0, dt=0.002, key=8, n_paths=400, saveat=np.linspace(40, 400, 181))
    th2 = traj.ys[:, :, 0] ** 2
    per_path2, per_path4 = th2.mean(axis=1), (th2**2).mean(axis=1)  # paths are independent
    m2, m4 = system.stationary_moments()
    se2 = per_path2.std() / np.sqrt(per_path2.size)
    se4 = per_path4.std() / np.sqrt(per_path4.size)
    assert abs(per_path2.mean() - float(m2)) < 4 * se2 + 0.01
    assert abs(per_path4.mean() - float(m4)) < 4 * se4 + 0.03
    # the density-free identity (2 mu + zeta^2) E th^2 = 2 E th^4, from d(th^2) being stationary
    assert abs((2 * 1.5 + 1.0) * per_path2.mean() - 2 * per_path4.mean()) < 0.1


@pytest.mark.parametrize("k", [1, 2, 3])
def test_isotropic_noise_attracts_only_in_one_dimension(k):
    system = IsotropicMultiplicativeNoise(0.1, 0.5, k)
    T = 40.0
    traj = euler_maruyama(system, np.ones(k), T, dt=0.004, key=9, n_paths=300, renormalise=True, saveat=[T])
    rates = traj.observables["log_norm"][:, -1] / T
    se = rates.std() / np.sqrt(rates.size)
    expected = float(system.lyapunov_exponent())  # -0.225, -0.1, +0.025
    assert abs(rates.mean() - expected) < 4 * se + 0.01  # + O(h) bias (about 1.3 h at k = 3)
    np.testing.assert_allclose(np.linalg.norm(traj.ys[:, -1], axis=-1), 1.0, rtol=1e-12)


class _WrongShapeDiffusion(AbstractSDESystem):
    def vector_field(self, t, y, args):
        return -y

    def diffusion(self, t, y, args):
        return y  # 'general' noise needs an (n, k) matrix

    def state_shapes(self):
        return jax.ShapeDtypeStruct((2,), jnp.float64)


def test_bad_sde_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="`noise`"):
        QuarticWell(1.5, -1.0)
    with pytest.raises(ValueError, match=r"\(n, k\)"):
        euler_maruyama(_WrongShapeDiffusion(), np.ones(2), 1.0, dt=0.1, key=0)
    with pytest.raises(ValueError, match="ItoMilstein"):
        rf.solve(IsotropicMultiplicativeNoise(0.1, 0.5, 2), np.ones(2), 1.0, key=0, dt0=0.1, solver=dfx.ItoMilstein())
    with pytest.raises(ValueError, match="`solver`"):
        rf.solve(QuarticWell(1.5, 1.0), np.ones(1), 1.0, key=0, dt0=0.1, solver=dfx.Tsit5())
    with pytest.raises(ValueError, match="`key` and `dt0`"):
        rf.solve(QuarticWell(1.5, 1.0), np.ones(1), 1.0)
    with pytest.raises(ValueError, match="`dt`"):
        euler_maruyama(QuarticWell(1.5, 1.0), np.ones(1), 1.0, dt=-0.1, key=0)
    with pytest.raises(ValueError, match="renormalise"):
        euler_maruyama(QuarticWell(1.5, 1.0), np.ones(1), 1.0, dt=0.1, key=0, renormalise=True)
    with pytest.raises(ValueError, match="`y0`"):
        euler_maruyama(QuarticWell(1.5, 1.0), np.zeros(1), 1.0, dt=0.1, key=0, coordinates="log")
