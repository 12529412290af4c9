"""Soft committee machine ODEs (Saad & Solla 1995): wall time to integrate K = M teacher-student
order-parameter ODEs (eta = 0.5, the full ODE with eta^2 terms, random start at N = 1000) to
t = 1e4, for reducedflow's adaptive solve against the reference codes' method, explicit Euler
with dt = 0.01 (sgoldt/nn2pp), written (a) in NumPy and (b) as a jax lax.scan. All three use the
same Gaussian integrals: the NumPy loop evaluates the formulas of reducedflow.symbolic.gaussian
(one formula, here with a NumPy back end) on the same index gathers as SoftCommittee; the
lax.scan loop calls SoftCommittee.vector_field. Errors are the largest |eps_g - eps_g(ref)| on
200 times in [50, 1e4], the reference being reducedflow.solve at rtol = 1e-12. Compile time is
reported apart from run time. Finally the ODE against online SGD at N = 1000 over the same horizon.

Run: python benchmarks/committee_speed.py [--quick]
"""

import math
import sys
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import reducedflow as rf
from reducedflow.models.committee import SoftCommittee, random_weight_overlaps
from reducedflow.networks.committee import sample_committee, train_committee_sgd
from reducedflow.symbolic import gaussian

from _common import best_of, table

ETA, T1, DT = 0.5, 1e4, 0.01
GRID = np.linspace(50.0, T1, 200)


class _NumpyOps:
    pi = math.pi

    @staticmethod
    def asin(x):
        return np.arcsin(np.clip(x, -1.0, 1.0))

    sqrt = staticmethod(np.sqrt)


def _rows(c):
    return [[c[..., i, j] for j in range(c.shape[-1])] for i in range(c.shape[-2])]


def numpy_field(k, t_mat, eta):
    """The SoftCommittee right-hand side (first layer only, sigma = kappa = 0) in NumPy."""
    m = t_mat.shape[0]
    size = k + m
    s = np.concatenate([-np.ones(k), np.ones(m)])
    students, fields = np.arange(k), np.arange(size)
    i3_index = np.stack(np.meshgrid(students, fields, fields, indexing="ij"), axis=-1)
    i4_index = np.stack(np.meshgrid(students, students, fields, fields, indexing="ij"), axis=-1)

    def field(q, r):
        c = np.block([[q, r], [r.T, t_mat]])
        c3 = c[i3_index[..., :, None], i3_index[..., None, :]]
        c4 = c[i4_index[..., :, None], i4_index[..., None, :]]
        drift = eta * (gaussian._i3(_rows(c3), _NumpyOps) @ s)
        dq = drift[:, :k] + drift[:, :k].T + eta**2 * np.einsum("ikpq,p,q->ik", gaussian._i4(_rows(c4), _NumpyOps), s, s)
        return dq, drift[:, k:]

    return field


def numpy_eg(q, r, t_mat):
    return float(rf_eg(jnp.asarray(q), jnp.asarray(r), jnp.asarray(t_mat)))


def rf_eg(q, r, t_mat):
    from reducedflow.models.committee import committee_generalisation_error

    k, m = r.shape
    return committee_generalisation_error(q, r, t_mat, jnp.ones(k), jnp.ones(m))


def euler_numpy(field, y0, n_steps, record_every):
    q, r = np.array(y0["Q"]), np.array(y0["R"])
    out = []
    for step in range(1, n_steps + 1):
        dq, dr = field(q, r)
        q, r = q + DT * dq, r + DT * dr
        if step % record_every == 0:
            out.append((q.copy(), r.copy()))
    return out


@eqx.filter_jit
def euler_scan(system, y0, n_records, steps_per_record):
    def step(y, _):
        f = system.vector_field(0.0, y, None)
        return jax.tree_util.tree_map(lambda a, b: a + DT * b, y, f), None

    def record(y, _):
        y, _ = jax.lax.scan(step, y, None, length=steps_per_record)
        return y, system.generalisation_error(y)

    return jax.lax.scan(record, y0, None, length=n_records)[1]


def bench(k, full_numpy_steps, scan_records=None):
    system = SoftCommittee(np.eye(k), k, learning_rate=ETA)
    y0 = {key: jnp.asarray(val[0]) for key, val in random_weight_overlaps(k, k, 1000, key=k).items()}
    ref = rf.solve(system, y0, T1, saveat=GRID, rtol=1e-12, atol=1e-14, max_steps=10**6)
    ref_eg = ref.observables["generalisation_error"]

    ours = rf.solve(system, y0, T1, saveat=GRID, rtol=1e-8, atol=1e-10)
    run_ours = best_of(lambda: rf.solve(system, y0, T1, saveat=GRID, rtol=1e-8, atol=1e-10), 2)
    err_ours = np.max(np.abs(ours.observables["generalisation_error"] - ref_eg))

    # (b) lax.scan Euler: records every 50 time units from t = 50; for large K timed on the
    # first `scan_records` records and extrapolated (the cost per step does not depend on t)
    per_record = int(round((GRID[1] - GRID[0]) / DT))
    records = GRID.size if scan_records is None else min(scan_records, GRID.size)
    start = time.perf_counter()
    eg_scan = np.asarray(euler_scan(system, y0, records, per_record))
    first = time.perf_counter() - start
    start = time.perf_counter()
    np.asarray(euler_scan(system, y0, records, per_record))
    run_scan = (time.perf_counter() - start) * GRID.size / records
    err_scan = np.max(np.abs(eg_scan - ref_eg[:records]))

    # (a) NumPy Euler: timed on `full_numpy_steps` steps (all 1e6 if that many), else extrapolated
    field = numpy_field(k, np.eye(k), ETA)
    total = int(round(T1 / DT))
    n = min(total, full_numpy_steps)
    start = time.perf_counter()
    states = euler_numpy(field, y0, n, per_record)
    run_np = (time.perf_counter() - start) * total / n
    if n == total:
        eg_np = np.array([numpy_eg(q, r, np.eye(k)) for q, r in states])
        err_np = f"{np.max(np.abs(eg_np - ref_eg)):.1e}"
    else:
        err_np = "= scan"  # same Euler arithmetic in float64: the scan's error
    return [f"K = M = {k}", ours.stats.steps, f"{ours.stats.compile_seconds:.2f}", f"{run_ours:.3f}", f"{err_ours:.1e}",
            f"{first:.2f}", f"{run_scan:.2f}" + ("" if records == GRID.size else f" (x{GRID.size // records} from t = {GRID[records - 1]:g})"),
            f"{err_scan:.1e}" + ("" if records == GRID.size else " (to that t)"),
            f"{run_np:.1f}" + ("" if n == total else f" (x{total // n} from {n} steps)"), err_np,
            f"{float(ref_eg[-1]):.2e}"]


def sgd_row(n=1000, t_sgd=100.0):
    k = 2
    teacher, students = sample_committee(k, k, n, key=0)
    train_committee_sgd(teacher, students, 1.0, learning_rate=ETA, n_records=10, key=1)  # compile-size warm-up
    start = time.perf_counter()
    run = train_committee_sgd(teacher, students, t_sgd, learning_rate=ETA, n_records=10, key=1)
    sgd_s = (time.perf_counter() - start) * T1 / t_sgd
    system = SoftCommittee(run.teacher_overlaps, k, learning_rate=ETA)
    y0 = run.initial_state(0)
    rf.solve(system, y0, T1, saveat=GRID)
    ode_s = best_of(lambda: rf.solve(system, y0, T1, saveat=GRID), 2)
    return [f"K = M = 2, N = {n}", f"{ode_s:.3f}", f"{sgd_s:.0f} (x{int(T1 / t_sgd)} from t = {t_sgd:g})",
            f"{sgd_s / ode_s:.0f}"]


def main():
    quick = "--quick" in sys.argv
    widths = (2, 3) if quick else (2, 3, 4, 5, 6, 8)
    # K >= 5: the Euler loops (1e6 steps) would take hours here; they are timed on part of the
    # horizon and extrapolated (numpy on 2000 steps, lax.scan on t <= 1000).
    rows = [bench(k, full_numpy_steps=20_000 if k <= 4 else 2_000, scan_records=None if k <= 4 else 20) for k in widths]
    print(table(["system", "steps (ours)", "compile s (ours)", "run s (ours)", "max err (ours)",
                 "first call s (scan, incl. compile)", "run s (scan, Euler)", "max err (Euler)", "run s (numpy Euler)",
                 "max err (numpy)", "eps_g(1e4)"], rows))
    print()
    print(table(["system", "ODE s (rf.solve)", "online SGD s", "ratio"], [sgd_row()]))


if __name__ == "__main__":
    main()
