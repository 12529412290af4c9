"""Claims of Saad & Solla, "On-line learning in soft committee machines", PRE 52, 4225 (1995)
and PRL 74, 4337 (1995), with the finite-N check of Goldt et al., NeurIPS 2019,
arXiv:1906.08632 (as stated in shared/theory/committee.md), checked on
``reducedflow.models.committee.SoftCommittee``."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from ._registry import claim, compare

PAPER = "saad_solla1995"


@claim(PAPER, "plateau-height",
       "For K = M, T = I, v = A = 1 and eta -> 0 the symmetric point Q_ik = 1/(2K-1), R_in = 1/sqrt(K(2K-1)) "
       "is a fixed point and its error is eps_plateau = (K/pi)(pi/6 - K asin(1/(2K))).")
def _plateau_height():
    from ..models.committee import SoftCommittee, _vector_field, plateau_fixed_point, plateau_generalisation_error

    measured, expected, residuals = {}, {}, []
    for k in (2, 3, 4):
        system = SoftCommittee(np.eye(k), k, sgd_noise_terms=False)
        point = {key: jnp.asarray(val) for key, val in plateau_fixed_point(k).items()}
        rhs = _vector_field(system, point)
        residuals.append(max(float(jnp.abs(rhs["Q"]).max()), float(jnp.abs(rhs["R"]).max())))
        measured[f"eps_g at the fixed point, K={k}"] = float(system.generalisation_error(point))
        expected[f"eps_g at the fixed point, K={k}"] = plateau_generalisation_error(k)
    measured_, expected_, tol, passed, _ = compare(measured, expected, rtol=1e-12)
    note = f"max |RHS| at the closed-form point = {max(residuals):.1e} (required < 1e-13)"
    return measured_, expected_, tol, passed and max(residuals) < 1e-13, note


@claim(PAPER, "plateau-escape-rate",
       "The symmetric plateau has one unstable eigenvalue, of multiplicity (K-1)^2, equal to "
       "eta 2K / (pi sqrt(2K-1) (2K+1)^{3/2}) in the eta -> 0 limit.")
def _escape_rate():
    from ..models.committee import SoftCommittee, plateau_escape_rate, plateau_fixed_point

    measured, expected = {}, {}
    multiplicity_ok = True
    for k in (2, 3, 4):
        system = SoftCommittee(np.eye(k), k, learning_rate=1.0, sgd_noise_terms=False)
        point = {key: jnp.asarray(val) for key, val in plateau_fixed_point(k).items()}
        eig = np.linalg.eigvals(np.asarray(system.jacobian(point))).real
        top = float(eig.max())
        multiplicity_ok &= int(np.sum(np.abs(eig - top) < 1e-8)) == (k - 1) ** 2
        measured[f"lambda_esc / eta, K={k}"] = top
        expected[f"lambda_esc / eta, K={k}"] = plateau_escape_rate(k)
    measured, expected, tol, passed, _ = compare(measured, expected, rtol=1e-9)
    return measured, expected, tol, passed and multiplicity_ok, f"multiplicity (K-1)^2 found: {multiplicity_ok}"


@claim(PAPER, "max-learning-rate-k1",
       "For K = M = 1 (eta^2 terms on) the perfect solution is stable for eta < eta_max = pi sqrt(5/3).")
def _eta_max():
    from ..models.committee import max_learning_rate

    return compare({"eta_max": max_learning_rate(1)}, {"eta_max": math.pi * math.sqrt(5.0 / 3.0)}, rtol=1e-9,
                   note="bisection on the top real eigenvalue of the AD Jacobian at R = Q = T = 1")


@claim(PAPER, "finite-n-agreement",
       "Online SGD of a K = M = 2 committee at N = 500 (t = steps/N, fresh samples) follows the ODE: "
       "the RMS gap in eps_g over 4 seeds and t <= 4 is below eps_g(0) / sqrt(N) (O(N^-1/2) fluctuations).")
def _finite_n():
    import reducedflow
    from ..models.committee import SoftCommittee
    from ..networks.committee import sample_committee, train_committee_sgd

    teacher, students = sample_committee(2, 2, 500, key=1, seeds=4, overlap=[[0.6, 0.1], [0.0, 0.3]], scale=0.5)
    run = train_committee_sgd(teacher, students, 4.0, learning_rate=1.0, n_records=8, key=2)
    system = SoftCommittee(run.teacher_overlaps, 2, learning_rate=1.0)
    gaps = []
    for seed in range(students.shape[0]):
        traj = reducedflow.solve(system, run.initial_state(seed), float(run.times[-1]), saveat=run.times)
        gaps.append(np.asarray(traj.observables["generalisation_error"]) - run.generalisation_error[seed])
    gap = float(np.sqrt(np.mean(np.square(gaps))))
    bound = float(run.generalisation_error[:, 0].mean()) / math.sqrt(run.dimension)
    return ({"RMS gap in eps_g": gap}, {"RMS gap in eps_g": 0.0}, bound, gap < bound,
            f"absolute criterion: gap < eps_g(0)/sqrt(N) = {bound:.3g}; final eps_g = "
            f"{float(run.generalisation_error[:, -1].mean()):.4g}")


@claim(PAPER, "noise-floor",
       "With output noise sigma (K = M = 2, eta = 0.5, first layer only) the ODE settles at a non-zero error equal "
       "to the linear response around the perfect solution, -grad(eps_g) . J^-1 (eta^2 sigma^2 J2), up to "
       "O(sigma^2) relative corrections; for eta -> 0 it is eta sigma^2 K / (2 sqrt3 pi) (Goldt et al. 2019).")
def _noise_floor():
    import reducedflow
    from ..models.committee import SoftCommittee, noise_floor, noise_floor_small_learning_rate, perfect_solution

    measured, expected = {}, {}
    for sigma in (0.05, 0.1):
        system = SoftCommittee(np.eye(2), 2, learning_rate=0.5, noise=sigma)
        traj = reducedflow.solve(system, perfect_solution(system), 3000.0, saveat=np.array([3000.0]),
                                 rtol=1e-10, atol=1e-13)
        measured[f"ODE eps_g(t=3000), sigma={sigma}"] = float(traj.observables["generalisation_error"][-1])
        expected[f"ODE eps_g(t=3000), sigma={sigma}"] = noise_floor(system)
    small = SoftCommittee(np.eye(2), 2, learning_rate=1e-3, noise=0.1)
    ratio = noise_floor(small) / noise_floor_small_learning_rate(2, 1e-3, 0.1)
    measured_, expected_, tol, passed, _ = compare(measured, expected, rtol=0.02)
    return (measured_, expected_, tol, passed and abs(ratio - 1) < 1e-3,
            f"linear response / (eta sigma^2 K/(2 sqrt3 pi)) at eta = 1e-3: {ratio:.6f} (required within 1e-3 of 1)")


@claim(PAPER, "escape-time-log-n",
       "From random initial weights (overlaps R ~ N^-1/2) the symmetric plateau is left after a time "
       "t_esc = a + ln(N) / (2 lambda_esc) (K = M = 2, eta = 0.5, lambda_esc the unstable eigenvalue of the "
       "plateau at this eta): exp(lambda_esc t_esc) grows like N^(1/2).")
def _escape_log_n():
    from ..models.committee import escape_times_from_random_weights

    study = escape_times_from_random_weights(2, 0.5, (1e4, 1e5, 1e6, 1e7), seeds=64, key=0)
    fit = study.fit
    b = fit.exponent / study.escape_rate
    low, high = fit.interval
    passed = abs(fit.exponent - 0.5) < 0.1  # 20%: a 1/lambda (not 1/(2 lambda)) law gives 1.0
    note = (f"fit t_esc = a + b ln N: b = {b:.4g} (1/(2 lambda) = {0.5 / study.escape_rate:.4g}; with the eta -> 0 "
            f"rate {0.5 / study.closed_form_rate:.4g}); exponent 95% CI [{low:.3f}, {high:.3f}]; mean t_esc per N "
            f"{np.round(study.mean_times, 1).tolist()}")
    return {"exponent of exp(lambda t_esc) in N": fit.exponent}, {"exponent of exp(lambda t_esc) in N": 0.5}, 0.1, passed, note
