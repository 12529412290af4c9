r"""SGD as an Itô SDE (stochastic gradient flow) from per-sample losses, and the discrete SGD
map it approximates.

With per-sample losses $\ell_i(\theta)$, $L = \frac1N\sum_i \ell_i$ and minibatches of size
$\beta$ drawn with replacement, one SGD step $\theta \leftarrow \theta - \eta g_B$ has mean
$-\eta\nabla L$ and covariance $\eta^2\Sigma(\theta)/\beta$, with
$\Sigma = \frac1N\sum_i \nabla\ell_i\nabla\ell_i^\top - \nabla L\nabla L^\top$. The stochastic
gradient flow (first-order SME of Li, Tai, E 2017, arXiv:1511.06251)

$$d\theta = -\nabla L\,dt + \sqrt{\eta/\beta}\;\Sigma^{1/2}\,dB, \qquad t = k\eta,$$

read in the Itô sense, reproduces these two moments exactly with one Euler–Maruyama step of
size $h = \eta$; the two differ at $O(\eta)$ over a unit of time. No matrix square root is needed:
$G = \sqrt{\eta/(\beta N)}\,[\nabla\ell_1 - \nabla L, \dots, \nabla\ell_N - \nabla L]$ has
$GG^\top = (\eta/\beta)\Sigma$ ($N$ Brownian motions).
"""

from __future__ import annotations

from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

from .._checks import as_float_array, check_integer, check_positive
from .._random import as_key
from .._sde import AbstractSDESystem


def _check_data(inputs, targets):
    inputs, targets = as_float_array(inputs), as_float_array(targets)
    if inputs.shape[:1] != targets.shape[:1] or inputs.shape[0] == 0:
        raise ValueError(
            f"`inputs` and `targets` must have the same, non-zero number of rows; got shapes "
            f"{inputs.shape} and {targets.shape}."
        )
    if not (bool(jnp.all(jnp.isfinite(inputs))) and bool(jnp.all(jnp.isfinite(targets)))):
        raise ValueError("`inputs` and `targets` must be finite.")
    return inputs, targets


class StochasticGradientFlow(AbstractSDESystem):
    r"""$d\theta = -\nabla L\,dt + \sqrt{\eta/\beta}\,\Sigma(\theta)^{1/2}dB$ (Itô) for a flat
    parameter vector $\theta \in \mathbb{R}^n$.

    **Arguments:**

    - ``per_sample_loss``: ``(theta, x_i, y_i) -> scalar``, jax-traceable.
    - ``inputs``, ``targets``: the $N$ training pairs (leading axis $N$).
    - ``learning_rate`` $\eta > 0$, ``batch_size`` $\beta \ge 1$.
    - ``dimension``: $n$, the length of ``theta``.
    """

    per_sample_loss: Callable = eqx.field(static=True)
    inputs: jax.Array
    targets: jax.Array
    learning_rate: jax.Array
    batch_size: jax.Array
    dimension: int = eqx.field(static=True)

    def __init__(self, per_sample_loss, inputs, targets, learning_rate, batch_size=1, *, dimension):
        self.inputs, self.targets = _check_data(inputs, targets)
        check_positive("learning_rate", learning_rate)
        check_integer("batch_size", batch_size)
        self.per_sample_loss = per_sample_loss
        self.learning_rate = as_float_array(learning_rate)
        self.batch_size = as_float_array(batch_size)
        self.dimension = check_integer("dimension", dimension)

    def per_sample_gradients(self, theta):
        """$(\\nabla\\ell_i(\\theta))_i$, shape ``(N, n)``."""
        return jax.vmap(jax.grad(self.per_sample_loss), in_axes=(None, 0, 0))(theta, self.inputs, self.targets)

    def loss(self, theta):
        return jnp.mean(jax.vmap(self.per_sample_loss, in_axes=(None, 0, 0))(theta, self.inputs, self.targets))

    def vector_field(self, t, theta, args):
        return -jnp.mean(self.per_sample_gradients(theta), axis=0)

    def diffusion(self, t, theta, args):
        grads = self.per_sample_gradients(theta)
        centred = grads - jnp.mean(grads, axis=0)
        n_samples = grads.shape[0]
        return jnp.sqrt(self.learning_rate / (self.batch_size * n_samples)) * centred.T

    def gradient_covariance(self, theta):
        r"""$\Sigma(\theta)$, the covariance of one per-sample gradient."""
        grads = self.per_sample_gradients(theta)
        centred = grads - jnp.mean(grads, axis=0)
        return centred.T @ centred / grads.shape[0]

    def state_shapes(self):
        return jax.ShapeDtypeStruct((self.dimension,), jnp.float64)

    def observables(self, t, theta):
        return {"loss": self.loss(theta)}


def sgd_paths(flow: StochasticGradientFlow, theta0, n_steps: int, *, key, n_paths: int = 1, save_every: int = 1,
              label_noise: float = 0.0):
    r"""Discrete minibatch SGD, $\theta_{k+1} = \theta_k - \eta\,\frac1\beta\sum_{i \in B_k}\nabla\ell_i(\theta_k)$,
    batches drawn uniformly with replacement, as a ``lax.scan`` vmapped over paths. With
    ``label_noise`` $\zeta > 0$ the targets of each batch are perturbed afresh,
    $y_i + \zeta\xi_{k,i}$, $\xi\sim N(0, 1)$ (label-noise SGD).

    **Returns:** ``(times, thetas)`` with ``times = k * eta`` for the saved steps
    ``k = 0, save_every, ...`` and ``thetas`` of shape ``(n_paths, len(times), n)``.
    """
    n_steps = check_integer("n_steps", n_steps)
    save_every = check_integer("save_every", save_every)
    n_paths = check_integer("n_paths", n_paths)
    check_positive("label_noise", label_noise, allow_zero=True)
    theta0 = jnp.broadcast_to(as_float_array(theta0), (n_paths, flow.dimension))
    n_samples = flow.inputs.shape[0]
    batch = int(flow.batch_size)
    grad = jax.grad(flow.per_sample_loss)
    noisy = float(label_noise) > 0.0

    def step(theta, key):
        if noisy:
            key, k_noise = jr.split(key)
        idx = jr.randint(key, (batch,), 0, n_samples)
        targets = flow.targets[idx]
        if noisy:
            targets = targets + label_noise * jr.normal(k_noise, targets.shape)
        g = jnp.mean(jax.vmap(grad, in_axes=(None, 0, 0))(theta, flow.inputs[idx], targets), axis=0)
        return theta - flow.learning_rate * g

    def path(theta, key):
        def block(theta, block_key):
            keys = jr.split(block_key, save_every)
            theta = jax.lax.fori_loop(0, save_every, lambda j, th: step(th, keys[j]), theta)
            return theta, theta

        _, saved = jax.lax.scan(block, theta, jr.split(key, n_steps // save_every))
        return jnp.concatenate([theta[None], saved])

    thetas = jax.jit(jax.vmap(path))(theta0, jr.split(as_key(key), n_paths))
    times = np.arange(n_steps // save_every + 1) * save_every * float(flow.learning_rate)
    return times, np.asarray(thetas)
