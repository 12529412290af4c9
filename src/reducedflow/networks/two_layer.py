r"""Finite-width single-index two-layer networks: the weight-space counterpart of
``reducedflow.models.single_index`` (Berthier, Montanari, Zhou 2023, arXiv:2303.00055).

Network, target and data ($\|u_i\| = \|u_*\| = 1$, $x\sim N(0, I_d)$):

$$f(x) = \frac1m\sum_{i=1}^m a_i\,\sigma(\langle u_i, x\rangle),\qquad y = \varphi(\langle u_*, x\rangle)
  \,(+\ \text{label noise}),\qquad R(a, u) = \tfrac12 E(y - f)^2 .$$

By default $\sigma$ is the degree-$K$ polynomial $\sum_{k\le K}\sigma_kHe_k/\sqrt{k!}$ of a
``HermiteCoefficients`` (``HermiteSeries``), for which the population risk computed from the
weights with the Hermite kernels $V(s) = \sum_k\sigma_k\varphi_ks^k$, $U(q) = \sum_k\sigma_k^2q^k$,

$$R(a, u) = \tfrac12\|\varphi\|^2 - \frac1m\sum_ia_iV(\langle u_i, u_*\rangle)
  + \frac1{2m^2}\sum_{ij}a_ia_jU(\langle u_i, u_j\rangle),$$

is exact (also for a non-polynomial target $\varphi$: its Hermite tail beyond $K$ only enters
$\|\varphi\|^2$). Any JAX-traceable function can be used instead for Monte Carlo and SGD.

What is here (theory note ``single_index.md`` §4 and §13 witnesses 1, 3, 4, 5):

- ``TwoLayerWeights``, ``sample_weights``: the weights and the map to the order parameters
  $(a, s, Q)$ of ``SingleIndexExact``;
- ``population_risk`` (the formula above, from the weights) and ``monte_carlo_risk``;
- ``WeightSpaceFlow`` / ``population_gradient_flow``: the projected population gradient flow
  $\varepsilon\dot a = -m\nabla_aR$, $\dot u_i = -m(I - u_iu_i^\top)\nabla_{u_i}R$ on
  $(S^{d-1})^m$, whose overlaps follow ``SingleIndexExact`` exactly;
- ``online_sgd``: spherical online SGD on fresh Gaussian samples;
- ``mean_field_gap``: ``SingleIndexExact`` from the $d = \infty$ state against
  ``SingleIndexMeanField`` as the width grows;
- ``validate_single_index``: SGD at several widths/dimensions and seeds against a reduced flow,
  with a fitted convergence rate.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

from .._checks import check_finite, check_in, check_integer, check_positive, check_real
from .._random import as_key, generator
from .._system import AbstractSystem
from ..models.single_index import (
    HermiteCoefficients,
    SingleIndexExact,
    SingleIndexMeanField,
    _check_epsilon,
    initial_second_layer,
    overlaps_from_weights,
    power_series,
)
from ..validate import ConvergenceResult, ValidationResult

__all__ = [
    "HermiteSeries",
    "TwoLayerWeights",
    "sample_weights",
    "population_risk",
    "monte_carlo_risk",
    "MonteCarloRisk",
    "WeightSpaceFlow",
    "population_gradient_flow",
    "SingleIndexSGDTrajectory",
    "online_sgd",
    "MeanFieldGap",
    "mean_field_gap",
    "SingleIndexConvergence",
    "validate_single_index",
]

_LAWS = ("gaussian", "uniform", "rademacher")


# ----------------------------------------------------------------------------------------------
# Activation as a Hermite series


class HermiteSeries(eqx.Module):
    r"""The function $z\mapsto\sum_{k=0}^Kc_k\,He_k(z)/\sqrt{k!}$ (normalised probabilists'
    Hermite polynomials), evaluated by the recurrence
    $h_{k+1} = (z\,h_k - \sqrt k\,h_{k-1})/\sqrt{k+1}$. JAX-traceable; the coefficients are a
    field, so changing them does not recompile.

    **Arguments:** ``coefficients`` $(c_0, \dots, c_K)$, e.g. ``HermiteCoefficients.activation``.
    """

    coefficients: jax.Array

    def __init__(self, coefficients):
        c = np.asarray(coefficients, dtype=np.float64)
        if c.ndim != 1 or c.size == 0:
            raise ValueError(f"`coefficients` must be a non-empty 1-D array; got shape {c.shape}.")
        check_finite("coefficients", c)
        self.coefficients = jnp.asarray(c)

    def __call__(self, z):
        c = self.coefficients
        h_prev, h = jnp.zeros_like(z), jnp.ones_like(z)
        out = c[0] * h
        for k in range(1, c.shape[0]):
            h_prev, h = h, (z * h - math.sqrt(k - 1) * h_prev) / math.sqrt(k)
            out = out + c[k] * h
        return out


def _functions(coefficients: HermiteCoefficients, activation, target):
    """The activation and target as JAX callables (default: the degree-K Hermite series)."""
    sigma = HermiteSeries(coefficients.activation) if activation is None else activation
    phi = HermiteSeries(coefficients.target) if target is None else target
    for name, fn in (("activation", sigma), ("target", phi)):
        if not callable(fn):
            raise ValueError(f"`{name}` must be None (the Hermite series) or a JAX-traceable callable; got {fn!r}.")
    return sigma, phi


# ----------------------------------------------------------------------------------------------
# Weights and the map to the order parameters


class TwoLayerWeights(eqx.Module):
    r"""Weights of $f(x) = \frac1m\sum_ia_i\sigma(\langle u_i, x\rangle)$ and the teacher direction.

    **Fields:** ``second_layer`` $a$ ``(m,)``, ``first_layer`` $u$ ``(m, d)`` with unit rows,
    ``teacher`` $u_*$ ``(d,)`` with unit norm. A batch of networks (``sample_weights(...,
    seeds=S)``) carries a leading axis ``S`` on ``second_layer`` and ``first_layer`` and shares
    the teacher.
    """

    second_layer: jax.Array
    first_layer: jax.Array
    teacher: jax.Array

    def __init__(self, second_layer, first_layer, teacher):
        self.second_layer = jnp.asarray(second_layer, jnp.float64)
        self.first_layer = jnp.asarray(first_layer, jnp.float64)
        self.teacher = jnp.asarray(teacher, jnp.float64)

    @property
    def width(self) -> int:
        return int(self.first_layer.shape[-2])

    @property
    def dimension(self) -> int:
        return int(self.first_layer.shape[-1])

    @property
    def batched(self) -> bool:
        return self.first_layer.ndim == 3

    def order_parameters(self) -> dict[str, jax.Array]:
        r"""The state of ``SingleIndexExact``: ``second_layer`` $a$, ``overlap``
        $s_i = \langle u_i, u_*\rangle$, ``gram`` $Q_{ij} = \langle u_i, u_j\rangle$ (symmetrised,
        unit diagonal; rounding of $\|u_i\|$ is removed). Batched weights give batched states."""

        def one(a, u):
            s, q = overlaps_from_weights(u, self.teacher)
            q = 0.5 * (q + q.T)
            q = q - jnp.diag(jnp.diag(q)) + jnp.eye(q.shape[0])
            return {"second_layer": a, "overlap": s, "gram": q}

        if self.batched:
            return jax.vmap(one)(self.second_layer, self.first_layer)
        return one(self.second_layer, self.first_layer)

    def seed(self, index: int) -> "TwoLayerWeights":
        """One network of a batch."""
        return TwoLayerWeights(self.second_layer[index], self.first_layer[index], self.teacher)

    def output(self, x, activation):
        r"""$f(x)$ for inputs ``x`` of shape ``(..., d)`` (unbatched weights)."""
        return activation(x @ self.first_layer.T) @ self.second_layer / self.width


def _check_weights(weights, name="weights"):
    if not isinstance(weights, TwoLayerWeights):
        raise ValueError(f"`{name}` must be a TwoLayerWeights; got {type(weights).__name__}.")
    check_finite(name, weights)
    m, d = weights.width, weights.dimension
    check_integer("width", m, minimum=1)
    check_integer("dimension", d, minimum=2)
    if weights.teacher.shape != (d,):
        raise ValueError(f"`{name}.teacher` must have shape ({d},); got {weights.teacher.shape}.")
    if weights.second_layer.shape[-1:] != (m,) or weights.second_layer.shape[:-1] != weights.first_layer.shape[:-2]:
        raise ValueError(
            f"`{name}.second_layer` must have shape {weights.first_layer.shape[:-2] + (m,)}; "
            f"got {weights.second_layer.shape}."
        )
    norms = np.concatenate([np.linalg.norm(np.asarray(weights.first_layer), axis=-1).ravel(),
                            [np.linalg.norm(np.asarray(weights.teacher))]])
    if np.max(np.abs(norms - 1.0)) > 1e-8:
        raise ValueError(f"`{name}`: the rows of first_layer and the teacher must have unit norm; "
                         f"got norms deviating by up to {np.max(np.abs(norms - 1.0)):.3g}.")


def sample_weights(width: int, dimension: int, *, key, seeds: int | None = None, law: str = "gaussian",
                   scale: float = 1.0, second_layer=None, alignment=None) -> TwoLayerWeights:
    r"""Random weights on the sphere and a random teacher direction.

    - $u_*$ uniform on $S^{d-1}$ (shared by the seeds);
    - ``alignment=None``: $u_i$ uniform on $S^{d-1}$ (so $s_i, Q_{ij}\approx N(0, 1/d)$);
      a number or an array of $m$ numbers $\alpha_i\in[-1, 1]$:
      $u_i = \alpha_iu_* + \sqrt{1 - \alpha_i^2}\,w_i$ with $w_i$ uniform on the unit sphere of
      $u_*^\perp$, so that $s_i = \alpha_i$ exactly;
    - $a_i$ i.i.d. from ``law`` (``"gaussian"`` $N(0, \text{scale}^2)$, ``"uniform"``
      $U[-\text{scale}, \text{scale}]$, ``"rademacher"`` $\pm\text{scale}$), or the given
      ``second_layer`` (shape ``(m,)``, shared by the seeds).

    Drawn with a NumPy generator determined by ``key`` (``reducedflow._random``).

    **Arguments:** ``width`` $m\ge1$, ``dimension`` $d\ge2$, ``key`` (seed or key), ``seeds``
    (``None``: one network; an integer S: a batch with leading axis S), ``law``, ``scale`` (> 0),
    ``second_layer``, ``alignment``.

    **Returns:** ``TwoLayerWeights``.
    """
    m = check_integer("width", width, minimum=1)
    d = check_integer("dimension", dimension, minimum=2)
    check_in("law", law, _LAWS)
    check_positive("scale", scale)
    n_seeds = 1 if seeds is None else check_integer("seeds", seeds, minimum=1)
    rng = generator(key)
    teacher = rng.standard_normal(d)
    teacher /= np.linalg.norm(teacher)
    g = rng.standard_normal((n_seeds, m, d))
    if alignment is None:
        u = g / np.linalg.norm(g, axis=-1, keepdims=True)
    else:
        alpha = np.broadcast_to(np.asarray(alignment, dtype=np.float64), (m,))
        check_finite("alignment", alpha)
        if np.any(np.abs(alpha) > 1.0):
            raise ValueError(f"`alignment` (the overlaps s_i) must lie in [-1, 1]; got {alignment!r}.")
        w = g - (g @ teacher)[..., None] * teacher
        w /= np.linalg.norm(w, axis=-1, keepdims=True)
        u = alpha[:, None] * teacher + np.sqrt(1.0 - alpha**2)[:, None] * w
    if second_layer is not None:
        a = np.asarray(second_layer, dtype=np.float64)
        if a.shape != (m,):
            raise ValueError(f"`second_layer` must have shape ({m},); got {a.shape}.")
        check_finite("second_layer", a)
        a = np.broadcast_to(a, (n_seeds, m))
    elif law == "gaussian":
        a = scale * rng.standard_normal((n_seeds, m))
    elif law == "uniform":
        a = scale * rng.uniform(-1.0, 1.0, (n_seeds, m))
    else:
        a = scale * rng.choice([-1.0, 1.0], (n_seeds, m))
    if seeds is None:
        a, u = a[0], u[0]
    return TwoLayerWeights(a, u, teacher)


# ----------------------------------------------------------------------------------------------
# Population risk from the weights, and Monte Carlo


def _weight_space_risk(second_layer, first_layer, teacher, coupling, self_coupling, half_norm2):
    """R(a, u) from the weights with the Hermite kernels V (``coupling``) and U (``self_coupling``)."""
    m = second_layer.shape[0]
    s = first_layer @ teacher
    q = first_layer @ first_layer.T
    return (
        half_norm2
        - jnp.sum(second_layer * power_series(coupling, s)) / m
        + 0.5 * second_layer @ power_series(self_coupling, q) @ second_layer / m**2
    )


def population_risk(weights: TwoLayerWeights, coefficients: HermiteCoefficients):
    r"""The exact population risk of the degree-$K$ polynomial network, computed from the weights:

    $$R(a, u) = \tfrac12\|\varphi\|^2 - \frac1m\sum_ia_iV(\langle u_i, u_*\rangle)
      + \frac1{2m^2}\sum_{ij}a_ia_jU(\langle u_i, u_j\rangle)$$

    ($\|\varphi\|^2$ includes the target's tail beyond $K$). Without label noise.

    **Returns:** a scalar (unbatched weights) or one risk per seed.
    """
    _check_weights(weights)
    sig = jnp.asarray(coefficients.activation)
    phi = jnp.asarray(coefficients.target)

    def one(a, u):
        return _weight_space_risk(a, u, weights.teacher, sig * phi, sig**2, 0.5 * coefficients.target_norm2)

    if weights.batched:
        return jax.vmap(one)(weights.second_layer, weights.first_layer)
    return one(weights.second_layer, weights.first_layer)


@dataclasses.dataclass(frozen=True)
class MonteCarloRisk:
    """A Monte-Carlo estimate of $\\tfrac12E(y - f)^2$: ``mean``, its ``stderr`` and ``n_samples``."""

    mean: float
    stderr: float
    n_samples: int


@eqx.filter_jit
def _mc_chunks(key, first_layer, second_layer, teacher, basis, activation, target, chunk, n_chunks):
    m = first_layer.shape[0]
    proj_u = first_layer @ basis  # (m, r)
    proj_t = basis.T @ teacher  # (r,)

    def body(carry, k):
        g = jr.normal(k, (chunk, basis.shape[1]))
        f = activation(g @ proj_u.T) @ second_layer / m
        y = target(g @ proj_t)
        loss = 0.5 * (y - f) ** 2
        return (carry[0] + jnp.sum(loss), carry[1] + jnp.sum(loss**2)), None

    zero = jnp.zeros((), jnp.float64)
    (total, total2), _ = jax.lax.scan(body, (zero, zero), jr.split(key, n_chunks))
    return total, total2


def monte_carlo_risk(weights: TwoLayerWeights, coefficients: HermiteCoefficients, *, n_samples: int = 1_000_000,
                     key=0, activation=None, target=None, chunk: int = 100_000,
                     reduce_dimension: bool = True) -> MonteCarloRisk:
    r"""Monte-Carlo estimate of $R = \tfrac12E(y - f(x))^2$, $x\sim N(0, I_d)$, with its standard error.

    ``activation``/``target``: JAX callables (default: the Hermite series of ``coefficients``,
    i.e. the polynomial network, for which ``population_risk`` is exact). With
    ``reduce_dimension`` (default) $x$ is sampled only in the span $W$ of
    $(u_*, u_1, \dots, u_m)$ — $f$ and $y$ depend on $x$ only through its projection $P_Wx$, which is
    exactly $Bg$ with $B$ an orthonormal basis of $W$ and $g\sim N(0, I_{\dim W})$ — so a sample costs
    $O(m^2)$ instead of $O(md)$. The samples are drawn in chunks (memory $O(\text{chunk}\cdot m)$).

    **Returns:** ``MonteCarloRisk(mean, stderr, n_samples)``; ``n_samples`` is rounded up to a
    whole number of chunks.
    """
    _check_weights(weights)
    if weights.batched:
        raise ValueError("`weights` must be one network (unbatched) for monte_carlo_risk; use weights.seed(i).")
    n_samples = check_integer("n_samples", n_samples, minimum=2)
    chunk = min(check_integer("chunk", chunk, minimum=1), n_samples)
    n_chunks = -(-n_samples // chunk)
    sigma, phi = _functions(coefficients, activation, target)
    if reduce_dimension:
        stacked = jnp.concatenate([weights.teacher[None], weights.first_layer])
        basis, _ = jnp.linalg.qr(stacked.T)
    else:
        basis = jnp.eye(weights.dimension)
    total, total2 = _mc_chunks(as_key(key), weights.first_layer, weights.second_layer, weights.teacher, basis,
                               sigma, phi, chunk, n_chunks)
    n = chunk * n_chunks
    mean = float(total) / n
    var = max(float(total2) / n - mean**2, 0.0) * n / (n - 1)
    return MonteCarloRisk(mean, math.sqrt(var / n), n)


# ----------------------------------------------------------------------------------------------
# Projected population gradient flow in weight space


class WeightSpaceFlow(AbstractSystem):
    r"""The projected population gradient flow of the polynomial network on $(S^{d-1})^m$
    (theory note §3; Berthier et al. 2023, Eqs. (5)-(6)):

    $$\varepsilon\dot a = -m\,\nabla_aR(a, u),\qquad
      \dot u_i = -m\,(I - u_iu_i^\top)\nabla_{u_i}R(a, u),$$

    with $R$ the weight-space formula of ``population_risk`` and the gradients by ``jax.grad``.
    The tangent projection keeps $\|u_i\| = 1$ (only up to the integrator's tolerance: the
    observable ``norm_drift`` reports $\max_i|\|u_i\| - 1|$). Its overlaps $s = uu_*$,
    $Q = uu^\top$ follow ``SingleIndexExact`` exactly; this system is the independent witness of
    that reduction (note §13, item 3).

    **Fields:** ``activation``, ``target`` (Hermite coefficients), ``epsilon`` (> 0),
    ``teacher`` $u_*$, ``target_norm2``, ``width`` $m$ and ``dimension`` $d$ (static).
    **Arguments:** ``coefficients`` (``HermiteCoefficients``), ``epsilon``, ``teacher`` (a unit
    vector of length $d\ge2$), ``width`` $m\ge1$.

    **State:** ``{"second_layer": a (m,), "first_layer": u (m, d)}``.
    **Observables:** ``risk``, ``overlap`` $s$, ``gram`` $Q$, ``norm_drift``.
    """

    activation: jax.Array
    target: jax.Array
    epsilon: jax.Array
    teacher: jax.Array
    target_norm2: jax.Array
    width: int = eqx.field(static=True)
    dimension: int = eqx.field(static=True)

    def __init__(self, coefficients: HermiteCoefficients, epsilon, teacher, width: int):
        _check_epsilon(epsilon)
        self.width = check_integer("width", width, minimum=1)
        teacher = np.asarray(teacher, dtype=np.float64)
        if teacher.ndim != 1:
            raise ValueError(f"`teacher` must be a vector (d,); got shape {teacher.shape}.")
        self.dimension = check_integer("dimension", teacher.shape[0], minimum=2)
        check_finite("teacher", teacher)
        self.activation = jnp.asarray(coefficients.activation, jnp.float64)
        self.target = jnp.asarray(coefficients.target, jnp.float64)
        self.epsilon = jnp.asarray(epsilon, jnp.float64)
        self.teacher = jnp.asarray(teacher)
        self.target_norm2 = jnp.asarray(coefficients.target_norm2, jnp.float64)

    def risk(self, y):
        sig = self.activation
        return _weight_space_risk(y["second_layer"], y["first_layer"], self.teacher, sig * self.target, sig**2,
                                  0.5 * self.target_norm2)

    def vector_field(self, t, y, args):
        a, u = y["second_layer"], y["first_layer"]
        m = a.shape[0]
        grad = jax.grad(self.risk)(y)
        ga, gu = grad["second_layer"], grad["first_layer"]
        tangent = gu - jnp.sum(gu * u, axis=1, keepdims=True) * u
        return {"second_layer": -m * ga / self.epsilon, "first_layer": -m * tangent}

    def observables(self, t, y):
        u = y["first_layer"]
        return {
            "risk": self.risk(y),
            "overlap": u @ self.teacher,
            "gram": u @ u.T,
            "norm_drift": jnp.max(jnp.abs(jnp.linalg.norm(u, axis=1) - 1.0)),
        }

    def state_shapes(self):
        return {
            "second_layer": jax.ShapeDtypeStruct((self.width,), jnp.float64),
            "first_layer": jax.ShapeDtypeStruct((self.width, self.dimension), jnp.float64),
        }

    def check_state(self, y0, name="y0"):
        super().check_state(y0, name)
        u = np.asarray(y0["first_layer"])
        if np.max(np.abs(np.linalg.norm(u, axis=1) - 1.0)) > 1e-8:
            raise ValueError(f"`{name}['first_layer']` must have unit rows (the flow lives on the sphere).")

    def timescale_ratio(self):
        return 1.0 / self.epsilon

    def fast_components(self):
        return {"second_layer": True, "first_layer": False}


def population_gradient_flow(weights: TwoLayerWeights, coefficients: HermiteCoefficients, epsilon, t1: float, *,
                             saveat=None, solver=None, backend: str = "diffrax", rtol: float = 1e-10,
                             atol: float = 1e-12, max_steps: int = 100_000):
    r"""Solve ``WeightSpaceFlow`` from ``weights`` (one network) with ``reducedflow.solve``.

    The default solver is ``diffrax.Dopri8()`` (``"DOP853"`` with ``backend="scipy"``), explicit:
    an implicit solver would build and factor the dense $m(d+1)$-dimensional Jacobian at every
    step. It is adequate while the fast rate $\sim U(\cdot)/(m\varepsilon)$ times ``t1`` is
    moderate (e.g. $\varepsilon\ge10^{-2}$); pass ``solver`` for stiffer cases. The scipy backend
    compiles only the vector field (seconds instead of tens of seconds on a small CPU).

    **Returns:** a ``Trajectory`` with observables ``risk``, ``overlap``, ``gram``,
    ``norm_drift`` (compare with ``solve(SingleIndexExact(...), weights.order_parameters(), ...)``).
    """
    import diffrax as dfx

    from .._solve import solve

    _check_weights(weights)
    if weights.batched:
        raise ValueError("`weights` must be one network (unbatched); use weights.seed(i).")
    system = WeightSpaceFlow(coefficients, epsilon, weights.teacher, weights.width)
    y0 = {"second_layer": weights.second_layer, "first_layer": weights.first_layer}
    if solver is None:
        solver = "DOP853" if backend == "scipy" else dfx.Dopri8()
    return solve(system, y0, t1, saveat=saveat, solver=solver, backend=backend, rtol=rtol, atol=atol,
                 max_steps=max_steps)


# ----------------------------------------------------------------------------------------------
# Online SGD


@dataclasses.dataclass(frozen=True)
class SingleIndexSGDTrajectory:
    r"""What ``online_sgd`` recorded for S seeds at T times.

    **Attributes:** ``times`` ($t$ = steps $\times\eta$, ``(T,)``); ``second_layer`` ``(S, T, m)``,
    ``overlap`` ``(S, T, m)``, ``gram`` ``(S, T, m, m)`` measured from the weights; ``risk``
    ``(S, T)`` (the exact formula at the measured order parameters, without label noise; exact
    for the polynomial activation), ``residuals`` $r_k$ ``(S, T, K + 1)``, ``norm_drift``
    ``(S, T)``; ``learning_rate``, ``batch_size``, ``dimension``, ``run_seconds`` (compile included).
    """

    times: np.ndarray
    second_layer: np.ndarray
    overlap: np.ndarray
    gram: np.ndarray
    risk: np.ndarray
    residuals: np.ndarray
    norm_drift: np.ndarray
    learning_rate: float
    batch_size: int
    dimension: int
    run_seconds: float

    def initial_state(self, seed: int = 0) -> dict[str, np.ndarray]:
        """The measured initial ``SingleIndexExact`` state of one seed."""
        return {"second_layer": self.second_layer[seed, 0], "overlap": self.overlap[seed, 0], "gram": self.gram[seed, 0]}

    def state(self, seed: int = 0) -> dict[str, np.ndarray]:
        """The measured order parameters of one seed (leading time axis)."""
        return {"second_layer": self.second_layer[seed], "overlap": self.overlap[seed], "gram": self.gram[seed]}


@eqx.filter_jit
def _sgd_run(a0, u0, teacher, keys, activation, target, eta, eta_a, noise, n_records, steps_per_record, batch_size):
    m, d = u0.shape[-2:]

    def one_seed(a, u, key):
        def loss(params, x, y):
            a, u = params
            f = activation(x @ u.T) @ a / m
            return 0.5 * jnp.mean((y - f) ** 2)

        def step(carry, k):
            a, u = carry
            kx, kz = jr.split(k)
            x = jr.normal(kx, (batch_size, d))
            y = target(x @ teacher) + noise * jr.normal(kz, (batch_size,))
            ga, gu = jax.grad(loss)((a, u), x, y)
            gu = gu - jnp.sum(gu * u, axis=1, keepdims=True) * u
            u = u - eta * m * gu
            u = u / jnp.linalg.norm(u, axis=1, keepdims=True)
            a = a - eta_a * m * ga
            return (a, u), None

        def measure(a, u):
            q = u @ u.T
            return a, u @ teacher, q, jnp.max(jnp.abs(jnp.sqrt(jnp.diag(q)) - 1.0))

        def record(carry, k):
            carry, _ = jax.lax.scan(step, carry, jr.split(k, steps_per_record))
            return carry, measure(*carry)

        first = measure(a, u)
        _, rest = jax.lax.scan(record, (a, u), jr.split(key, n_records))
        return jax.tree.map(lambda f, r: jnp.concatenate([f[None], r]), first, rest)

    return jax.vmap(one_seed)(a0, u0, keys)


@eqx.filter_jit
def _measured_observables(system, states):
    return jax.vmap(jax.vmap(lambda y: system.observables(0.0, y)))(states)


def online_sgd(weights: TwoLayerWeights, coefficients: HermiteCoefficients, epsilon, t1: float, *,
               learning_rate: float, batch_size: int = 1, noise: float = 0.0, n_records: int = 20, key=0,
               activation=None, target=None) -> SingleIndexSGDTrajectory:
    r"""Spherical online SGD on fresh Gaussian samples (note §13, witness 4), vectorised over seeds.

    Each step draws $x^{(b)}\sim N(0, I_d)$, $y^{(b)} = \varphi(\langle u_*, x^{(b)}\rangle) + \varsigma\,\xi^{(b)}$
    ($b\le B$), takes the mini-batch loss $\ell = \frac1{2B}\sum_b(y^{(b)} - f(x^{(b)}))^2$ and

    $$a \leftarrow a - \frac\eta\varepsilon\,m\nabla_a\ell,\qquad
      u_i \leftarrow \frac{u_i - \eta\,m\,(I - u_iu_i^\top)\nabla_{u_i}\ell}{\|\cdot\|},$$

    so that $E[m\nabla\ell] = m\nabla R$ and time $t$ = steps $\times\,\eta$ matches the flow
    $\varepsilon\dot a = -m\nabla_aR$, $\dot u_i = -m(I - u_iu_i^\top)\nabla_{u_i}R$. The gap to that
    flow has a bias of order $\eta d/B$ (the renormalisation and the $\eta^2$ terms of $Q$: each
    step adds $\eta^2\|m\nabla_{u_i}\ell\|^2\sim\eta^2d/B$) and fluctuations of order
    $\sqrt{\eta/B}$: the SGD path tracks ``SingleIndexExact`` when $\eta d/B\ll1$.

    **Arguments:**

    - ``weights``: initial ``TwoLayerWeights`` (a batch from ``sample_weights(..., seeds=S)``, or one network).
    - ``coefficients``, ``epsilon`` (> 0): as in ``SingleIndexExact``.
    - ``t1``: final time (> 0); ``round(t1 / (eta n_records))`` steps per record.
    - ``learning_rate`` $\eta > 0$ (first layer; the second layer uses $\eta/\varepsilon$).
    - ``batch_size`` $B\ge1$; ``noise`` $\varsigma\ge0$; ``n_records`` (records after $t = 0$).
    - ``key``: seed or key (one sample stream per seed).
    - ``activation``, ``target``: JAX callables (default: the Hermite series of ``coefficients``).

    **Returns:** ``SingleIndexSGDTrajectory``.
    """
    _check_weights(weights)
    _check_epsilon(epsilon)
    check_positive("t1", t1)
    check_positive("learning_rate", learning_rate)
    check_positive("noise", noise, allow_zero=True)
    batch_size = check_integer("batch_size", batch_size, minimum=1)
    n_records = check_integer("n_records", n_records, minimum=1)
    sigma, phi = _functions(coefficients, activation, target)
    if not weights.batched:
        weights = TwoLayerWeights(weights.second_layer[None], weights.first_layer[None], weights.teacher)
    n_seeds, m = weights.second_layer.shape
    steps_per_record = max(1, round(t1 / (learning_rate * n_records)))
    keys = jr.split(as_key(key), n_seeds)
    eta = jnp.asarray(learning_rate, jnp.float64)
    start = time.perf_counter()
    a, s, q, drift = _sgd_run(weights.second_layer, weights.first_layer, weights.teacher, keys, sigma, phi, eta,
                              eta / epsilon, jnp.asarray(noise, jnp.float64), n_records, steps_per_record, batch_size)
    jax.block_until_ready(a)
    seconds = time.perf_counter() - start
    q = 0.5 * (q + jnp.swapaxes(q, -1, -2))
    q = q * (1.0 - jnp.eye(m)) + jnp.eye(m)
    obs = _measured_observables(SingleIndexExact(coefficients, epsilon, m), {"second_layer": a, "overlap": s, "gram": q})
    times = np.arange(n_records + 1) * steps_per_record * float(learning_rate)
    return SingleIndexSGDTrajectory(times, np.asarray(a), np.asarray(s), np.asarray(q), np.asarray(obs["risk"]),
                                    np.asarray(obs["residuals"]), np.asarray(drift), float(learning_rate),
                                    batch_size, weights.dimension, seconds)


# ----------------------------------------------------------------------------------------------
# Witness 5: the mean-field flow is approached as the width grows


@dataclasses.dataclass(frozen=True)
class MeanFieldGap:
    r"""``SingleIndexExact`` from the $d = \infty$ state against ``SingleIndexMeanField``, per width.

    **Attributes:** ``widths`` ``(W,)``, ``times`` ``(T,)``, ``risk_exact`` and
    ``risk_mean_field`` ``(W, T)``, ``risk_gap`` $\max_t|R - R_{\rm mf}|$ ``(W,)``,
    ``overlap_gap`` $\max_{t,i}|s_i - s_i^{\rm mf}|$ ``(W,)``, ``gram_deviation``
    $\max_t\max_{i\ne j}|Q_{ij} - s_is_j|$ of the exact flow ``(W,)``, ``fit`` (``ScalingFit`` of
    ``risk_gap`` against the width, or ``None`` with fewer than 3 widths).
    """

    widths: np.ndarray
    times: np.ndarray
    risk_exact: np.ndarray
    risk_mean_field: np.ndarray
    risk_gap: np.ndarray
    overlap_gap: np.ndarray
    gram_deviation: np.ndarray
    fit: object | None

    def plot(self, ax=None):
        """Risk curves (exact solid, mean-field dashed) per width on a log time axis."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        for w, re, rm in zip(self.widths, self.risk_exact, self.risk_mean_field):
            (line,) = ax.plot(self.times, re, label=f"exact, m = {w}")
            ax.plot(self.times, rm, "--", color=line.get_color())
        ax.set_xscale("symlog", linthresh=float(self.times[1]) if len(self.times) > 1 and self.times[1] > 0 else 1e-3)
        ax.set_xlabel("t")
        ax.set_ylabel("risk")
        ax.legend()
        return ax


def mean_field_gap(coefficients: HermiteCoefficients, epsilon, widths: Sequence[int], t1: float, *,
                   law: str = "gaussian", scale: float = 1.0, n_times: int = 60, rtol: float = 1e-9,
                   atol: float = 1e-11, solver=None, backend: str = "diffrax") -> MeanFieldGap:
    r"""Note §13, witness 5: from the $d = \infty$ state $s = 0$, $Q = I$ (exactly realisable for
    $d\ge m + 1$; the exact system is $d$-independent apart from its initial state) with
    quantile second-layer weights ``initial_second_layer(m, law, scale)``, solve
    ``SingleIndexExact`` and ``SingleIndexMeanField`` at each width $m$ and measure the gap.
    The two differ at $O(1/m)$: the exact risk has $U(1)$ on the diagonal where the mean-field
    one has $U(s_i^2)$, and $Q - ss^\top$ drifts at $O(1/m)$. A target with $\sigma_1\varphi_1\ne0$
    is needed for anything to happen ($s\equiv0$ is invariant otherwise).

    **Arguments:** ``coefficients``, ``epsilon`` (> 0), ``widths`` (integers >= 1), ``t1`` (> 0),
    ``law``/``scale`` of $a(0)$, ``n_times`` save times (linear in $[0, t_1]$); ``rtol``, ``atol``,
    ``solver``, ``backend`` as in ``reducedflow.solve`` (each width is a new shape, hence a new
    compilation with the diffrax backend; ``backend="scipy"`` compiles only the vector field).

    **Returns:** ``MeanFieldGap``.
    """
    from .._solve import solve

    _check_epsilon(epsilon)
    check_positive("t1", t1)
    widths = [check_integer("widths", w, minimum=1) for w in widths]
    if not widths:
        raise ValueError("`widths` must hold at least one width.")
    n_times = check_integer("n_times", n_times, minimum=2)
    ts = np.linspace(0.0, float(t1), n_times)
    exact_risk, mf_risk, risk_gap, overlap_gap, gram_dev = [], [], [], [], []
    for m in widths:
        a0 = jnp.asarray(initial_second_layer(m, law, scale))
        exact = solve(SingleIndexExact(coefficients, epsilon, m),
                      {"second_layer": a0, "overlap": jnp.zeros(m), "gram": jnp.eye(m)}, t1, saveat=ts,
                      rtol=rtol, atol=atol, solver=solver, backend=backend)
        mf = solve(SingleIndexMeanField(coefficients, epsilon, m), {"second_layer": a0, "overlap": jnp.zeros(m)}, t1,
                   saveat=ts, rtol=rtol, atol=atol, solver=solver, backend=backend)
        exact_risk.append(exact.observables["risk"])
        mf_risk.append(mf.observables["risk"])
        risk_gap.append(np.max(np.abs(exact.observables["risk"] - mf.observables["risk"])))
        overlap_gap.append(np.max(np.abs(np.asarray(exact.ys["overlap"]) - np.asarray(mf.ys["overlap"]))))
        gram_dev.append(np.max(exact.observables["gram_deviation"]))
    fit = None
    risk_gap = np.asarray(risk_gap)
    if len(widths) >= 3 and np.all(risk_gap > 0):
        from ..analysis.plateaus import fit_scaling

        fit = fit_scaling(np.asarray(widths, float), risk_gap)
    return MeanFieldGap(np.asarray(widths), ts, np.asarray(exact_risk), np.asarray(mf_risk), risk_gap,
                        np.asarray(overlap_gap), np.asarray(gram_dev), fit)


# ----------------------------------------------------------------------------------------------
# Validation: SGD at several widths / dimensions against a reduced flow


@dataclasses.dataclass(frozen=True)
class SingleIndexConvergence(ConvergenceResult):
    r"""A ``reducedflow.validate.ConvergenceResult`` with seeds: ``values`` are the widths or
    dimensions, ``errors[i]`` the mean over seeds of ``seed_errors[i]``, and

    - ``seed_errors`` ``(n_values, S)``: per seed, $\max_t$ of the deviation of the measured
      order parameter ``measure`` from the reduced flow started at that seed's measured state;
    - ``fit``: ``fit_scaling(values, seed_errors)`` (the exponent with a standard error, the
      seeds as repeats), or ``None`` when it cannot be fitted;
    - ``learning_rates``, ``dimensions``, ``widths`` per value; ``reference``; ``measure``.
    """

    seed_errors: np.ndarray = None
    fit: object | None = None
    learning_rates: np.ndarray = None
    dimensions: np.ndarray = None
    widths: np.ndarray = None
    reference: str = "exact"
    measure: str = "risk"

    def plot(self, ax=None):
        """Log-log plot of the per-seed and mean errors against the varied parameter, with the fit."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5, 4))
        for i, v in enumerate(self.values):
            ax.plot(np.full(self.seed_errors.shape[1], v), self.seed_errors[i], "o", color="0.6", ms=4)
        ax.plot(self.values, self.errors, "s-", label="mean over seeds")
        if self.fit is not None:
            grid = np.geomspace(np.min(self.values), np.max(self.values), 50)
            ax.plot(grid, self.fit.predict(grid), "k--",
                    label=f"fit: exponent {self.fit.exponent:.2f} ± {self.fit.stderr:.2f}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(self.parameter)
        ax.set_ylabel(f"max_t |{self.measure}(SGD) - {self.measure}({self.reference})|")
        ax.legend()
        return ax


def _broadcast(name, values, n):
    arr = list(values) if isinstance(values, (list, tuple, np.ndarray)) else [values]
    if len(arr) == 1:
        arr = arr * n
    if len(arr) != n:
        raise ValueError(f"`{name}` must be one value or {n} values (one per run); got {values!r}.")
    return arr


def validate_single_index(widths, seeds: int, *, coefficients: HermiteCoefficients, epsilon, t1: float,
                          dimensions=1000, learning_rates=None, step_constant: float = 1.0, batch_size: int = 1,
                          reference: str = "exact", measure: str = "risk", law: str = "gaussian",
                          scale: float = 1.0, second_layer=None, alignment=None, n_records: int = 10, key=0,
                          rtol: float = 1e-9, atol: float = 1e-11, solver=None,
                          backend: str = "diffrax") -> SingleIndexConvergence:
    r"""Train single-index networks by ``online_sgd`` at several (width, dimension) pairs and
    seeds and compare with a reduced flow solved from each seed's measured initial state.

    - ``reference="exact"``: ``SingleIndexExact`` from the measured $(a, s, Q)$; the gap is the
      SGD error only: bias $O(\eta d/B)$ plus fluctuations $O(\sqrt{\eta/B})$. The default
      learning rate $\eta = c\,d^{-3/2}$ (``step_constant`` $c$) makes both vanish,
      the gap then being $O(d^{-1/2})$.
    - ``reference="mean_field"``: ``SingleIndexMeanField`` from the measured $(a, s)$; the gap
      adds the finite-width error $O(1/m)$ of the mean-field description (note §5).

    The varied parameter is ``"dimension"`` if the dimensions differ, else ``"width"``.

    **Arguments:**

    - ``widths``: widths $m$ (one or several); ``dimensions``: $d$ (one or several), paired with
      ``widths`` after broadcasting; at least two runs.
    - ``seeds``: networks per run (integer >= 1; >= 2 for a fit with error bars).
    - ``coefficients``, ``epsilon`` (> 0), ``t1`` (> 0): the problem and the horizon.
    - ``learning_rates``: $\eta$ per run (default $c\,d^{-3/2}$); ``batch_size``.
    - ``measure``: the order parameter whose deviation is measured (``"risk"``, ``"overlap"``,
      ``"second_layer"``).
    - ``law``, ``scale``, ``second_layer``, ``alignment``: initial weights (``sample_weights``;
      e.g. ``second_layer=initial_second_layer(m)`` gives every seed the same quantile $a(0)$,
      which makes the gaps less variable between seeds).
    - ``n_records``, ``key``; ``rtol``, ``atol``, ``solver``, ``backend`` of the reduced solves
      (``reducedflow.solve``).

    **Returns:** ``SingleIndexConvergence`` (a ``ConvergenceResult``): its ``results`` hold one
    ``ValidationResult`` per run with order parameters ``risk`` ``(T, S)``, ``overlap`` and
    ``second_layer`` ``(T, S, m)`` from the network and from the reduced solve.
    """
    from .._solve import solve

    _check_epsilon(epsilon)
    check_positive("t1", t1)
    check_in("reference", reference, ("exact", "mean_field"))
    check_in("measure", measure, ("risk", "overlap", "second_layer"))
    check_positive("step_constant", step_constant)
    seeds = check_integer("seeds", seeds, minimum=1)
    n_runs = max(len(v) if isinstance(v, (list, tuple, np.ndarray)) else 1 for v in (widths, dimensions))
    widths = [check_integer("widths", w, minimum=1) for w in _broadcast("widths", widths, n_runs)]
    dimensions = [check_integer("dimensions", d, minimum=2) for d in _broadcast("dimensions", dimensions, n_runs)]
    if n_runs < 2:
        raise ValueError("`widths`/`dimensions` must describe at least two runs to measure a convergence rate.")
    if learning_rates is None:
        learning_rates = [step_constant / d**1.5 for d in dimensions]
    learning_rates = [check_real("learning_rates", eta) for eta in _broadcast("learning_rates", learning_rates, n_runs)]
    check_positive("learning_rates", learning_rates)
    parameter = "dimension" if len(set(dimensions)) > 1 else "width"
    values = np.asarray(dimensions if parameter == "dimension" else widths, dtype=float)

    rng = generator(key)
    results, seed_errors = [], []
    for m, d, eta in zip(widths, dimensions, learning_rates):
        run_seed, weight_seed = (int(v) for v in rng.integers(0, 2**31 - 1, size=2))
        weights = sample_weights(m, d, key=weight_seed, seeds=seeds, law=law, scale=scale, second_layer=second_layer,
                                 alignment=alignment)
        run = online_sgd(weights, coefficients, epsilon, t1, learning_rate=eta, batch_size=batch_size,
                         n_records=n_records, key=run_seed)
        times = run.times
        if reference == "exact":
            system = SingleIndexExact(coefficients, epsilon, m)
        else:
            system = SingleIndexMeanField(coefficients, epsilon, m)
        reduced = {"risk": [], "overlap": [], "second_layer": []}
        for i in range(seeds):
            y0 = run.initial_state(i)
            if reference == "mean_field":
                y0 = {"second_layer": y0["second_layer"], "overlap": y0["overlap"]}
            traj = solve(system, y0, float(times[-1]), saveat=times, rtol=rtol, atol=atol, solver=solver,
                         backend=backend)
            reduced["risk"].append(traj.observables["risk"])
            reduced["overlap"].append(np.asarray(traj.ys["overlap"]))
            reduced["second_layer"].append(np.asarray(traj.ys["second_layer"]))
        reduced = {k: np.stack(v, axis=1) for k, v in reduced.items()}  # time axis first
        network = {"risk": run.risk.T, "overlap": np.swapaxes(run.overlap, 0, 1),
                   "second_layer": np.swapaxes(run.second_layer, 0, 1)}
        result = ValidationResult(
            family="single_index",
            times=times,
            reduced=reduced,
            network=network,
            parameters={"width": m, "dimension": d, "learning_rate": eta, "batch_size": batch_size,
                        "epsilon": float(np.asarray(epsilon)), "seeds": seeds, "reference": reference,
                        "sgd_seconds": run.run_seconds},
            diagnostics={"norm_drift": run.norm_drift.T},
            dims={"risk": ("seed",), "overlap": ("seed", "neuron"), "second_layer": ("seed", "neuron")},
        )
        results.append(result)
        err = result.error[measure]
        seed_errors.append(np.max(err.reshape(err.shape[0], seeds, -1), axis=(0, 2)))
    seed_errors = np.asarray(seed_errors)
    fit = None
    if len(set(values.tolist())) >= 2 and seed_errors.size >= 3 and np.all(seed_errors > 0):
        from ..analysis.plateaus import fit_scaling

        try:
            fit = fit_scaling(values, seed_errors)
        except (OverflowError, ValueError):  # e.g. values too close together for a log-log fit
            fit = None
    return SingleIndexConvergence(
        parameter=parameter, values=values, errors=seed_errors.mean(axis=1), results=tuple(results),
        seed_errors=seed_errors, fit=fit, learning_rates=np.asarray(learning_rates),
        dimensions=np.asarray(dimensions), widths=np.asarray(widths), reference=reference, measure=measure,
    )
