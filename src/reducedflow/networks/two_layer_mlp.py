r"""A small generic two-layer network on a flat parameter vector, for SGD, label-noise SGD and the
stochastic gradient flow (``reducedflow.models.sgd_flow``), and for the invariant sets of
stochastic collapse (``reducedflow.analysis.invariant_sets``).

$$f(x; \theta) = \sum_{p=1}^{h} w_{out}^{(p)}\,\sigma\big(w_{in}^{(p)}\cdot[x, 1]\big),\qquad
  \ell(\theta; x, y) = \tfrac12\,\|f(x; \theta) - y\|^2 ,$$

unit $p$ owning its incoming weights and bias $w_{in}^{(p)} \in \mathbb{R}^{d+1}$ and its outgoing
weights $w_{out}^{(p)} \in \mathbb{R}^{c}$ (no parameter outside the units). The flat vector is
``theta = [w_in.ravel() (h x (d+1), row-major), w_out.ravel() (h x c, row-major)]``.

With $\sigma(0) = 0$ (tanh, GELU, SiLU, ReLU) $\{w_{in}^{(p)} = 0, w_{out}^{(p)} = 0\}$ is invariant
under SGD; for any $\sigma$, $\{w^{(p)} = w^{(q)}\}$ is (Chen, Kunin, Yamamura, Ganguli 2023,
"Stochastic Collapse", arXiv:2306.04251; theory note §2).
"""

from __future__ import annotations

from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

from .._checks import check_integer, check_positive
from .._random import as_key
from ..models.sgd_flow import StochasticGradientFlow, sgd_paths


class TwoLayerLayout(eqx.Module):
    """Where each hidden unit's parameters sit in the flat vector of a two-layer network.

    **Arguments:** ``input_dim`` $d$, ``width`` $h$ (hidden units), ``output_dim`` $c$ (default 1).
    """

    input_dim: int = eqx.field(static=True)
    width: int = eqx.field(static=True)
    output_dim: int = eqx.field(static=True)

    def __init__(self, input_dim: int, width: int, output_dim: int = 1):
        self.input_dim = check_integer("input_dim", input_dim)
        self.width = check_integer("width", width)
        self.output_dim = check_integer("output_dim", output_dim)

    @property
    def n_incoming(self) -> int:
        """$d + 1$: incoming weights plus bias of one unit."""
        return self.input_dim + 1

    @property
    def size(self) -> int:
        """The length of the flat parameter vector, $h(d + 1) + hc$."""
        return self.width * (self.n_incoming + self.output_dim)

    def unpack(self, theta):
        """``(w_in, w_out)`` of shapes ``(h, d + 1)`` and ``(h, c)`` from ``theta`` (leading batch axes kept)."""
        theta = jnp.asarray(theta)
        if theta.shape[-1] != self.size:
            raise ValueError(f"`theta` must have last axis {self.size}; got shape {theta.shape}.")
        split = self.width * self.n_incoming
        batch = theta.shape[:-1]
        w_in = theta[..., :split].reshape(*batch, self.width, self.n_incoming)
        w_out = theta[..., split:].reshape(*batch, self.width, self.output_dim)
        return w_in, w_out

    def pack(self, w_in, w_out):
        """The flat vector from ``w_in`` ``(h, d + 1)`` and ``w_out`` ``(h, c)`` (or ``(h,)`` when c = 1)."""
        w_in = jnp.asarray(w_in, dtype=jnp.float64)
        w_out = jnp.asarray(w_out, dtype=jnp.float64)
        if w_out.shape == (self.width,):
            w_out = w_out[:, None]
        if w_in.shape != (self.width, self.n_incoming) or w_out.shape != (self.width, self.output_dim):
            raise ValueError(
                f"`w_in`, `w_out` must have shapes {(self.width, self.n_incoming)} and "
                f"{(self.width, self.output_dim)}; got {w_in.shape} and {w_out.shape}."
            )
        return jnp.concatenate([w_in.ravel(), w_out.ravel()])

    def unit_indices(self, unit: int):
        """Flat indices ``(incoming, outgoing)`` of hidden unit ``unit``'s parameters."""
        unit = check_integer("unit", unit, minimum=0)
        if unit >= self.width:
            raise ValueError(f"`unit` must be in [0, {self.width - 1}]; got {unit}.")
        start = unit * self.n_incoming
        incoming = np.arange(start, start + self.n_incoming)
        out_start = self.width * self.n_incoming + unit * self.output_dim
        outgoing = np.arange(out_start, out_start + self.output_dim)
        return incoming, outgoing


class TwoLayerMLP(eqx.Module):
    r"""$f(x;\theta) = \sum_p w_{out}^{(p)}\sigma(w_{in}^{(p)}\cdot[x, 1])$ on a flat $\theta$, with the
    square per-sample loss $\ell = \tfrac12\|f - y\|^2$ (module docstring).

    Hashable (only static fields), so ``self.per_sample_loss`` can be handed to
    ``StochasticGradientFlow``.

    **Arguments:** ``layout`` (a ``TwoLayerLayout``), ``activation`` (a jax-traceable
    elementwise function, e.g. ``jnp.tanh``; default tanh).
    """

    layout: TwoLayerLayout = eqx.field(static=True)
    activation: Callable = eqx.field(static=True)

    def __init__(self, layout: TwoLayerLayout, activation: Callable = jnp.tanh):
        if not isinstance(layout, TwoLayerLayout):
            raise ValueError(f"`layout` must be a TwoLayerLayout; got {type(layout).__name__}.")
        if not callable(activation):
            raise ValueError(f"`activation` must be callable; got {activation!r}.")
        self.layout = layout
        self.activation = activation

    def outputs(self, theta, x):
        """$f(x;\\theta)$ for one input ``x`` ``(d,)``: shape ``(c,)``, or a scalar when c = 1."""
        w_in, w_out = self.layout.unpack(theta)
        hidden = self.activation(w_in @ jnp.append(x, 1.0))
        out = hidden @ w_out
        return out[0] if self.layout.output_dim == 1 else out

    def per_sample_loss(self, theta, x, y):
        """$\\tfrac12\\|f(x;\\theta) - y\\|^2$."""
        return 0.5 * jnp.sum((self.outputs(theta, x) - y) ** 2)

    def init(self, key, scale: float = 1.0):
        """Gaussian parameters: incoming $N(0, \\mathrm{scale}^2/(d+1))$, outgoing $N(0, \\mathrm{scale}^2/h)$."""
        check_positive("scale", scale)
        k_in, k_out = jr.split(as_key(key))
        lay = self.layout
        w_in = scale * jr.normal(k_in, (lay.width, lay.n_incoming)) / np.sqrt(lay.n_incoming)
        w_out = scale * jr.normal(k_out, (lay.width, lay.output_dim)) / np.sqrt(lay.width)
        return lay.pack(w_in, w_out)

    def flow(self, inputs, targets, learning_rate, batch_size: int = 1) -> StochasticGradientFlow:
        """The ``StochasticGradientFlow`` (SDE of minibatch SGD) of this network on the data."""
        return StochasticGradientFlow(self.per_sample_loss, inputs, targets, learning_rate, batch_size,
                                      dimension=self.layout.size)


def label_noise_sgd_paths(flow: StochasticGradientFlow, theta0, n_steps: int, *, label_noise, key,
                          n_paths: int = 1, save_every: int = 1):
    r"""Label-noise SGD: minibatch SGD on freshly perturbed targets,
    $\theta_{k+1} = \theta_k - \frac\eta\beta\sum_{i\in B_k}\nabla_\theta\ell(\theta_k; x_i, y_i + \zeta\xi_{k,i})$,
    $\xi \sim N(0, 1)$ (shape of a target), batches drawn uniformly with replacement; the same
    map as ``reducedflow.models.sgd_flow.sgd_paths`` when ``label_noise = 0``.

    **Arguments:** ``flow`` (supplies per-sample loss, data, $\eta$ and $\beta$), ``theta0``
    ``(n,)`` or ``(n_paths, n)``, ``n_steps``, ``label_noise`` $\zeta \ge 0$, ``key``,
    ``n_paths``, ``save_every``.

    **Returns:** ``(times, thetas)``, ``times = k * eta`` for the saved steps and ``thetas`` of
    shape ``(n_paths, len(times), n)``.
    """
    check_positive("label_noise", label_noise, allow_zero=True)
    return sgd_paths(flow, theta0, n_steps, key=key, n_paths=n_paths, save_every=save_every,
                     label_noise=label_noise)
