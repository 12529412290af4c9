r"""Plain gradient descent on a single ReLU neuron: the finite-step counterpart of the exact
flow in ``reducedflow.models.relu_neuron``.

$$w_{k+1} = w_k - \eta\,\nabla L(w_k),\qquad
  \nabla L(w) = \sum_i \sigma'(u_i)(\sigma(u_i) - y_i)\,x_i,\quad u_i = x_i^\top w,$$

with the same $\sigma'(0)$ convention as the ``ReluNeuron`` it is given. The iterate $w_k$
approximates the gradient flow at $t = k\eta$ with an error $O(\eta)$ (explicit Euler), also
across the switches of the active set (a switch is found one step late at most, i.e. with a
delay below $\eta$).

Reference: Vardi, Shamir, COLT 2021, arXiv:2012.05156 (their experiments use GD with
$\eta = 10^{-4}$); Lee, Sim, Ye 2022, arXiv:2202.05510.
"""

from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_finite, check_integer, check_positive

__all__ = ["ReluGDTrajectory", "train_relu_gd", "gd_switch_times"]


@dataclasses.dataclass(frozen=True)
class ReluGDTrajectory:
    """What ``train_relu_gd`` recorded.

    **Attributes:**

    - ``times``: $t = k\\eta$ at the recorded steps, shape ``(T,)``.
    - ``steps``: the recorded step numbers $k$, shape ``(T,)``.
    - ``weights``: $w_k$ at those steps, shape ``(T, d)``.
    - ``loss``: $L(w_k)$, shape ``(T,)``.
    - ``switch_times``: for each data point, the first time its pre-activation $u_j$ is on the
      other side of 0 than at step 0, located by linear interpolation of $u_j$ between the two
      steps around the sign change (NaN if never), shape ``(n,)``.
    - ``learning_rate``: $\\eta$.
    - ``compile_seconds``, ``run_seconds``.
    """

    times: np.ndarray
    steps: np.ndarray
    weights: np.ndarray
    loss: np.ndarray
    switch_times: np.ndarray
    learning_rate: float
    compile_seconds: float
    run_seconds: float



def _gradient(x, y, w, derivative_at_zero):
    u = x @ w
    slope = jnp.where(u > 0, 1.0, jnp.where(u == 0, derivative_at_zero, 0.0))
    return x.T @ (slope * (jnp.maximum(u, 0.0) - y))


_COMPILED: dict = {}


@jax.jit
def _run(x, y, w0, eta, derivative_at_zero, steps_per_record, n_records_dummy):
    side0 = x @ w0 > 0

    def step(carry, _):
        w, k, switch = carry
        u_before = x @ w
        w = w - eta * _gradient(x, y, w, derivative_at_zero)
        u_after = x @ w
        flipped = (u_after > 0) != side0
        # the linear interpolation of u_j between the two steps crosses 0 here
        fraction = u_before / jnp.where(u_before == u_after, 1.0, u_before - u_after)
        crossing = (k + jnp.clip(fraction, 0.0, 1.0)) * eta
        switch = jnp.where(jnp.isnan(switch) & flipped, crossing, switch)
        return (w, k + 1, switch), None

    def record(carry, _):
        carry = jax.lax.fori_loop(0, steps_per_record, lambda i, c: step(c, None)[0], carry)
        return carry, carry[0]

    init = (w0, jnp.asarray(0, jnp.int64), jnp.full(x.shape[0], jnp.nan))
    carry, ws = jax.lax.scan(record, init, None, length=n_records_dummy.shape[0])
    return ws, carry[2]


def train_relu_gd(neuron, w0, learning_rate: float, t1: float, *, n_records: int = 200) -> ReluGDTrajectory:
    r"""Run gradient descent with step ``learning_rate`` on ``neuron``'s loss from ``w0`` up to
    time $t_1$ (``round(t1 / learning_rate)`` steps), recording ``n_records`` evenly spaced
    iterates (plus $w_0$). One compilation serves every step size and horizon with the same
    ``n_records`` and data shapes.

    **Arguments:**

    - ``neuron``: a ``reducedflow.models.relu_neuron.ReluNeuron`` (data, bias, $\sigma'(0)$).
    - ``w0``: initial weight, shape ``(neuron.dimension,)``.
    - ``learning_rate``: $\eta > 0$.
    - ``t1``: time horizon (> 0); the number of steps is rounded to a multiple of ``n_records``.
    - ``n_records``: number of recorded iterates after $w_0$ (>= 1).

    **Returns:** a ``ReluGDTrajectory``.
    """
    from ..models.relu_neuron import ReluNeuron

    if not isinstance(neuron, ReluNeuron):
        raise ValueError(f"`neuron` must be a ReluNeuron; got {type(neuron).__name__}.")
    check_positive("learning_rate", learning_rate)
    check_positive("t1", t1)
    n_records = check_integer("n_records", n_records)
    x = jnp.asarray(neuron.design_matrix)
    w0 = np.asarray(w0, dtype=np.float64)
    if w0.shape != (x.shape[1],):
        raise ValueError(f"`w0` must have shape ({x.shape[1]},); got {w0.shape}.")
    check_finite("w0", w0)
    per_record = max(1, int(round(t1 / learning_rate / n_records)))
    args = (x, neuron.targets, jnp.asarray(w0), jnp.float64(learning_rate),
            jnp.float64(neuron.relu_derivative_at_zero), jnp.asarray(per_record, jnp.int64),
            jnp.zeros(n_records))
    key = tuple((a.shape, str(a.dtype)) for a in args)
    compile_s = 0.0
    compiled = _COMPILED.get(key)
    if compiled is None:
        start = time.perf_counter()
        compiled = _COMPILED[key] = _run.lower(*args).compile()
        compile_s = time.perf_counter() - start
    start = time.perf_counter()
    ws, switch = jax.block_until_ready(compiled(*args))
    run_s = time.perf_counter() - start
    weights = np.concatenate([w0[None], np.asarray(ws)])
    steps = np.arange(n_records + 1) * per_record
    loss = np.asarray(neuron.loss(weights))
    return ReluGDTrajectory(steps * learning_rate, steps, weights, loss, np.asarray(switch),
                            float(learning_rate), compile_s, run_s)


def gd_switch_times(neuron, w0, learning_rate: float, t1: float) -> np.ndarray:
    """The first time $k\\eta$ at which each point's pre-activation sign differs from its sign at
    step 0 (NaN if never before ``t1``)."""
    return train_relu_gd(neuron, w0, learning_rate, t1, n_records=1).switch_times
