r"""Finite-step validation of stochastic collapse: the actual discrete SGD maps against the Itô
SDEs that approximate them (Chen, Kunin, Yamamura, Ganguli 2023, "Stochastic Collapse: How Gradient
Noise Attracts SGD Dynamics Towards Simpler Subnetworks", arXiv:2306.04251; theory note
``shared/theory/stochastic_collapse.md`` §§7, 11, 13).

Three discrete maps, each an ``AbstractDiscreteSGD`` with a ``step(state, key)``:

- ``MinibatchSGD``: $\theta \leftarrow \theta - \frac\eta\beta\sum_{i\in B}\nabla\ell_i(\theta)$
  for any ``StochasticGradientFlow`` (the tanh neuron, a small two-layer network);
- ``TanhNeuronLabelNoiseGD``: full-batch gradient descent on labels perturbed afresh by
  $N(0, m\zeta^2)$, whose Euler–Maruyama SDE with $h = \eta$ is exactly ``TanhNeuron``;
- ``ModeLabelNoiseSGD``: the label-noise update of the aligned teacher–student modes,
  $r = uv - s + \sigma\xi$, $u \leftarrow u - \eta r v$, $v \leftarrow v - \eta r u$.

Near an invariant point where every per-sample gradient vanishes, the map is linear in the
normal coordinates, $z_{k+1} = (I - \eta H_{B_k}) z_k$, and its growth rate per unit time
$t = k\eta$ differs from the SDE's at $O(\eta)$. For a single multiplier
$1 + h a + \sqrt h\,b\,\xi$ (label noise)

$$\lambda_h = \frac1h E\log|1 + ha + \sqrt h\,b\,\xi| = a - \frac{b^2}2 + O(h),$$

computed here by quadrature (``discrete_multiplier_exponent``); for minibatch noise it is an
exact finite average (tanh neuron, commuting Hessians) or a random-matrix product
(``linearised_sgd_exponents``). Sweeps of the collapse fraction against the learning rate
(``collapse_fraction_vs_learning_rate``) carry Wilson intervals.
"""

from __future__ import annotations

import abc
import dataclasses
import math
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from scipy import integrate, optimize

from .._checks import as_float_array, check_integer, check_positive, check_real
from .._random import as_key
from ..analysis.attractivity import LinearisedNormalDynamics, collapse_probability
from .collapse import LabelNoiseModes, TanhNeuron
from .sgd_flow import StochasticGradientFlow


# ----------------------------------------------------------------------------------------------
# exponents of one random multiplier


def gaussian_log_moment(mean, std) -> float:
    r"""$E\log|\mu + s\xi|$ for $\xi \sim N(0, 1)$, by adaptive quadrature split at the
    (integrable) logarithmic singularity $\xi = -\mu/s$.

    **Arguments:** ``mean`` $\mu$ (real), ``std`` $s \ge 0$. **Returns:** a float
    ($-\infty$ when $\mu = s = 0$).
    """
    mean = check_real("mean", mean)
    check_positive("std", std, allow_zero=True)
    std = float(std)
    if std == 0.0:
        return math.log(abs(mean)) if mean != 0.0 else -math.inf
    shift = mean / std  # E log|mean + std xi| = log std + E log|shift + xi|
    density = lambda z: math.exp(-0.5 * (z - shift) ** 2) / math.sqrt(2 * math.pi)
    f = lambda z: math.log(abs(z)) * density(z) if z != 0.0 else 0.0
    lo, hi = shift - 40.0, shift + 40.0
    pieces = ((lo, 0.0), (0.0, hi)) if lo < 0.0 < hi else ((lo, shift), (shift, hi))
    with warnings.catch_warnings():  # QUADPACK warns needlessly near the endpoint singularity
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        total = sum(integrate.quad(f, a, b, limit=200, epsabs=1e-13, epsrel=1e-11)[0] for a, b in pieces)
    return math.log(std) + total


def discrete_multiplier_exponent(drift, volatility, step) -> float:
    r"""Growth rate per unit time of the map $X \leftarrow X(1 + ha + \sqrt h\,b\,\xi)$,
    $\lambda_h = \frac1h E\log|1 + ha + \sqrt h\,b\,\xi|$: the Euler–Maruyama (label-noise SGD)
    counterpart of the Itô exponent $a - b^2/2$ of $dX = aX\,dt + bX\,dB$, with
    $\lambda_h = a - b^2/2 + h(-a^2/2 + ab^2 - 3b^4/4) + O(h^2)$ (theory note §13).

    **Arguments:** ``drift`` $a$, ``volatility`` $b \ge 0$, ``step`` $h > 0$. **Returns:** a float.
    """
    check_positive("step", step)
    check_positive("volatility", volatility, allow_zero=True)
    h = float(step)
    return gaussian_log_moment(1.0 + h * float(drift), math.sqrt(h) * float(volatility)) / h


def _first_root(fn, lo, hi, name, n_grid=60):
    """The first sign change of ``fn`` on a geometric grid over ``[lo, hi]``, refined by Brent's
    method (exponents of discrete maps are not monotone in the learning rate: very large steps
    make the multiplier explode again)."""
    grid = np.geomspace(lo, hi, n_grid)
    values = np.array([fn(g) for g in grid])
    change = np.flatnonzero(np.sign(values[1:]) != np.sign(values[:-1]))
    if change.size == 0:
        raise ValueError(
            f"the {name} exponent does not change sign for learning rates in [{lo:g}, {hi:g}] "
            f"(from {values[0]:.3g} to {values[-1]:.3g}): no collapse threshold there."
        )
    i = int(change[0])
    return float(optimize.brentq(fn, grid[i], grid[i + 1], xtol=1e-14, rtol=1e-10))


# ----------------------------------------------------------------------------------------------
# discrete maps


class AbstractDiscreteSGD(eqx.Module):
    """A discrete stochastic map $\\theta_{k+1} = \\Phi(\\theta_k, \\xi_k)$ with a learning rate
    $\\eta$ (time $t = k\\eta$): subclasses define ``learning_rate``, ``state_size``, ``step``
    and ``with_learning_rate``."""

    @property
    @abc.abstractmethod
    def learning_rate(self) -> jax.Array:
        """The step $\\eta$ (also the time of one step)."""

    @abc.abstractmethod
    def state_size(self) -> int:
        """The length of the flat state."""

    @abc.abstractmethod
    def step(self, state: jax.Array, key: jax.Array) -> jax.Array:
        """One step of the map with randomness from ``key``."""

    @abc.abstractmethod
    def with_learning_rate(self, learning_rate) -> "AbstractDiscreteSGD":
        """The same map at another learning rate."""

    def distance_to_set(self, state: jax.Array) -> jax.Array:
        """Distance to the invariant set studied (default: $\\|\\theta\\|$, the origin)."""
        return jnp.linalg.norm(state, axis=-1)


class MinibatchSGD(AbstractDiscreteSGD):
    r"""Minibatch SGD on the per-sample losses of a ``StochasticGradientFlow``,
    $\theta_{k+1} = \theta_k - \frac\eta\beta\sum_{i\in B_k}\nabla\ell_i(\theta_k)$, batches of
    size $\beta$ drawn uniformly with replacement (the map ``sgd_flow.sgd_paths`` iterates; the
    flow is its SDE, $d\theta = -\nabla L\,dt + \sqrt{\eta/\beta}\,\Sigma^{1/2}dB$).

    **Arguments:** ``flow``: a ``StochasticGradientFlow`` (loss, data, $\eta$, $\beta$).
    """

    flow: StochasticGradientFlow
    batch_size: int = eqx.field(static=True)

    def __init__(self, flow: StochasticGradientFlow):
        if not isinstance(flow, StochasticGradientFlow):
            raise ValueError(f"`flow` must be a StochasticGradientFlow; got {type(flow).__name__}.")
        self.flow = flow
        self.batch_size = int(flow.batch_size)

    @property
    def learning_rate(self):
        return self.flow.learning_rate

    def state_size(self):
        return self.flow.dimension

    def with_learning_rate(self, learning_rate):
        check_positive("learning_rate", learning_rate)
        return eqx.tree_at(lambda s: s.flow.learning_rate, self, as_float_array(learning_rate))

    def step(self, theta, key):
        flow = self.flow
        idx = jr.randint(key, (self.batch_size,), 0, flow.inputs.shape[0])
        grads = jax.vmap(jax.grad(flow.per_sample_loss), in_axes=(None, 0, 0))(theta, flow.inputs[idx], flow.targets[idx])
        return theta - flow.learning_rate * jnp.mean(grads, axis=0)


def tanh_neuron_loss(w, x, y):
    r"""Per-sample loss of the tanh neuron, $\tfrac12(w_2\tanh(w_1 x) - y)^2$."""
    return 0.5 * (w[1] * jnp.tanh(w[0] * x) - y) ** 2


def tanh_neuron_minibatch_sgd(x, y, learning_rate, batch_size: int = 1) -> MinibatchSGD:
    """``MinibatchSGD`` on the tanh neuron $f(x; w) = w_2\\tanh(w_1 x)$ with data ``x``, ``y``
    (1-D, equal length)."""
    x, y = as_float_array(x), as_float_array(y)
    if x.ndim != 1 or x.shape != y.shape or x.size == 0:
        raise ValueError(f"`x` and `y` must be non-empty 1-D arrays of equal length; got shapes {x.shape}, {y.shape}.")
    return MinibatchSGD(StochasticGradientFlow(tanh_neuron_loss, x, y, learning_rate, batch_size, dimension=2))


def tanh_neuron_minibatch_exponents(x, y, learning_rate, batch_size: int = 1, *, n_draws: int = 400_000, seed: int = 0):
    r"""Top growth rates at the origin of minibatch SGD on the tanh neuron and of its SDE.

    Near $w = 0$ every per-sample gradient is $-x_iy_i(w_2, w_1)$, so in $u = w_1 + w_2$,
    $v = w_1 - w_2$ the map is $u \leftarrow u(1 + \eta c_B)$, $v \leftarrow v(1 - \eta c_B)$ with
    $c_B$ the batch mean of $z_i = x_iy_i$ (one draw per step for both). Per unit time:

    - map: $\lambda = \max_\pm \frac1\eta E\log|1 \pm \eta c_B|$ (an exact average over the $m$
      samples for $\beta = 1$, else over ``n_draws`` seeded batch draws);
    - SDE: $\lambda = |\bar z| - \frac{\eta}{2\beta}\mathrm{Var}(z)$, so the SDE predicts collapse
      iff $\eta > \eta_c = 2\beta|\bar z|/\mathrm{Var}(z)$ ($\mathrm{Var}$ over the $m$ samples).

    **Returns:** ``(map_exponent, sde_exponent)`` as floats.
    """
    z = np.asarray(x, float) * np.asarray(y, float)
    eta = float(learning_rate)
    check_positive("learning_rate", eta)
    batch_size = check_integer("batch_size", batch_size)
    if batch_size == 1:
        c_batch = z
    else:
        rng = np.random.default_rng(seed)
        c_batch = z[rng.integers(0, z.size, (n_draws, batch_size))].mean(axis=1)
    with np.errstate(divide="ignore"):
        map_exp = max(np.mean(np.log(np.abs(1 + eta * c_batch))), np.mean(np.log(np.abs(1 - eta * c_batch)))) / eta
    sde_exp = abs(z.mean()) - eta * z.var() / (2 * batch_size)
    return float(map_exp), float(sde_exp)


class TanhNeuronLabelNoiseGD(AbstractDiscreteSGD):
    r"""Full-batch gradient descent of the tanh neuron on labels perturbed afresh every step,
    $w_{k+1} = w_k - \eta\nabla_w\frac1{2m}\sum_j(f(x_j; w_k) - y_j - \epsilon_{k,j})^2$,
    $\epsilon_{k,j} \sim N(0, m\zeta^2)$: one Euler–Maruyama step of ``TanhNeuron`` (the
    authors' Fig. 2 SDE) with $h = \eta$, so it is the SGD map that SDE stands for.

    Linearised at 0 it multiplies $u = w_1 + w_2$ by $1 + \eta\bar c + \eta\zeta\bar s\xi$ and
    $v = w_1 - w_2$ by $1 - \eta\bar c - \eta\zeta\bar s\xi$ (same $\xi$), $\bar c = \overline{xy}$,
    $\bar s^2 = \overline{x^2}$.

    **Arguments:** ``neuron``: a ``TanhNeuron`` (data, $\eta$, $\zeta$).
    """

    neuron: TanhNeuron

    def __init__(self, neuron: TanhNeuron):
        if not isinstance(neuron, TanhNeuron):
            raise ValueError(f"`neuron` must be a TanhNeuron; got {type(neuron).__name__}.")
        self.neuron = neuron

    @property
    def learning_rate(self):
        return self.neuron.learning_rate

    def state_size(self):
        return 2

    def with_learning_rate(self, learning_rate):
        check_positive("learning_rate", learning_rate)
        return eqx.tree_at(lambda s: s.neuron.learning_rate, self, as_float_array(learning_rate))

    def step(self, w, key):
        nn = self.neuron
        m = nn.x.size
        noisy = nn.y + jnp.sqrt(m) * nn.label_noise * jr.normal(key, (m,))
        grad = jax.grad(lambda v: 0.5 * jnp.mean((nn.predictions(v) - noisy) ** 2))(w)
        return w - nn.learning_rate * grad

    def _moments(self):
        nn = self.neuron
        c = float(jnp.mean(nn.x * nn.y))
        vol = math.sqrt(float(nn.learning_rate) * float(jnp.mean(nn.x**2))) * float(nn.label_noise)
        return c, vol

    def map_exponent(self) -> float:
        r"""Top growth rate of the linearised map at 0, per unit time:
        $\max_\pm \frac1\eta E\log|1 \pm \eta\bar c + \eta\zeta\bar s\xi|$ (quadrature)."""
        c, vol = self._moments()
        eta = float(self.learning_rate)
        return max(discrete_multiplier_exponent(c, vol, eta), discrete_multiplier_exponent(-c, vol, eta))

    def sde_exponent(self) -> float:
        r"""The SDE's $|\bar c| - \tfrac12\eta\zeta^2\bar s^2$ (``TanhNeuron.lyapunov_exponent``)."""
        return float(self.neuron.lyapunov_exponent())

    def map_critical_learning_rate(self) -> float:
        """The learning rate at which ``map_exponent`` changes sign (the discrete threshold)."""
        eta_sde = float(self.neuron.critical_learning_rate())
        return _first_root(lambda eta: self.with_learning_rate(eta).map_exponent(), 0.05 * eta_sde, 3 * eta_sde, "map")


class ModeLabelNoiseSGD(AbstractDiscreteSGD):
    r"""The label-noise SGD map of the aligned teacher–student modes (theory note §11),
    $r_i = u_iv_i - s_i + \sigma\xi_i$, $u_i \leftarrow u_i - \eta r_iv_i$, $v_i \leftarrow v_i - \eta r_iu_i$
    (``LabelNoiseModes.discrete_step``); its SDE is ``LabelNoiseModes``. State
    ``[u_1..u_k, v_1..v_k]``.

    On the balanced line $u = v$, $\hat s = uv$ obeys $\hat s' = \hat s(1 - \eta r)^2$ exactly, so
    stationarity of $E\log\hat s$ gives $E\log|1 - \eta r| = 0$; expanding in $\eta$ at fixed
    $\kappa^2 = \eta\sigma^2$ (derived here),

    $$E\hat s = s - \frac{\kappa^2}2 - \eta\Big(\frac{s\kappa^2}2 + \frac{\kappa^4}8\Big) + O(\eta^2),$$

    the SDE's soft-thresholded mean $s - \kappa^2/2$ plus the map's $O(\eta)$ correction; and a
    mode collapses iff $\frac2\eta E\log|1 + \eta s + \eta\sigma\xi| < 0$ (SDE: iff $s < \kappa^2/2$).

    **Arguments:** ``modes``: a ``LabelNoiseModes`` (singular values, $\eta$, $\sigma$).
    """

    modes: LabelNoiseModes

    def __init__(self, modes: LabelNoiseModes):
        if not isinstance(modes, LabelNoiseModes):
            raise ValueError(f"`modes` must be a LabelNoiseModes; got {type(modes).__name__}.")
        self.modes = modes

    @property
    def learning_rate(self):
        return self.modes.learning_rate

    def state_size(self):
        return 2 * self.modes.singular_values.size

    def with_learning_rate(self, learning_rate):
        check_positive("learning_rate", learning_rate)
        return eqx.tree_at(lambda s: s.modes.learning_rate, self, as_float_array(learning_rate))

    def step(self, y, key):
        return self.modes.discrete_step(y, jr.normal(key, self.modes.singular_values.shape))

    def distance_to_set(self, y):
        """$|u_iv_i|$ per mode (the mode strength's distance to the collapsed set)."""
        k = self.modes.singular_values.size
        return jnp.abs(y[..., :k] * y[..., k:])

    def stationary_mean(self) -> np.ndarray:
        r"""$E\hat s$ of the map to first order in $\eta$ (class docstring); 0 for collapsing modes."""
        s = np.asarray(self.modes.singular_values)
        eta = float(self.learning_rate)
        kappa2 = eta * float(self.modes.label_noise) ** 2
        mean = s - kappa2 / 2 - eta * (s * kappa2 / 2 + kappa2**2 / 8)
        return np.where(self.map_exponents() < 0, 0.0, mean)

    def map_exponents(self) -> np.ndarray:
        r"""Growth rate per unit time of $\hat s$ near 0 under the map, per mode:
        $\frac2\eta E\log|1 + \eta s_i + \eta\sigma\xi|$ (SDE: $2s_i - \eta\sigma^2$)."""
        eta = float(self.learning_rate)
        vol = math.sqrt(eta) * float(self.modes.label_noise)
        return np.array([2 * discrete_multiplier_exponent(s, vol, eta) for s in np.asarray(self.modes.singular_values)])

    def sde_exponents(self) -> np.ndarray:
        r"""$2s_i - \eta\sigma^2$, the SDE's growth rate of $\hat s$ at 0."""
        return 2 * np.asarray(self.modes.singular_values) - 2 * float(self.modes.collapse_threshold())


# ----------------------------------------------------------------------------------------------
# running a map


def _map_paths(sgd, states0, keys, counts):
    def path(state, key):
        def interval(carry, count_first):
            count, first = count_first
            carry = jax.lax.fori_loop(first, first + count, lambda i, s: sgd.step(s, jr.fold_in(key, i)), carry)
            return carry, carry

        firsts = jnp.concatenate([jnp.zeros(1, counts.dtype), jnp.cumsum(counts)[:-1]])
        _, saved = jax.lax.scan(interval, state, (counts, firsts))
        return jnp.concatenate([state[None], saved])

    return jax.vmap(path)(states0, keys)


def discrete_sgd_paths(sgd: AbstractDiscreteSGD, state0, n_steps: int, *, key, n_paths: int = 1, n_saves: int = 1):
    r"""Iterate a discrete SGD map on ``n_paths`` independent paths (a ``lax.scan`` vmapped over
    paths, compiled once per map type and shapes: the learning rate and the number of steps are
    not baked in). Step $k$ of path $p$ draws from ``fold_in(split(key, n_paths)[p], k)``.

    **Arguments:** ``sgd`` (an ``AbstractDiscreteSGD``), ``state0`` ``(n,)`` or ``(n_paths, n)``,
    ``n_steps``, ``key``, ``n_paths``, ``n_saves`` (states saved at ``n_saves`` evenly spaced
    steps after the start).

    **Returns:** ``(times, states)``: ``times = k * eta`` of the saved steps (start included),
    ``states`` of shape ``(n_paths, n_saves + 1, n)``.
    """
    from .._solve import _run_compiled

    if not isinstance(sgd, AbstractDiscreteSGD):
        raise ValueError(f"`sgd` must be an AbstractDiscreteSGD; got {type(sgd).__name__}.")
    n_steps = check_integer("n_steps", n_steps)
    n_paths = check_integer("n_paths", n_paths)
    n_saves = check_integer("n_saves", n_saves)
    if n_saves > n_steps:
        raise ValueError(f"`n_saves` must be at most n_steps = {n_steps}; got {n_saves}.")
    n = sgd.state_size()
    states0 = jnp.asarray(state0, dtype=jnp.float64)
    if states0.shape == (n,):
        states0 = jnp.broadcast_to(states0, (n_paths, n))
    elif states0.shape != (n_paths, n):
        raise ValueError(f"`state0` must have shape ({n},) or (n_paths, {n}) = ({n_paths}, {n}); got {states0.shape}.")
    if not bool(jnp.all(jnp.isfinite(states0))):
        raise ValueError("`state0` must be finite.")
    marks = np.rint(np.linspace(0, n_steps, n_saves + 1)).astype(np.int64)
    counts = np.diff(marks)
    out, _, _ = _run_compiled(
        _map_paths, dict(sgd=sgd, states0=states0, keys=jr.split(as_key(key), n_paths), counts=jnp.asarray(counts)), {}
    )
    return marks * float(sgd.learning_rate), np.asarray(out)


# ----------------------------------------------------------------------------------------------
# collapse probability against the learning rate


@dataclasses.dataclass(frozen=True)
class CollapseSweep:
    """The result of ``collapse_fraction_vs_learning_rate``.

    **Attributes:** ``learning_rates`` ``(L,)``; ``estimate``, ``low``, ``high``: collapse
    fractions with Wilson intervals, shape ``(L,)``; ``n_paths``; ``time`` (the time
    $t = k\\eta$ at which distances were measured); ``tol``; ``confidence``; ``map_exponent``,
    ``sde_exponent``: growth rates per unit time at the set, ``(L,)`` (NaN where the map has no
    closed form); ``distances``: ``(L, n_paths)`` (or ``(L, n_paths, k)`` for per-component
    sets such as modes: then the fractions are per component, shape ``(L, k)``).
    """

    learning_rates: np.ndarray
    estimate: np.ndarray
    low: np.ndarray
    high: np.ndarray
    n_paths: int
    time: float
    tol: float
    confidence: float
    map_exponent: np.ndarray
    sde_exponent: np.ndarray
    distances: np.ndarray = dataclasses.field(repr=False)

    def to_xarray(self):
        import xarray as xr

        dims = ("learning_rate",) + (("component",) if self.estimate.ndim == 2 else ())
        data = {name: (dims, getattr(self, name)) for name in ("estimate", "low", "high")}
        data["map_exponent"] = (dims, self.map_exponent)
        data["sde_exponent"] = (dims, self.sde_exponent)
        return xr.Dataset(
            data, coords={"learning_rate": self.learning_rates},
            attrs={"n_paths": self.n_paths, "time": self.time, "tol": self.tol, "confidence": self.confidence},
        )


def _exponents(sgd):
    if isinstance(sgd, TanhNeuronLabelNoiseGD):
        return sgd.map_exponent(), sgd.sde_exponent()
    if isinstance(sgd, ModeLabelNoiseSGD):
        return sgd.map_exponents(), sgd.sde_exponents()
    if isinstance(sgd, MinibatchSGD) and sgd.flow.per_sample_loss is tanh_neuron_loss:
        return tanh_neuron_minibatch_exponents(sgd.flow.inputs, sgd.flow.targets, sgd.learning_rate, int(sgd.flow.batch_size))
    return np.nan, np.nan


def collapse_fraction_vs_learning_rate(sgd: AbstractDiscreteSGD, learning_rates, time, *, state0, tol, key,
                                       n_paths: int = 1000, confidence: float = 0.95) -> CollapseSweep:
    r"""The fraction of discrete-SGD paths within ``tol`` of the invariant set after time $t$
    ($k = \mathrm{round}(t/\eta)$ steps), for each learning rate, with Wilson intervals, next to
    the growth rates at the set of the linearised map and of the SDE (where known in closed
    form: ``TanhNeuronLabelNoiseGD``, ``ModeLabelNoiseSGD``, ``MinibatchSGD`` on the tanh neuron).

    **Arguments:**

    - ``sgd``: an ``AbstractDiscreteSGD``; its learning rate is replaced by each value.
    - ``learning_rates``: 1-D array of positive values.
    - ``time``: the time $t > 0$ at which the distances are measured.
    - ``state0``: ``(n,)`` or ``(n_paths, n)`` initial states; ``tol`` (> 0); ``key``;
      ``n_paths``; ``confidence``.

    **Returns:** a ``CollapseSweep``. The same ``key`` is used for every learning rate (common
    random numbers), so neighbouring fractions are positively correlated.
    """
    lrs = np.asarray(learning_rates, dtype=float)
    if lrs.ndim != 1 or lrs.size == 0:
        raise ValueError(f"`learning_rates` must be a non-empty 1-D array; got shape {lrs.shape}.")
    check_positive("learning_rates", lrs)
    check_positive("time", time)
    check_positive("tol", tol)
    estimates, lows, highs, dists, map_exp, sde_exp = [], [], [], [], [], []
    for lr in lrs:
        at_lr = sgd.with_learning_rate(lr)
        n_steps = max(1, int(round(float(time) / lr)))
        _, states = discrete_sgd_paths(at_lr, state0, n_steps, key=key, n_paths=n_paths, n_saves=1)
        d = np.asarray(at_lr.distance_to_set(jnp.asarray(states[:, -1])))
        prob = collapse_probability(d.T if d.ndim == 2 else d, tol, confidence)
        estimates.append(prob.estimate), lows.append(prob.low), highs.append(prob.high), dists.append(d)
        m, s = _exponents(at_lr)
        map_exp.append(m), sde_exp.append(s)
    return CollapseSweep(lrs, np.asarray(estimates), np.asarray(lows), np.asarray(highs), int(n_paths), float(time),
                         float(tol), float(confidence), np.asarray(map_exp, float), np.asarray(sde_exp, float),
                         np.asarray(dists))


# ----------------------------------------------------------------------------------------------
# general linearisation at an invariant point (two-layer networks)


def _map_log_growth(hessians, eta, batch, z0, keys, n_steps, n_burn):
    def path(z, key):
        def step(i, carry):
            z, log_norm = carry
            idx = jr.randint(jr.fold_in(key, i), (batch,), 0, hessians.shape[0])
            z = z - eta * jnp.mean(hessians[idx], axis=0) @ z
            norm = jnp.linalg.norm(z)
            return z / norm, log_norm + jnp.where(i >= n_burn, jnp.log(norm), 0.0)

        return jax.lax.fori_loop(0, n_steps, step, (z, jnp.float64(0.0)))[1]

    return jax.vmap(path, in_axes=(None, 0))(z0, keys)


@eqx.filter_jit
def _derivatives(flow, point):
    per_sample = lambda f: jax.vmap(f, in_axes=(None, 0, 0))(point, flow.inputs, flow.targets)
    return per_sample(jax.grad(flow.per_sample_loss)), per_sample(jax.hessian(flow.per_sample_loss))


def linearised_sgd_exponents(flow: StochasticGradientFlow, point, time, *, key, n_paths: int = 200, sde_step=None,
                             burn_in: float = 0.2):
    r"""Top growth rates per unit time, at an invariant point $\theta^*$ where every per-sample
    gradient vanishes, of minibatch SGD's linearisation $z_{k+1} = (I - \eta H_{B_k})z_k$ and of
    the SDE's, $dz = -\bar Hz\,dt + \sqrt{\eta/(\beta N)}\sum_i (H_i - \bar H)z\,dB_i$
    ($H_i = \nabla^2\ell_i(\theta^*)$, $\bar H$ their mean), by renormalised Monte Carlo
    (the SDE by ``LinearisedNormalDynamics.top_exponent_mc`` at step ``sde_step``, default $\eta/20$);
    the fraction ``burn_in`` of the horizon is discarded while the direction aligns (it aligns
    slowly when the top two exponents are close compared with the noise).

    **Arguments:** ``flow`` (loss, data, $\eta$, $\beta$), ``point`` $\theta^*$ ``(n,)``, ``time``
    (averaging horizon $T$), ``key``, ``n_paths``, ``sde_step``, ``burn_in`` (fraction of $T$).

    **Returns:** ``((map_mean, map_se), (sde_mean, sde_se))``: path means of $\log\|z_T\|/T$ and
    their standard errors.
    """
    from .._solve import _run_compiled
    point = as_float_array(point)
    if point.shape != (flow.dimension,):
        raise ValueError(f"`point` must have shape ({flow.dimension},); got {point.shape}.")
    check_positive("time", time)
    grads, hessians = _derivatives(flow, point)
    if float(jnp.max(jnp.abs(grads))) > 1e-12 * (1.0 + float(jnp.max(jnp.abs(hessians)))):
        raise ValueError("`point` must be an invariant point: every per-sample gradient must vanish there.")
    eta = float(flow.learning_rate)
    n_steps = max(5, int(round(float(time) / eta)))
    if not 0.0 <= float(burn_in) < 1.0:
        raise ValueError(f"`burn_in` must lie in [0, 1); got {burn_in!r}.")
    n_burn = int(n_steps * float(burn_in))
    key_map, key_sde, key_z = jr.split(as_key(key), 3)
    z0 = jr.normal(key_z, (flow.dimension,))
    z0 = z0 / jnp.linalg.norm(z0)
    logs, _, _ = _run_compiled(
        _map_log_growth,
        dict(hessians=hessians, eta=jnp.float64(eta), z0=z0, keys=jr.split(key_map, n_paths), n_steps=jnp.int64(n_steps),
             n_burn=jnp.int64(n_burn)),
        dict(batch=int(flow.batch_size)),
    )
    map_rates = np.asarray(logs) / ((n_steps - n_burn) * eta)
    mean_hessian = jnp.mean(hessians, axis=0)
    scale = math.sqrt(eta / (float(flow.batch_size) * hessians.shape[0]))
    linearised = LinearisedNormalDynamics(np.asarray(mean_hessian), scale * np.asarray(hessians - mean_hessian))
    h = eta / 20 if sde_step is None else float(sde_step)
    burn = float(burn_in) * float(time)
    sde = linearised.top_exponent_mc(key_sde, n_paths=n_paths, t1=float(time) - burn, dt=h, transient=burn)
    return (float(np.mean(map_rates)), float(np.std(map_rates, ddof=1) / np.sqrt(map_rates.size))), (sde.value, sde.stderr)


# ----------------------------------------------------------------------------------------------
# teacher–student: soft-thresholding by label noise


@dataclasses.dataclass(frozen=True)
class AlignedTeacherStudent:
    r"""A linear teacher–student problem with whitened inputs (theory note §11): inputs $X$
    ($N\times n$, $X^\top X = I_n$), labels $Y = XW^* + E$, $E$ i.i.d. $N(0, \nu^2)$, so the
    least-squares target is $X^\top Y = W^* + X^\top E = P\,\mathrm{diag}(s)\,Q^\top$ (SVD). An aligned
    two-layer linear student $W = P\,\mathrm{diag}(u_iv_i)\,Q^\top$ has training loss
    $\tfrac12\sum_i(u_iv_i - s_i)^2 + $ const, i.e. independent modes (``LabelNoiseModes``).

    Gradient flow fits every $s_i$ ($W \to X^\top Y$, noise included); label-noise SGD's
    stationary mean soft-thresholds, $E\hat s_i = \max(s_i - \eta\sigma^2/2, 0)$.

    **Attributes:** ``teacher`` $W^*$ ``(n, m)``, ``target`` $X^\top Y$, ``left`` $P$,
    ``singular_values`` $s$, ``right`` $Q^\top$.
    """

    teacher: np.ndarray
    target: np.ndarray
    left: np.ndarray
    singular_values: np.ndarray
    right: np.ndarray

    def network(self, mode_strengths) -> np.ndarray:
        """$W = P\\,\\mathrm{diag}(\\hat s)\\,Q^\\top$ for mode strengths ``(..., k)``."""
        s = np.asarray(mode_strengths, float)
        return np.einsum("ik,...k,kj->...ij", self.left, s, self.right)

    def test_loss(self, mode_strengths) -> np.ndarray:
        r"""$\frac1{nm}\|W - W^*\|_F^2$ (the population loss on whitened inputs, up to the label
        noise), for mode strengths ``(..., k)``."""
        return np.mean((self.network(mode_strengths) - self.teacher) ** 2, axis=(-2, -1))

    def soft_threshold(self, threshold) -> np.ndarray:
        """$\\max(s - \\lambda, 0)$."""
        return np.maximum(self.singular_values - float(threshold), 0.0)


def aligned_teacher_student(teacher_singular_values, shape, n_samples: int, label_noise_std, *, key) -> AlignedTeacherStudent:
    r"""Draw an ``AlignedTeacherStudent``: Haar frames for the teacher
    $W^* = U\,\mathrm{diag}(s^*)V^\top$ (zero-padded to ``shape`` $= (n, m)$), whitened inputs
    $X$ ($N \times n$, orthonormal columns) and label noise of standard deviation $\nu$.

    **Arguments:** ``teacher_singular_values`` $s^* \ge 0$ (length $\le \min(n, m)$), ``shape``
    $(n, m)$, ``n_samples`` $N \ge n$, ``label_noise_std`` $\nu \ge 0$, ``key``.
    """
    from .._random import generator, random_frame

    n, m = (check_integer("shape", v) for v in shape)
    s_star = np.asarray(teacher_singular_values, float)
    if s_star.ndim != 1 or s_star.size > min(n, m) or np.any(s_star < 0):
        raise ValueError(f"`teacher_singular_values` must be >= 0, at most min(n, m) = {min(n, m)} of them; got {s_star}.")
    n_samples = check_integer("n_samples", n_samples, minimum=n)
    check_positive("label_noise_std", label_noise_std, allow_zero=True)
    rng = generator(key)
    r = s_star.size
    teacher = (random_frame(rng, n, r) * s_star) @ random_frame(rng, m, r).T
    x = random_frame(rng, n_samples, n)
    labels = x @ teacher + float(label_noise_std) * rng.standard_normal((n_samples, m))
    target = x.T @ labels
    left, s, right = np.linalg.svd(target, full_matrices=False)
    return AlignedTeacherStudent(teacher, target, left, s, right)


# ----------------------------------------------------------------------------------------------
# a small two-layer network: vanishing units under SGD and under its SDE


@dataclasses.dataclass(frozen=True)
class VanishingUnitSweep:
    """The result of ``vanishing_unit_fractions``: per learning rate, the fraction of hidden units
    that vanish (``estimate``, Wilson ``low``/``high`` over units x paths) under discrete minibatch
    SGD (``sgd_*``) and under its stochastic gradient flow (``sde_*``), at ``time``."""

    learning_rates: np.ndarray
    sgd_estimate: np.ndarray
    sgd_low: np.ndarray
    sgd_high: np.ndarray
    sde_estimate: np.ndarray
    sde_low: np.ndarray
    sde_high: np.ndarray
    n_paths: int
    time: float
    tol: float

    def to_xarray(self):
        import xarray as xr

        names = ("sgd_estimate", "sgd_low", "sgd_high", "sde_estimate", "sde_low", "sde_high")
        return xr.Dataset({k: ("learning_rate", getattr(self, k)) for k in names}, coords={"learning_rate": self.learning_rates},
                          attrs={"n_paths": self.n_paths, "time": self.time, "tol": self.tol})


def vanishing_unit_fractions(network, inputs, targets, learning_rates, time, *, theta0, key, n_paths: int = 100,
                             batch_size: int = 1, tol: float = 0.1, sde_step_fraction: float = 0.25,
                             confidence: float = 0.95) -> VanishingUnitSweep:
    r"""Fraction of vanishing hidden units of a two-layer network
    (``reducedflow.networks.two_layer_mlp.TwoLayerMLP``) after time $t$ of minibatch SGD, against
    the same fraction under its SDE (``StochasticGradientFlow`` of the same per-sample losses,
    Euler–Maruyama at step ``sde_step_fraction`` $	imes\,\eta$), per learning rate.

    A unit vanishes when $\|w_p\|/\max_q\|w_q\| <$ ``tol`` (the authors' criterion,
    ``analysis.invariant_sets.vanishing_units``). Units of one path are not independent, so the
    Wilson interval over units x paths is optimistic.

    **Arguments:** ``network`` (a ``TwoLayerMLP``), ``inputs`` ``(N, d)``, ``targets`` ``(N,)``,
    ``learning_rates``, ``time``, ``theta0`` (flat, ``(n,)`` or ``(n_paths, n)``), ``key``,
    ``n_paths``, ``batch_size``, ``tol``, ``sde_step_fraction`` (in (0, 1]), ``confidence``.
    """
    from .._solve_sde import euler_maruyama
    from ..analysis.attractivity import wilson_interval
    from ..analysis.invariant_sets import vanishing_units

    lrs = np.asarray(learning_rates, dtype=float)
    if lrs.ndim != 1 or lrs.size == 0:
        raise ValueError(f"`learning_rates` must be a non-empty 1-D array; got shape {lrs.shape}.")
    check_positive("learning_rates", lrs)
    check_positive("time", time)
    if not 0.0 < float(sde_step_fraction) <= 1.0:
        raise ValueError(f"`sde_step_fraction` must lie in (0, 1]; got {sde_step_fraction!r}.")
    layout = network.layout

    def count(thetas):
        w_in, w_out = (np.asarray(a) for a in layout.unpack(thetas))
        return sum(len(vanishing_units(w_in[p], w_out[p], tol)) for p in range(thetas.shape[0]))

    out = {k: [] for k in ("sgd", "sde")}
    trials = n_paths * layout.width
    for lr in lrs:
        flow = network.flow(inputs, targets, lr, batch_size)
        n_steps = max(1, int(round(float(time) / lr)))
        _, states = discrete_sgd_paths(MinibatchSGD(flow), theta0, n_steps, key=key, n_paths=n_paths)
        out["sgd"].append(count(states[:, -1]))
        traj = euler_maruyama(flow, theta0, float(time), dt=float(sde_step_fraction) * lr, key=key, n_paths=n_paths,
                              saveat=[float(time)], throw=False)
        out["sde"].append(count(traj.ys[:, -1]))
    result = {}
    for k, hits in out.items():
        hits = np.asarray(hits)
        low, high = wilson_interval(hits, trials, confidence)
        result[k] = (hits / trials, np.atleast_1d(low), np.atleast_1d(high))
    return VanishingUnitSweep(lrs, *result["sgd"], *result["sde"], int(n_paths), float(time), float(tol))
