"""(b) Warm single-solve time of a linear-mode system and of the two-layer matrix flow against
scipy LSODA with a hand-written numpy right-hand side (what a user would write today), same
tolerances and output grid; (c) compile time, separately; (d) a 1000-point parameter sweep over
singular values: one jax.vmap-ed `solve_many` call against a loop of scipy LSODA solves.

Run: python benchmarks/linear_modes_speed.py
"""

import time

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from scipy.integrate import solve_ivp

import reducedflow as rf
from reducedflow.models.linear_modes import BalancedModes, TwoLayerLinearFlow

from _common import best_of, table

RTOL, ATOL = 1e-8, 1e-10
T1 = 20.0


def scipy_lsoda(rhs, y0, ts):
    out = solve_ivp(rhs, (0.0, ts[-1]), y0, method="LSODA", t_eval=ts, rtol=RTOL, atol=ATOL)
    assert out.success
    return out.y.T


def bench_modes():
    s = np.array([3.0, 2.0, 1.0, 0.5, 0.25])
    u0 = np.full(s.size, 1e-3)
    system = BalancedModes(s)
    ts = rf.LogTimes(200).times(0.0, T1)
    first = rf.solve(system, u0, T1, saveat=ts, rtol=RTOL, atol=ATOL)
    ours = best_of(lambda: rf.solve(system, u0, T1, saveat=ts, rtol=RTOL, atol=ATOL), 5)
    rhs = lambda t, u: 2 * u * (s - u)
    ref = best_of(lambda: scipy_lsoda(rhs, u0, ts), 5)
    exact = np.asarray(system.closed_form(ts, u0))
    err_ours = np.max(np.abs(first.ys - exact) / exact)
    err_ref = np.max(np.abs(scipy_lsoda(rhs, u0, ts) - exact) / exact)
    return ["BalancedModes (5 modes)", first.stats.steps, f"{first.stats.compile_seconds:.2f}",
            f"{ours * 1e3:.2f}", f"{ref * 1e3:.2f}", f"{ref / ours:.1f}", f"{err_ours:.1e}", f"{err_ref:.1e}"]


def bench_matrix_flow(n1=8, n2=8, n3=6):
    rng = np.random.default_rng(0)
    u, _ = np.linalg.qr(rng.normal(size=(n3, n3)))
    v, _ = np.linalg.qr(rng.normal(size=(n1, n1)))
    s = np.linspace(3.0, 0.5, min(n1, n3))
    syx = (u[:, : s.size] * s) @ v[:, : s.size].T
    system = TwoLayerLinearFlow(syx, hidden_width=n2)
    y0 = system.balanced_init(np.full(min(n1, n2, n3), 1e-2), key=1)
    ts = rf.LogTimes(200).times(0.0, T1)
    first = rf.solve(system, y0, T1, saveat=ts, rtol=RTOL, atol=ATOL)
    ours = best_of(lambda: rf.solve(system, y0, T1, saveat=ts, rtol=RTOL, atol=ATOL), 5)

    def rhs(t, flat):
        w1 = flat[: n2 * n1].reshape(n2, n1)
        w2 = flat[n2 * n1 :].reshape(n3, n2)
        e = syx - w2 @ w1
        return np.concatenate([(w2.T @ e).ravel(), (e @ w1.T).ravel()])

    flat0 = np.concatenate([np.ravel(y0["first_layer"]), np.ravel(y0["second_layer"])])
    ref = best_of(lambda: scipy_lsoda(rhs, flat0, ts), 3)
    exact = np.asarray(system.riccati_solution(ts, y0))
    ours_map = first.observables["network_map"]
    ref_flat = scipy_lsoda(rhs, flat0, ts)
    ref_map = np.einsum("tij,tjk->tik", ref_flat[:, n2 * n1 :].reshape(-1, n3, n2), ref_flat[:, : n2 * n1].reshape(-1, n2, n1))
    scale = np.linalg.norm(syx)
    err_ours = np.max(np.abs(ours_map - exact)) / scale
    err_ref = np.max(np.abs(ref_map - exact)) / scale
    return [f"TwoLayerLinearFlow ({n2}x{n1}, {n3}x{n2})", first.stats.steps, f"{first.stats.compile_seconds:.2f}",
            f"{ours * 1e3:.2f}", f"{ref * 1e3:.2f}", f"{ref / ours:.1f}", f"{err_ours:.1e}", f"{err_ref:.1e}"]


def bench_sweep(n_points=1000):
    base = np.array([3.0, 2.0, 1.0])
    scales = np.linspace(0.2, 2.0, n_points)
    svals = scales[:, None] * base
    u0 = np.full(3, 1e-3)
    ts = rf.LinearTimes(50).times(0.0, T1)
    systems = eqx.filter_vmap(BalancedModes)(jnp.asarray(svals))
    first = rf.solve_many(systems, u0, T1, saveat=ts, rtol=RTOL, atol=ATOL)
    ours = best_of(lambda: rf.solve_many(systems, u0, T1, saveat=ts, rtol=RTOL, atol=ATOL), 3)

    def loop():
        return np.stack([scipy_lsoda(lambda t, u, s=s: 2 * u * (s - u), u0, ts) for s in svals])

    start = time.perf_counter()
    ref_ys = loop()
    ref = time.perf_counter() - start
    exact = np.stack([np.asarray(BalancedModes(s).closed_form(ts, u0)) for s in svals])
    err_ours = np.max(np.abs(first.ys - exact) / exact)
    err_ref = np.max(np.abs(ref_ys - exact) / exact)
    return [f"sweep: {n_points} x BalancedModes (3 modes)", first.stats.steps, f"{first.stats.compile_seconds:.2f}",
            f"{ours * 1e3:.1f}", f"{ref * 1e3:.1f}", f"{ref / ours:.1f}", f"{err_ours:.1e}", f"{err_ref:.1e}"]


def main():
    rows = [bench_modes(), bench_matrix_flow(), bench_sweep()]
    print(table(["system", "steps (max)", "compile s", "reducedflow run ms", "scipy LSODA ms",
                 "speed-up", "max rel. error (ours)", "max rel. error (LSODA)"], rows))


if __name__ == "__main__":
    main()
