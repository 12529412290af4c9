"""10^4 paths of the quartic well and of the tanh-neuron SDE, same step and horizon:
reducedflow.euler_maruyama (lax.scan, vmapped), a hand-written lax.scan loop, diffrax Euler with
UnsafeBrownianPath and with VirtualBrownianTree (through reducedflow.solve), and a numpy loop
vectorised over paths. Compile time is reported separately; run times are best of 2 after it.

    python benchmarks/sde_ensemble_speed.py [--paths 10000]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

import reducedflow as rf
from reducedflow.models.collapse import QuarticWell, TanhNeuron

from _common import table


def timed(fn):
    start = time.perf_counter()
    out = fn()
    jax.block_until_ready(out)
    return out, time.perf_counter() - start


def hand_written_quartic(mu, zeta, y0, n_steps, dt, key, n_paths):
    @jax.jit
    def run(key):
        def path(key):
            def step(th, i):
                dw = jnp.sqrt(dt) * jr.normal(jr.fold_in(key, i))
                return th - dt * (th**3 - mu * th) + zeta * th * dw, None
            return jax.lax.scan(step, y0, jnp.arange(n_steps))[0]
        return jax.vmap(path)(jr.split(key, n_paths))
    return run


def hand_written_neuron(x, y, eta, zeta, w0, n_steps, dt, key, n_paths):
    m = x.size

    @jax.jit
    def run(key):
        def path(key):
            def step(w, i):
                t = jnp.tanh(w[0] * x)
                resid = w[1] * t - y
                dt_dw1 = w[1] * (1 - t**2) * x
                grad = jnp.stack([jnp.mean(resid * dt_dw1), jnp.mean(resid * t)])
                dw = jnp.sqrt(dt) * jr.normal(jr.fold_in(key, i), (m,))
                noise = jnp.sqrt(eta / m) * zeta * jnp.stack([dt_dw1 @ dw, t @ dw])
                return w - dt * grad + noise, None
            return jax.lax.scan(step, w0, jnp.arange(n_steps))[0]
        return jax.vmap(path)(jr.split(key, n_paths))
    return run


def numpy_quartic(mu, zeta, y0, n_steps, dt, seed, n_paths):
    rng = np.random.default_rng(seed)
    th = np.full(n_paths, y0)
    for _ in range(n_steps):
        th = th - dt * (th**3 - mu * th) + zeta * th * np.sqrt(dt) * rng.standard_normal(n_paths)
    return th


def numpy_neuron(x, y, eta, zeta, w0, n_steps, dt, seed, n_paths):
    rng = np.random.default_rng(seed)
    m = x.size
    w = np.tile(w0, (n_paths, 1))
    for _ in range(n_steps):
        t = np.tanh(w[:, :1] * x)
        resid = w[:, 1:] * t - y
        d1 = w[:, 1:] * (1 - t**2) * x
        grad = np.stack([np.mean(resid * d1, 1), np.mean(resid * t, 1)], 1)
        dw = np.sqrt(dt) * rng.standard_normal((n_paths, m))
        noise = np.sqrt(eta / m) * zeta * np.stack([np.sum(d1 * dw, 1), np.sum(t * dw, 1)], 1)
        w = w - dt * grad + noise
    return w


def bench(name, system, y0, t1, dt, hand, numpy_fn, n_paths, diffrax_paths):
    n_steps = int(round(t1 / dt))
    rows = []
    first = rf.euler_maruyama(system, y0, t1, dt=dt, key=0, n_paths=n_paths, saveat=[t1])
    runs = [rf.euler_maruyama(system, y0, t1, dt=dt, key=k, n_paths=n_paths, saveat=[t1]).stats.run_seconds for k in (1, 2)]
    fast = min(runs)
    rows.append(["reducedflow.euler_maruyama", n_paths, f"{first.stats.compile_seconds:.2f}", f"{fast:.3f}", "1.0"])
    run = hand(jr.PRNGKey(0))
    _, c = timed(lambda: run.lower(jr.PRNGKey(0)).compile())
    _, r0 = timed(lambda: run(jr.PRNGKey(1)))
    _, r1 = timed(lambda: run(jr.PRNGKey(2)))
    hand_run = min(r0, r1)
    rows.append(["hand-written lax.scan", n_paths, "(incl.)", f"{hand_run:.3f}", f"{hand_run / fast:.2f}"])
    for brownian in ("unsafe", "virtual"):
        tr = rf.solve(system, y0, t1, key=0, dt0=dt, n_paths=diffrax_paths, brownian=brownian, saveat=[t1])
        tr2 = rf.solve(system, y0, t1, key=1, dt0=dt, n_paths=diffrax_paths, brownian=brownian, saveat=[t1])
        per_path = tr2.stats.run_seconds / diffrax_paths * n_paths
        label = "diffrax Euler, " + ("UnsafeBrownianPath" if brownian == "unsafe" else "VirtualBrownianTree")
        rows.append([label, f"{diffrax_paths} (scaled)", f"{tr.stats.compile_seconds:.2f}", f"{per_path:.3f}",
                     f"{per_path / fast:.1f}"])
    numpy_paths = max(1, n_paths // 10)
    _, np_time = timed(lambda: numpy_fn(numpy_paths))
    np_scaled = np_time * n_paths / numpy_paths
    rows.append(["numpy loop (vectorised over paths)", f"{numpy_paths} (scaled)", "-", f"{np_scaled:.3f}",
                 f"{np_scaled / fast:.1f}"])
    print(f"\n### {name}: {n_steps} Euler–Maruyama steps of h = {dt}\n")
    print(table(["method", "paths", "compile s", "run s (10^4 paths)", "ratio to ours"], rows))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--paths", type=int, default=10_000)
    args = parser.parse_args()
    n = args.paths
    mu, zeta, dt, t1 = 1.5, 2.0, 0.01, 10.0
    quartic = QuarticWell(mu, zeta)
    steps = int(round(t1 / dt))
    bench("Quartic well (mu = 1.5, zeta = 2)", quartic, np.ones(1), t1, dt,
          lambda key: hand_written_quartic(mu, zeta, 1.0, steps, dt, key, n),
          lambda p: numpy_quartic(mu, zeta, 1.0, steps, dt, 0, p), n, diffrax_paths=max(1, n // 10))
    rng = np.random.default_rng(0)
    x = rng.standard_normal(32)
    y = x + 0.1 * rng.standard_normal(32)
    neuron = TanhNeuron(x, y, 2.5)
    w0 = np.array([1e-3, -2e-3])
    bench("tanh neuron (m = 32 samples, eta = 2.5)", neuron, w0, t1, dt,
          lambda key: hand_written_neuron(jnp.asarray(x), jnp.asarray(y), 2.5, 1.0, jnp.asarray(w0), steps, dt, key, n),
          lambda p: numpy_neuron(x, y, 2.5, 1.0, w0, steps, dt, 0, p), n, diffrax_paths=max(1, n // 20))


if __name__ == "__main__":
    main()
