"""The noise floor of online SGD in a soft committee machine with output noise (Goldt et al.
2019): linear response around the perfect solution against the long-time ODE, its small-eta
closed form, and online SGD at N = 500."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

import reducedflow
from reducedflow.models.committee import (
    SoftCommittee,
    noise_floor,
    noise_floor_small_learning_rate,
    perfect_solution,
)
from reducedflow.networks.committee import train_committee_sgd


def _stationary_error(system, t1=3000.0):
    """eps_g of the ODE after a long time from the perfect solution (slowest rate ~ 0.02 eta)."""
    traj = reducedflow.solve(system, perfect_solution(system), t1, saveat=np.array([0.5 * t1, t1]),
                             rtol=1e-10, atol=1e-13)
    eg = np.asarray(traj.observables["generalisation_error"])
    assert abs(eg[1] - eg[0]) < 1e-5 * eg[1]  # stationary
    return float(eg[1])


def test_linear_response_matches_the_long_time_ode():
    k, eta = 2, 0.5
    deviations = []
    for sigma in (0.05, 0.1):
        system = SoftCommittee(np.eye(k), k, learning_rate=eta, noise=sigma)
        predicted, measured = noise_floor(system), _stationary_error(system)
        deviations.append(measured / predicted - 1)
        assert abs(deviations[-1]) < 0.01 * (sigma / 0.05) ** 2
    # the relative error is O(sigma^2): halving sigma divides it by 4
    assert 3.5 < deviations[1] / deviations[0] < 4.5


def test_noise_floor_small_learning_rate_limit():
    """eps* / (eta sigma^2 K / (2 sqrt3 pi)) -> 1 as eta -> 0, with an O(eta) correction."""
    for k in (1, 2):
        gaps = []
        for eta in (1e-3, 1e-2):
            system = SoftCommittee(np.eye(k), k, learning_rate=eta, noise=0.1)
            gaps.append(noise_floor(system) / noise_floor_small_learning_rate(k, eta, 0.1) - 1)
        assert 0 < gaps[0] < 2e-3
        assert 8 < gaps[1] / gaps[0] < 12  # linear in eta


def test_noise_floor_of_a_general_teacher_matches_the_ode():
    """A correlated teacher with unequal second-layer weights (K = M = 2, first layer only)."""
    t = np.array([[1.0, 0.3], [0.3, 0.8]])
    system = SoftCommittee(t, 2, teacher_second_layer=np.array([1.0, 0.6]), learning_rate=0.7, noise=0.05)
    assert abs(_stationary_error(system, 8000.0) / noise_floor(system) - 1) < 0.01


def test_noise_floor_rejects_unsupported_systems():
    with pytest.raises(ValueError, match="K = M"):
        noise_floor(SoftCommittee(np.eye(2), 3, noise=0.1))
    with pytest.raises(ValueError, match="weight_decay"):
        noise_floor(SoftCommittee(np.eye(2), 2, noise=0.1, weight_decay=0.01))
    with pytest.raises(ValueError, match="noise"):
        noise_floor_small_learning_rate(2, 0.5, -1.0)


def _stationary_weights(state, dimension, seeds, rng):
    """Teacher (M, N) with T = I and student weights (S, K, N) whose overlaps are exactly the
    given (Q, R): w = R w* + L u, u orthonormal (x sqrt N) and orthogonal to the teacher,
    L L^T = Q - R R^T."""
    q, r = np.asarray(state["Q"]), np.asarray(state["R"])
    k, m = r.shape
    frames = [np.linalg.qr(rng.standard_normal((dimension, m + k)))[0].T * math.sqrt(dimension) for _ in range(seeds)]
    teacher = frames[0][:m]
    lower = np.linalg.cholesky(q - r @ r.T)
    students = []
    for frame in frames:
        rest = frame[m:] - (frame[m:] @ teacher.T / dimension) @ teacher  # orthogonal to the shared teacher
        rest = np.linalg.qr(rest.T)[0].T * math.sqrt(dimension)
        students.append(r @ teacher + lower @ rest)
    return teacher, np.stack(students)


def test_online_sgd_reaches_the_ode_noise_floor():
    """Online SGD at N = 500 started on the ODE's stationary state stays at its error:
    time-averaged eps_g within 3 standard errors (over seeds) of the ODE's fixed point."""
    k, eta, sigma, n = 2, 1.0, 0.5, 500
    system = SoftCommittee(np.eye(k), k, learning_rate=eta, noise=sigma)
    traj = reducedflow.solve(system, perfect_solution(system), 3000.0, saveat=np.array([3000.0]), rtol=1e-10, atol=1e-13)
    stationary = {key: np.asarray(val)[-1] for key, val in traj.ys.items()}
    ode_error = float(traj.observables["generalisation_error"][-1])
    teacher, students = _stationary_weights(stationary, n, 5, np.random.default_rng(0))
    run = train_committee_sgd(teacher, students, 15.0, learning_rate=eta, noise=sigma, n_records=40, key=4)
    assert abs(run.generalisation_error[:, 0].mean() - ode_error) < 1e-10  # started on the fixed point
    per_seed = run.generalisation_error[:, 1:].mean(axis=1)
    stderr = per_seed.std(ddof=1) / math.sqrt(per_seed.size)
    print(f"SGD floor {per_seed.mean():.5f} +- {stderr:.5f}, ODE {ode_error:.5f}")
    assert abs(per_seed.mean() - ode_error) < 3 * stderr + 1e-3 * ode_error, (per_seed, ode_error, stderr)
    assert stderr < 0.05 * ode_error  # the comparison resolves the floor
    # and the floor is far from the noiseless value 0 and from the linear response at this large sigma
    assert abs(noise_floor(system) / ode_error - 1) > 0.1
