"""Fixed point z* and starvation matrix dz*/d(s^2) of the NTK cross-entropy dynamics
(Pezeshki et al. 2021, arXiv:2011.09468): damped Newton on the convex objective in z plus the
implicit-function theorem (``FeatureResponseFlow.fixed_point`` / ``starvation_matrix``), against the
approach of the authors' public code (``Figure_6/toy_fig_6.py``): plain gradient steps on the
dual (C/2) a^T K a - sum H(a), a clipped after each step, from a = 1e-8; the starvation matrix then
by central finite differences of such runs (the code has no derivative; this is what a user of it
would do).

Equal accuracy: the dual runs get the smallest power-of-two number of steps for which z* has
relative error <= 1e-8 and the finite-difference starvation matrix relative error <= 1e-4
(against Newton + IFT, whose residual is at rounding). Dual GD is jitted JAX (lax.fori_loop,
float64); compile time is reported separately. Step sizes: the code's 3e-6, and the largest
power-of-two fraction of it that stays stable (a tuned user).

Run: python benchmarks/starvation_fixed_point.py
"""

import time

import jax
import jax.numpy as jnp
import numpy as np

import reducedflow as rf  # noqa: F401  (float64)
from reducedflow.models.ntk_cross_entropy import FeatureResponseFlow, two_feature_system

from _common import best_of, table

Z_TOL, M_TOL, FD_STEP = 1e-8, 1e-4, 1e-3


@jax.jit
def _dual_gd(u, s2, lam, lr, steps):
    coupling = (u * (s2 / lam)) @ u.T

    def step(_, a):
        grad = coupling @ a + jnp.log(a) - jnp.log1p(-a)
        return jnp.clip(a - lr * grad, 1e-50, 1.0 - 1e-15)

    alpha = jax.lax.fori_loop(0, steps, step, jnp.full(u.shape[0], 1e-8))
    return (s2 / lam) * (u.T @ alpha)


def dual_fixed_point(u, s, lam, lr, steps):
    return np.asarray(_dual_gd(jnp.asarray(u), jnp.asarray(s) ** 2, lam, lr, steps))


def dual_starvation(u, s, lam, lr, steps):
    """z* and central finite differences dz*/d(s_i^2) from dual GD runs (2k + 1 runs)."""
    s2 = s**2
    z = dual_fixed_point(u, s, lam, lr, steps)
    matrix = np.empty((s.size, s.size))
    for i in range(s.size):
        h = FD_STEP * s2[i]
        up, down = s2.copy(), s2.copy()
        up[i] += h
        down[i] -= h
        matrix[:, i] = (dual_fixed_point(u, np.sqrt(up), lam, lr, steps) - dual_fixed_point(u, np.sqrt(down), lam, lr, steps)) / (2 * h)
    return z, matrix


def rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def bench(name, system, lr):
    u, s, lam = np.asarray(system.left_singular_vectors), np.asarray(system.singular_values), float(system.weight_decay)
    z_ref = system.fixed_point()
    m_ref = system.starvation_matrix(z_ref)
    newton = best_of(lambda: system.starvation_matrix(system.fixed_point()), 5)
    start = time.perf_counter()
    dual_fixed_point(u, s, lam, lr, 10)  # compile (steps is traced: one compilation for every count)
    compile_s = time.perf_counter() - start
    steps, z_err, m_err = 16, np.inf, np.inf
    while steps <= 2**24:
        z, m = dual_starvation(u, s, lam, lr, steps)
        z_err, m_err = rel(z, z_ref), rel(m, m_ref)
        if not np.isfinite(z_err):
            return [name, f"{lr:.2g}", "diverged", "", "", "", "", ""]
        if z_err <= Z_TOL and m_err <= M_TOL:
            break
        steps *= 2
    if not (z_err <= Z_TOL and m_err <= M_TOL):
        return [name, f"{lr:.2g}", f"> {2**24}", f"{z_err:.1e}", f"{m_err:.1e}", f"{newton * 1e3:.3f}", "", ""]
    dual = best_of(lambda: dual_starvation(u, s, lam, lr, steps), 2)
    return [name, f"{lr:.2g}", str(steps), f"{z_err:.1e}", f"{m_err:.1e}", f"{newton * 1e3:.3f}",
            f"{dual * 1e3:.1f} (+{compile_s:.2f} s compile)", f"{dual / newton:.0f}"]


def main():
    rows = []
    for s1 in (3.0, 6.0):
        system = two_feature_system(s1, 2.0, 0.5, weight_decay=0.01)
        for lr in (3e-6, 3e-6 * 16):
            rows.append(bench(f"toy k=2, s1={s1:g}", system, lr))
    rng = np.random.default_rng(0)
    u, _ = np.linalg.qr(rng.standard_normal((10, 10)))
    u = u * np.where(u.sum(axis=0) < 0, -1, 1)
    system = FeatureResponseFlow(u, np.linspace(3.0, 1.0, 10), weight_decay=0.01)
    for lr in (3e-6, 3e-6 * 16):
        rows.append(bench("random k=10", system, lr))
    print(table(["problem", "dual lr", "dual GD steps", "z* rel err", "dz*/ds^2 rel err", "Newton+IFT (ms)",
                 "dual GD + FD (ms)", "time ratio"], rows))


if __name__ == "__main__":
    main()
