"""Symbolic layer: time to derive + compile a system against the time to solve it, and the
evaluation time of a generated (sympy -> lambdify -> jax.numpy) vector field against a
hand-written JAX one for the same system.

System: the Saad-Solla soft committee machine, g = erf(z/sqrt2), K students, M = K teachers,
free first layer, fixed second layer (v = A = 1), population gradient flow (the O(eta) part of
the committee ODEs): dR_in/dt = sum_p s_p I3(i, n, p), dQ_ik/dt = sum_p s_p [I3(i, k, p) + I3(k, i, p)],
s = (-1 for students, +1 for teachers). The hand-written field vectorises I3 over index triples.

Run: python benchmarks/symbolic_speed.py
"""

import time

import jax
import jax.numpy as jnp
import numpy as np

import reducedflow as rf
from reducedflow.derive import two_layer
from reducedflow.symbolic.gaussian import committee_i3

from _common import best_of, table


def hand_written(k):
    iu = np.triu_indices(k)
    signs = jnp.concatenate([-jnp.ones(k), jnp.ones(k)])

    def from_parts(q, r):
        cov = jnp.block([[q, r], [r.T, jnp.eye(k)]])
        n = 2 * k
        a, b, c = jnp.meshgrid(jnp.arange(n), jnp.arange(n), jnp.arange(n), indexing="ij")
        idx = jnp.stack([a, b, c], -1)
        sub = cov[idx[..., :, None], idx[..., None, :]]  # (n, n, n, 3, 3)
        i3 = committee_i3(sub)  # I3(a, b, c)
        drive = jnp.einsum("abc,c->ab", i3, signs)  # sum_p s_p I3(a, b, p)
        dr = drive[:k, k:]
        dq = drive[:k, :k] + drive[:k, :k].T
        return dq, dr

    return from_parts, iu


def main():
    rows_speed, rows_eval = [], []
    for k in (2, 3):
        start = time.perf_counter()
        system = two_layer("erf_sqrt2", width=k, teacher_width=k, first_layer="free", second_layer="fixed",
                           normalisation="sum")
        derive_s = time.perf_counter() - start
        names = system.state_names
        rng = np.random.default_rng(0)
        w = rng.standard_normal((k, 50)) / np.sqrt(50) * 0.3
        t = np.linalg.qr(rng.standard_normal((50, k)))[0].T
        q, r = w @ w.T, w @ t.T
        values = {f"Q_{i + 1}{j + 1}": q[i, j] for i in range(k) for j in range(i, k)}
        values.update({f"R_{i + 1}{n + 1}": r[i, n] for i in range(k) for n in range(k)})
        y0 = system.pack(values)
        field = jax.jit(lambda y: system.vector_field(0.0, y, None))
        start = time.perf_counter()
        field(y0).block_until_ready()
        compile_s = time.perf_counter() - start
        saveat = np.linspace(0.0, 50.0, 51)
        start = time.perf_counter()
        rf.solve(system, y0, 50.0, saveat=saveat, rtol=1e-8, atol=1e-10)
        first_solve = time.perf_counter() - start
        solve_s = best_of(lambda: rf.solve(system, y0, 50.0, saveat=saveat, rtol=1e-8, atol=1e-10), 3)
        rows_speed.append([k, len(names), f"{derive_s:.2f}", f"{compile_s:.2f}", f"{first_solve:.2f}", f"{solve_s:.3f}"])

        from_parts, _ = hand_written(k)

        def hand(y):
            vals = dict(zip(names, [y[i] for i in range(len(names))]))
            qm = jnp.array([[vals[f"Q_{min(i, j) + 1}{max(i, j) + 1}"] for j in range(k)] for i in range(k)])
            rm = jnp.array([[vals[f"R_{i + 1}{n + 1}"] for n in range(k)] for i in range(k)])
            dq, dr = from_parts(qm, rm)
            out = {f"Q_{i + 1}{j + 1}": dq[i, j] for i in range(k) for j in range(i, k)}
            out.update({f"R_{i + 1}{n + 1}": dr[i, n] for i in range(k) for n in range(k)})
            return jnp.stack([out[nm] for nm in names])

        hand_jit = jax.jit(hand)
        np.testing.assert_allclose(hand_jit(y0), field(y0), rtol=1e-10, atol=1e-13)
        batch = jnp.asarray(y0)[None, :] * (1 + 0.01 * rng.standard_normal((4096, 1)))
        gen_b, hand_b = jax.jit(jax.vmap(field)), jax.jit(jax.vmap(hand))
        t_gen = best_of(lambda: field(y0).block_until_ready(), 200)
        t_hand = best_of(lambda: hand_jit(y0).block_until_ready(), 200)
        tb_gen = best_of(lambda: gen_b(batch).block_until_ready(), 20)
        tb_hand = best_of(lambda: hand_b(batch).block_until_ready(), 20)
        rows_eval.append([k, f"{t_gen * 1e6:.1f}", f"{t_hand * 1e6:.1f}", f"{t_gen / t_hand:.2f}",
                          f"{tb_gen * 1e3:.2f}", f"{tb_hand * 1e3:.2f}", f"{tb_gen / tb_hand:.2f}"])
    print("Derive + compile vs solve (erf committee, free first layer, t1 = 50, rtol 1e-8):")
    print(table(["K = M", "states", "derive s", "jit field s", "first solve s (compile)", "solve s (cached)"], rows_speed))
    print("\nVector-field evaluation, generated vs hand-written JAX (both jitted):")
    print(table(["K = M", "gen us/call", "hand us/call", "ratio", "gen ms/4096 batch", "hand ms/4096", "ratio"], rows_eval))


if __name__ == "__main__":
    main()
