r"""A two-layer ReLU network in NTK parametrisation trained by full-batch gradient descent on the
summed cross-entropy (with optional Spectral Decoupling and weight decay towards the
initialisation), its Jacobian $\Phi$ at initialisation, and the comparison with the linearised
model and the reduced feature-response flow of ``reducedflow.models.ntk_cross_entropy``.

Network (NTK parametrisation, all weights $\sim N(0, 1)$ at initialisation):

$$f(x) = \frac1{\sqrt h}\sum_{j=1}^h a_j\,\mathrm{ReLU}\Big(\frac{w_j\cdot x}{\sqrt d} + b_j\Big),\qquad
  L(\theta) = \sum_i\log(1 + e^{-y_if(x_i)}) + \tfrac{\lambda_{SD}}2\sum_if(x_i)^2
             + \tfrac{\lambda_{WD}}2\|\theta - \theta_0\|^2 .$$

As the width $h$ grows, gradient descent stays in the linear regime around $\theta_0$
(Jacot et al. 2018, arXiv:1806.07572; Lee et al. 2019, arXiv:1902.06720): the outputs follow the
linearised model $\hat y_0 + \Phi(\theta - \theta_0)$, whose feature responses
$z = U^\top Y\hat y$ ($Y\Phi = USV^\top$) obey the closed flow ``FeatureResponseFlow`` with the offset
$b_0 = Y\hat y_0$ (theory note §3.5). The gap between network and linearised model is expected to
shrink roughly like $h^{-1/2}$; ``validate_two_moons`` measures it, ``convergence_study`` fits the rate.

Gradient descent on the linearised model **is** the explicit Euler method for
``LinearisedPrimalFlow`` (and, mapped by $SV^\top$, for ``FeatureResponseFlow``): its gap to the flow
is $O(\eta)$ (``validate_linearised_flow``).

Reference for the experiments: Pezeshki et al., "Gradient Starvation", NeurIPS 2021,
arXiv:2011.09468 (their moons experiments use PyTorch's default parametrisation and SGD with
momentum; here NTK parametrisation and plain GD, so that the width limit is the NTK model).
"""

from __future__ import annotations

import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jax.flatten_util import ravel_pytree

from .._checks import check_integer, check_positive
from .._random import as_key, generator
from ..models.ntk_cross_entropy import LinearisedPrimalFlow, check_labels, feature_decomposition

__all__ = [
    "init_ntk_mlp",
    "ntk_mlp_outputs",
    "ntk_mlp_jacobian",
    "train_ntk_mlp",
    "train_linearised",
    "validate_two_moons",
    "validate_linearised_flow",
]


def init_ntk_mlp(width: int, key, input_dim: int = 2) -> dict[str, jax.Array]:
    """Initial parameters ``{"first_layer": (h, d), "bias": (h,), "second_layer": (h,)}``, all
    entries standard normal (NTK parametrisation: the scales sit in ``ntk_mlp_outputs``)."""
    width = check_integer("width", width)
    input_dim = check_integer("input_dim", input_dim)
    rng = generator(key)
    return {
        "first_layer": jnp.asarray(rng.standard_normal((width, input_dim))),
        "bias": jnp.asarray(rng.standard_normal(width)),
        "second_layer": jnp.asarray(rng.standard_normal(width)),
    }


def ntk_mlp_outputs(params, inputs) -> jax.Array:
    r"""$f(x) = h^{-1/2}\,a\cdot\mathrm{ReLU}(Wx/\sqrt d + b)$ for each row of ``inputs`` (n, d)."""
    inputs = jnp.asarray(inputs, jnp.float64)
    d, h = inputs.shape[-1], params["second_layer"].shape[0]
    hidden = jax.nn.relu(inputs @ params["first_layer"].T / math.sqrt(d) + params["bias"])
    return hidden @ params["second_layer"] / math.sqrt(h)


@jax.jit
def ntk_mlp_jacobian(params, inputs) -> jax.Array:
    r"""$\Phi = \partial f(x_i)/\partial\theta$ at ``params``, shape ``(n, p)``, with $\theta$ flattened
    by ``jax.flatten_util.ravel_pytree`` (the order of ``train_ntk_mlp``'s parameters)."""
    flat, unravel = ravel_pytree(params)
    return jax.jacrev(lambda f: ntk_mlp_outputs(unravel(f), inputs))(flat)


def _loss(params, inputs, labels, spectral_decoupling):
    out = ntk_mlp_outputs(params, inputs)
    return jnp.sum(jnp.logaddexp(0.0, -labels * out)) + 0.5 * spectral_decoupling * jnp.sum(out**2)


@functools.partial(jax.jit, static_argnames=("n_records", "every"))
def _train(params, inputs, labels, learning_rate, spectral_decoupling, weight_decay, n_records, every):
    start = params

    def step(_, p):
        grads = jax.grad(_loss)(p, inputs, labels, spectral_decoupling)
        return jax.tree_util.tree_map(lambda w, g, w0: w - learning_rate * (g + weight_decay * (w - w0)), p, grads, start)

    def record(p, _):
        p = jax.lax.fori_loop(0, every, step, p)
        return p, ntk_mlp_outputs(p, inputs)

    final, outputs = jax.lax.scan(record, params, None, length=n_records)
    return final, jnp.concatenate([ntk_mlp_outputs(params, inputs)[None], outputs])


def _check_schedule(learning_rate, steps, record_every):
    check_positive("learning_rate", learning_rate)
    steps = check_integer("steps", steps)
    every = check_integer("record_every", record_every)
    if steps % every:
        raise ValueError(f"`steps` ({steps}) must be a multiple of `record_every` ({every}).")
    return steps // every, every


def train_ntk_mlp(params, inputs, labels, *, learning_rate, steps, record_every=1, spectral_decoupling=0.0,
                  weight_decay=0.0):
    r"""Full-batch gradient descent on the network loss of the module docstring.

    **Arguments:** ``params`` (from ``init_ntk_mlp``), ``inputs`` (n, d), ``labels`` in {-1, +1},
    ``learning_rate`` $\eta$ (> 0), ``steps`` (a multiple of ``record_every``), ``record_every``,
    ``spectral_decoupling`` $\lambda_{SD}$ and ``weight_decay`` $\lambda_{WD}$ (>= 0, decay towards
    the initial parameters).

    **Returns:** ``(final_params, outputs)``, ``outputs`` of shape ``(steps/record_every + 1, n)``
    (row $k$ at time $t = k\cdot$ ``record_every`` $\cdot\eta$).
    """
    labels = jnp.asarray(check_labels(labels))
    inputs = jnp.asarray(inputs, jnp.float64)
    if inputs.ndim != 2 or inputs.shape[0] != labels.shape[0]:
        raise ValueError(f"`inputs` must have shape ({labels.shape[0]}, d); got {inputs.shape}.")
    check_positive("spectral_decoupling", spectral_decoupling, allow_zero=True)
    check_positive("weight_decay", weight_decay, allow_zero=True)
    n_records, every = _check_schedule(learning_rate, steps, record_every)
    return _train(params, inputs, labels, jnp.float64(learning_rate), jnp.float64(spectral_decoupling),
                  jnp.float64(weight_decay), n_records, every)


@eqx.filter_jit
def _euler(flow, theta, step, n_records, every):
    def one(_, th):
        return th + step * flow.vector_field(0.0, th, None)

    def record(th, _):
        th = jax.lax.fori_loop(0, every, one, th)
        return th, flow.outputs(th)

    _, outputs = jax.lax.scan(record, theta, None, length=n_records)
    return jnp.concatenate([flow.outputs(theta)[None], outputs])


def train_linearised(features, output_offset, labels, *, learning_rate, steps, record_every=1, spectral_decoupling=0.0,
                     weight_decay=0.0):
    r"""Full-batch gradient descent on the linearised model $\hat y = \hat y_0 + \Phi\theta$ from
    $\theta = 0$: the explicit Euler method, step $\eta$, for ``LinearisedPrimalFlow``.
    **Returns:** the outputs, shape ``(steps/record_every + 1, n)``."""
    n_records, every = _check_schedule(learning_rate, steps, record_every)
    flow = LinearisedPrimalFlow(features, labels, weight_decay, spectral_decoupling, 1.0, output_offset)
    return _euler(flow, jnp.zeros(flow.features.shape[1]), jnp.float64(learning_rate), n_records, every)


def _moons_setup(width, n_samples, margin, key):
    from .two_moons import two_moons

    data_key, init_key = jr.split(as_key(key))
    inputs, labels = two_moons(n_samples, noise=0.1, margin=margin, key=data_key)
    params = init_ntk_mlp(width, init_key)
    features = np.asarray(ntk_mlp_jacobian(params, jnp.asarray(inputs)))
    offset = np.asarray(ntk_mlp_outputs(params, inputs))
    return inputs, labels, params, features, offset


def _responses(outputs, labels, left):
    """$z = U^\\top Y\\hat y$ for each row of ``outputs``."""
    return np.asarray(outputs) * labels @ left


def validate_two_moons(width: int = 256, *, n_samples: int = 16, learning_rate: float = 0.05, steps: int = 200,
                       record_every: int = 10, spectral_decoupling: float = 0.0, weight_decay: float = 0.0,
                       margin: float = 0.1, key=0):
    r"""Train the NTK-parametrised network of the given ``width`` and its linearisation at
    initialisation by the same full-batch GD on two-moons data, and compare their feature
    responses $z(t) = U^\top Y\hat y(t)$ ($U$ from the SVD of $Y\Phi$ at initialisation).

    **Returns:** a ``reducedflow.validate.ValidationResult`` (family ``"gradient_starvation"``) with
    ``reduced["responses"]`` from the linearised model (= Euler on the reduced flow),
    ``network["responses"]`` from the network, and the losses as diagnostics. Sweep the width with
    ``convergence_study(validate_two_moons, "width", widths, ...)``: the gap shrinks roughly like
    ``width**-0.5``.
    """
    from ..validate import ValidationResult

    inputs, labels, params, features, offset = _moons_setup(width, n_samples, margin, key)
    schedule = dict(learning_rate=learning_rate, steps=steps, record_every=record_every,
                    spectral_decoupling=spectral_decoupling, weight_decay=weight_decay)
    linear = np.asarray(train_linearised(features, offset, labels, **schedule))
    _, network = train_ntk_mlp(params, inputs, labels, **schedule)
    network = np.asarray(network)
    left = feature_decomposition(features, labels).left
    times = learning_rate * record_every * np.arange(linear.shape[0])
    loss = lambda out: np.sum(np.logaddexp(0.0, -labels * out), axis=-1)  # noqa: E731
    return ValidationResult(
        "gradient_starvation", times,
        reduced={"responses": _responses(linear, labels, left)},
        network={"responses": _responses(network, labels, left)},
        parameters=dict(width=width, n_samples=n_samples, learning_rate=learning_rate, steps=steps,
                        spectral_decoupling=spectral_decoupling, weight_decay=weight_decay, margin=margin),
        diagnostics={"loss_network": loss(network), "loss_linearised": loss(linear)},
        dims={"responses": ("feature",)},
    )


def validate_linearised_flow(learning_rate: float = 0.05, *, width: int = 256, n_samples: int = 16, t1: float = 10.0,
                             n_records: int = 10, spectral_decoupling: float = 0.0, weight_decay: float = 0.0,
                             margin: float = 0.1, key=0):
    r"""Gradient descent with step ``learning_rate`` on the linearised network against the reduced
    flow ``FeatureResponseFlow`` (with the offset $b_0 = Y\hat y_0$) solved by ``solve``, on the
    same record times: the gap is $O(\eta)$ (halving the step halves it).

    **Returns:** a ``ValidationResult`` with ``reduced["responses"]`` from the solve and
    ``network["responses"]`` from linearised GD."""
    from .._solve import solve
    from ..validate import ValidationResult

    check_positive("learning_rate", learning_rate)
    every = int(round(t1 / (learning_rate * n_records)))
    if every < 1 or abs(every * learning_rate * n_records - t1) > 1e-9 * t1:
        raise ValueError(f"`t1` / (learning_rate * n_records) must be an integer; got {t1 / (learning_rate * n_records)}.")
    inputs, labels, _, features, offset = _moons_setup(width, n_samples, margin, key)
    linear = np.asarray(train_linearised(features, offset, labels, learning_rate=learning_rate, steps=every * n_records,
                                         record_every=every, spectral_decoupling=spectral_decoupling,
                                         weight_decay=weight_decay))
    dec = feature_decomposition(features, labels)
    primal = LinearisedPrimalFlow(features, labels, weight_decay, spectral_decoupling, 1.0, offset)
    flow = primal.response_flow(dec)
    times = np.linspace(0.0, t1, n_records + 1)
    traj = solve(flow, np.zeros(flow.singular_values.shape[0]), t1, saveat=times, rtol=1e-10, atol=1e-12)
    b0 = labels * offset
    reduced = np.asarray(traj.ys) + (b0 @ dec.left)  # U^T Y yhat = z + U^T b0
    return ValidationResult(
        "gradient_starvation", times,
        reduced={"responses": reduced},
        network={"responses": _responses(linear, labels, dec.left)},
        parameters=dict(width=width, n_samples=n_samples, learning_rate=learning_rate, t1=t1,
                        spectral_decoupling=spectral_decoupling, weight_decay=weight_decay, margin=margin),
        dims={"responses": ("feature",)},
    )
