r"""Binary-classification modes under cross-entropy and hinge loss: a minimal model of the
claims of Tachet des Combes, Pezeshki, Shabanian, Courville & Bengio (2018).

**Provenance (read this): only the abstract of the paper was available.** The model below is
**our own construction** (``shared/theory/gradient_starvation.md`` §11.3), built to reproduce the
abstract's statements (independent modes from a proper initialisation, sigmoidal error curves,
failure regions of parameter space, convergence speed set by input norm and feature frequency,
cross-entropy vs hinge, gradient starvation of infrequent features). It is **not** the paper's
model; its notation and results are not verified against the paper.

Model: orthogonal unit feature directions $e_k$; cluster $k$ holds a fraction $p_k$ of the data
(its frequency), all its points are $x = r_ke_k$ (input norm $r_k$) with label $y_k = \pm1$.
Hidden unit $k$ has input weight $u_k = w_k\cdot e_k$ and output weight $v_k$; the network is
$f(x) = \sum_kv_k\phi(w_k\cdot x)$, $\phi$ = identity or ReLU. If each unit sees only its own
cluster, $L = \sum_kp_k\ell(y_kv_k\phi(r_ku_k))$ and every mode evolves independently:

$$\dot u = \eta p\,y\,g(m)\,v\,r\,\phi'(ru),\qquad \dot v = \eta p\,y\,g(m)\,\phi(ru),\qquad
  m = y\,v\,\phi(ru),$$

with $g = -\ell'$: $g(m) = \sigma(-m)$ for cross-entropy, $g(m) = \mathbf 1[m < 1]$ for hinge.
$u^2 - v^2$ is conserved. Closed forms (linear units, $\kappa = \eta pr$, $v' = yv$):
$u + v' = (u_0 + v_0')e^{\kappa\tau}$, $u - v' = (u_0 - v_0')e^{-\kappa\tau}$ with $\tau = t$ (hinge,
until the margin reaches 1) or $\tau = \int_0^t\sigma(-m)$ (cross-entropy).

Reference: R. Tachet des Combes, M. Pezeshki, S. Shabanian, A. Courville, Y. Bengio, "On the
Learning Dynamics of Deep Neural Networks", arXiv:1809.06848 (2018).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import scipy.integrate
import scipy.special

from .._checks import as_float_array, check_in, check_integer, check_positive, is_concrete
from .._system import AbstractSystem

__all__ = [
    "ClassificationModes",
    "DeepChainMode",
    "FrequencyStarvation",
    "relu_mode_outcome",
    "RELU_SUCCESS",
    "RELU_SADDLE",
    "RELU_DEAD",
    "RELU_INACTIVE",
]

LOSSES = ("cross_entropy", "hinge")
ACTIVATIONS = ("linear", "relu")

#: Outcome codes of ``relu_mode_outcome``.
RELU_SUCCESS, RELU_SADDLE, RELU_DEAD, RELU_INACTIVE = 1, 0, -1, -2


def _gain(margin, loss):
    """$g(m) = -\\ell'(m)$: $\\sigma(-m)$ (cross-entropy) or $\\mathbf 1[m < 1]$ (hinge)."""
    if loss == "cross_entropy":
        return jax.nn.sigmoid(-margin)
    return jnp.where(margin < 1.0, 1.0, 0.0)


def _loss_value(margin, loss):
    if loss == "cross_entropy":
        return jnp.logaddexp(0.0, -margin)
    return jnp.maximum(0.0, 1.0 - margin)


def _check_vector(name, value):
    if np.ndim(value) != 1:
        raise ValueError(f"`{name}` must be a 1-D array (one entry per cluster); got shape {np.shape(value)}.")


class ClassificationModes(AbstractSystem):
    r"""Independent classification modes, one per data cluster (model in the module docstring):

    $$\dot u_k = \eta p_ky_kg(m_k)v_kr_k\phi'(r_ku_k),\qquad \dot v_k = \eta p_ky_kg(m_k)\phi(r_ku_k),
      \qquad m_k = y_kv_k\phi(r_ku_k).$$

    **Arguments:**

    - ``frequencies``: $p_k$ (1-D, > 0), the fraction of the data in cluster $k$.
    - ``input_norms``: $r_k$ (same shape, > 0).
    - ``labels``: $y_k\in\{-1, +1\}$ (default all +1).
    - ``learning_rate``: $\eta$ (> 0).
    - ``loss``: ``"cross_entropy"`` or ``"hinge"`` (static).
    - ``activation``: ``"linear"`` or ``"relu"`` (static).

    State: ``{"input_weight": u, "output_weight": v}``. Observables: ``"margins"``, ``"loss"``
    $\sum_kp_k\ell(m_k)$, ``"imbalance"`` $u^2 - v^2$ (conserved), ``"training_error"``
    $\sum_kp_k\mathbf 1[m_k \le 0]$. The hinge field is discontinuous at $m = 1$ (learning stops
    there): the adaptive solver steps through it; ``hinge_stopping_time`` is exact.

    Reference: model of theory note §11.3 (our construction) for the claims of the abstract of
    Tachet des Combes et al., arXiv:1809.06848.
    """

    frequencies: jax.Array = eqx.field(converter=as_float_array)
    input_norms: jax.Array = eqx.field(converter=as_float_array)
    labels: jax.Array | None = eqx.field(default=None, converter=lambda x: None if x is None else as_float_array(x))
    learning_rate: jax.Array = eqx.field(default=1.0, converter=as_float_array)
    loss: str = eqx.field(default="cross_entropy", static=True)
    activation: str = eqx.field(default="linear", static=True)

    def __check_init__(self):
        _check_vector("frequencies", self.frequencies)
        check_positive("frequencies", self.frequencies)
        if self.input_norms.shape != self.frequencies.shape:
            raise ValueError(
                f"`input_norms` must have the shape of frequencies {self.frequencies.shape}; got {self.input_norms.shape}."
            )
        check_positive("input_norms", self.input_norms)
        check_positive("learning_rate", self.learning_rate)
        check_in("loss", self.loss, LOSSES)
        check_in("activation", self.activation, ACTIVATIONS)
        if self.labels is not None:
            if self.labels.shape != self.frequencies.shape:
                raise ValueError(f"`labels` must have shape {self.frequencies.shape}; got {self.labels.shape}.")
            if is_concrete(self.labels) and np.any(np.abs(np.asarray(self.labels)) != 1.0):
                raise ValueError(f"`labels` must hold only -1 and +1; got {np.asarray(self.labels)}.")

    def _labels(self):
        return jnp.ones_like(self.frequencies) if self.labels is None else self.labels

    def _hidden(self, u):
        pre = self.input_norms * u
        if self.activation == "relu":
            return jnp.maximum(pre, 0.0), jnp.where(pre > 0, 1.0, 0.0)
        return pre, jnp.ones_like(pre)

    def margins(self, y):
        """$m_k = y_kv_k\\phi(r_ku_k)$."""
        act, _ = self._hidden(y["input_weight"])
        return self._labels() * y["output_weight"] * act

    def vector_field(self, t, y, args):
        u, v = y["input_weight"], y["output_weight"]
        act, slope = self._hidden(u)
        m = self._labels() * v * act
        push = self.learning_rate * self.frequencies * self._labels() * _gain(m, self.loss)
        return {"input_weight": push * v * self.input_norms * slope, "output_weight": push * act}

    def state_shapes(self):
        mode = jax.ShapeDtypeStruct(self.frequencies.shape, jnp.float64)
        return {"input_weight": mode, "output_weight": mode}

    def observables(self, t, y):
        m = self.margins(y)
        return {
            "margins": m,
            "loss": jnp.sum(self.frequencies * _loss_value(m, self.loss)),
            "imbalance": y["input_weight"] ** 2 - y["output_weight"] ** 2,
            "training_error": jnp.sum(self.frequencies * (m <= 0)),
        }

    # -- closed forms (linear units) -----------------------------------------------------------

    def _linear_start(self, y0):
        if self.activation != "linear":
            raise ValueError("`activation` must be 'linear' for this closed form (ReLU: use relu_mode_outcome or solve).")
        u0 = np.asarray(y0["input_weight"], float)
        v0 = np.asarray(y0["output_weight"], float) * np.asarray(self._labels())
        rate = float(self.learning_rate) * np.asarray(self.frequencies) * np.asarray(self.input_norms)
        return u0, v0, rate, np.asarray(self.input_norms)

    def hinge_stopping_time(self, y0) -> np.ndarray:
        r"""The time at which hinge learning stops, margin $r\,u\,v' = 1$ (linear units):

        $$t^* = \frac1{2\kappa}\ln\frac{2/r + \sqrt{4/r^2 + (u_0^2 - v_0^2)^2}}{(u_0 + v_0')^2},
          \qquad\text{balanced: }t^* = \frac{\ln(1/(ru_0^2))}{2\kappa};$$

        0 if the initial margin is already >= 1, ``inf`` if $u_0 + v_0' = 0$ (never)."""
        u0, v0, kappa, r = self._linear_start(y0)
        total = (u0 + v0) ** 2
        with np.errstate(divide="ignore"):
            growth = (2.0 / r + np.sqrt(4.0 / r**2 + (u0**2 - v0**2) ** 2)) / total
            t_star = np.log(growth) / (2.0 * kappa)
        t_star = np.where(total == 0, np.inf, t_star)
        return np.where(r * u0 * v0 >= 1.0, 0.0, t_star)

    def hinge_solution(self, t, y0) -> dict[str, np.ndarray]:
        r"""The hinge trajectory of linear units (hyperbolae $u^2 - v^2$ = const), frozen after
        ``hinge_stopping_time``: $u \pm v' = (u_0 \pm v_0')e^{\pm\kappa\min(t, t^*)}$.
        **Returns:** ``{"input_weight", "output_weight"}``, each of shape ``t.shape + (k,)``."""
        u0, v0, kappa, _ = self._linear_start(y0)
        t = np.minimum(np.asarray(t, float)[..., None], self.hinge_stopping_time(y0))
        plus, minus = (u0 + v0) * np.exp(kappa * t), (u0 - v0) * np.exp(-kappa * t)
        return {"input_weight": 0.5 * (plus + minus),
                "output_weight": 0.5 * (plus - minus) * np.asarray(self._labels())}

    def balanced_time(self, margin, y0) -> np.ndarray:
        r"""Cross-entropy, linear units, balanced start $v_0' = u_0$ (margin $b_0 = ru_0^2 > 0$):
        $\dot b = 2\kappa\,b\,\sigma(-b)$, integrated exactly through the exponential integral,

        $$t(b) = \frac{\ln(b/b_0) + \mathrm{Ei}(b) - \mathrm{Ei}(b_0)}{2\eta pr}.$$

        Early growth is exponential at rate $\approx\kappa$, late growth logarithmic ($b\sim\log t$).
        **Arguments:** ``margin``: target margins $b$ (broadcast to ``(k,)``); ``y0``: balanced.
        **Returns:** the times, shape ``(k,)``."""
        if self.loss != "cross_entropy":
            raise ValueError("`loss` must be 'cross_entropy' for balanced_time (hinge: hinge_solution).")
        u0, v0, kappa, r = self._linear_start(y0)
        if np.max(np.abs(u0 - v0)) > 1e-12 * max(1.0, np.max(np.abs(u0))) or np.any(u0 == 0):
            raise ValueError("`y0` must be balanced (output_weight * label == input_weight != 0) for balanced_time.")
        b0, b = r * u0**2, np.asarray(margin, float)
        check_positive("margin", b)
        return (np.log(b / b0) + scipy.special.expi(b) - scipy.special.expi(b0)) / (2.0 * kappa)

    def cross_entropy_time(self, tau, y0):
        r"""General cross-entropy solution of linear units in the internal time
        $\tau = \int_0^t\sigma(-m)\,dt'$: $m(\tau) = \tfrac r4[(u_0+v_0')^2e^{2\kappa\tau} - (u_0-v_0')^2e^{-2\kappa\tau}]$
        and $t(\tau) = \int_0^\tau(1 + e^{m(\tau')})\,d\tau'$ (adaptive quadrature).
        **Arguments:** ``tau``: scalar >= 0 or shape ``(k,)``. **Returns:** ``(t, margin)``, each ``(k,)``."""
        if self.loss != "cross_entropy":
            raise ValueError("`loss` must be 'cross_entropy' for cross_entropy_time.")
        u0, v0, kappa, r = self._linear_start(y0)
        tau = np.broadcast_to(np.asarray(tau, float), u0.shape)

        def margin(s, i):
            return 0.25 * r[i] * ((u0[i] + v0[i]) ** 2 * np.exp(2 * kappa[i] * s) - (u0[i] - v0[i]) ** 2 * np.exp(-2 * kappa[i] * s))

        times = np.array([
            scipy.integrate.quad(lambda s: 1.0 + np.exp(margin(s, i)), 0.0, tau[i], epsabs=0.0, epsrel=1e-13, limit=200)[0]
            for i in range(u0.size)
        ])
        return times, np.array([margin(tau[i], i) for i in range(u0.size)])

    def error_crossing_time(self, y0) -> np.ndarray:
        r"""When a mode with a negative initial margin starts classifying correctly (margin 0),
        linear units with $|u_0 + v_0'| > 0$: $\tau_0 = \ln(|u_0 - v_0'|/|u_0 + v_0'|)/(2\kappa)$, which
        is $t_0$ for hinge and gives $t_0 = t(\tau_0)$ for cross-entropy. ``nan`` where the initial
        margin is positive (never errs) or $u_0 + v_0' = 0$ (never crosses).
        Summed over modes, $E(t) = \sum_kp_k\mathbf 1[t < t_{0,k}]$ is the training-error curve."""
        u0, v0, kappa, r = self._linear_start(y0)
        valid = (u0 * v0 <= 0) & (np.abs(u0 + v0) > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            tau0 = np.where(valid, np.log(np.abs(u0 - v0) / np.abs(u0 + v0)) / (2 * kappa), np.nan)
        if self.loss == "hinge":
            return tau0
        out = np.full(u0.shape, np.nan)
        if np.any(valid):
            t, _ = self.cross_entropy_time(np.where(valid, tau0, 0.0), y0)
            out = np.where(valid, t, np.nan)
        return out

    def error_curve(self, t, y0) -> np.ndarray:
        r"""The training error $E(t) = \sum_kp_k\mathbf 1[m_k(t) \le 0]$ of linear units from the
        crossing times (modes with $m_0 > 0$ never err; modes that never cross keep erring)."""
        u0, v0, _, _ = self._linear_start(y0)
        crossing = self.error_crossing_time(y0)
        p = np.asarray(self.frequencies)
        initially_wrong = u0 * v0 <= 0
        still_wrong = initially_wrong & ~(np.asarray(t, float)[..., None] >= np.nan_to_num(crossing, nan=np.inf))
        return np.sum(p * still_wrong, axis=-1)


def relu_mode_outcome(input_weight, output_weight, label=1.0):
    r"""Where a ReLU mode $f = v\,\mathrm{ReLU}(ru)$ ends, from the conserved $c = u_0^2 - v_0^2$
    (theory note §11.3.4, our construction), with $v' = yv$:

    - $u_0 \le 0$: no gradient ever (``RELU_INACTIVE``);
    - $u_0 > 0$, $v_0' \ge 0$ or $c > 0$: $v'$ reaches 0 while $u \ge \sqrt c > 0$, then both grow
      (``RELU_SUCCESS``);
    - $u_0 > 0 > v_0'$ and $c < 0$: $u$ reaches 0 first, the unit dies with output 0 and the
      loss stays at $p\log 2$ (``RELU_DEAD``, failed training);
    - $c = 0$ with $v_0' < 0$: $(u, v) \to (0, 0)$, a saddle (``RELU_SADDLE``).

    Vectorised over broadcastable inputs; returns integer codes."""
    u0 = np.asarray(input_weight, float)
    v0 = np.asarray(output_weight, float) * np.asarray(label, float)
    c = u0**2 - v0**2
    out = np.full(np.broadcast(u0, v0).shape, RELU_SUCCESS, dtype=int)
    out = np.where((v0 < 0) & (c < 0), RELU_DEAD, out)
    out = np.where((v0 < 0) & (c == 0), RELU_SADDLE, out)
    return np.where(u0 <= 0, RELU_INACTIVE, out)


def _others_product(w):
    """$\\prod_{j\\ne l}w_j$ for each $l$, without division (prefix and suffix products)."""
    ones = jnp.ones((1,), w.dtype)
    prefix = jnp.cumprod(jnp.concatenate([ones, w[:-1]]))
    suffix = jnp.cumprod(jnp.concatenate([ones, w[::-1][:-1]]))[::-1]
    return prefix * suffix


class DeepChainMode(AbstractSystem):
    r"""One cluster learned through a chain of $L$ scalar weights (a depth-$L$ linear mode),
    $f = r\prod_lw_l$, label +1, loss $p\,\ell(f)$:

    $$\dot w_l = \eta pr\,g(m)\prod_{j\ne l}w_j,\qquad m = r\prod_lw_l .$$

    The differences $w_l^2 - w_j^2$ are conserved. Balanced ($w_l = w$, $a = w^L$):
    $\dot a = L\eta pr\,g(ra)\,a^{2-2/L}$; for hinge and $L > 2$,
    $a(t) = [a_0^{-(L-2)/L} - (L-2)\eta pr\,t]^{-L/(L-2)}$ until $ra = 1$, at
    $t^* = [a_0^{-(L-2)/L} - r^{(L-2)/L}]/((L-2)\eta pr)$ (theory note §11.3.5, our construction;
    for small $a_0$ slower than $L = 2$, so the chain alone does not make depth accelerate).

    **Arguments:** ``frequency`` $p$ (> 0), ``input_norm`` $r$ (> 0), ``depth`` $L$ (>= 2,
    static), ``learning_rate`` $\eta$ (> 0), ``loss`` (static).

    State: $w$, shape ``(L,)``. Observables: ``"margin"``, ``"product"`` $a$, ``"loss"``.
    Reference: Tachet des Combes et al., arXiv:1809.06848 (abstract only; model ours).
    """

    frequency: jax.Array = eqx.field(converter=as_float_array)
    input_norm: jax.Array = eqx.field(converter=as_float_array)
    depth: int = eqx.field(static=True)
    learning_rate: jax.Array = eqx.field(default=1.0, converter=as_float_array)
    loss: str = eqx.field(default="cross_entropy", static=True)

    def __check_init__(self):
        check_positive("frequency", self.frequency)
        check_positive("input_norm", self.input_norm)
        check_integer("depth", self.depth, minimum=2)
        check_positive("learning_rate", self.learning_rate)
        check_in("loss", self.loss, LOSSES)

    def vector_field(self, t, y, args):
        m = self.input_norm * jnp.prod(y)
        rate = self.learning_rate * self.frequency * self.input_norm * _gain(m, self.loss)
        return rate * _others_product(y)

    def state_shapes(self):
        return jax.ShapeDtypeStruct((self.depth,), jnp.float64)

    def observables(self, t, y):
        a = jnp.prod(y)
        m = self.input_norm * a
        return {"margin": m, "product": a, "loss": self.frequency * _loss_value(m, self.loss)}

    def _balanced_product(self, w0):
        w0 = float(w0)
        if w0 <= 0:
            raise ValueError(f"`w0` (the balanced weight) must be > 0; got {w0}.")
        return w0 ** self.depth

    def hinge_stopping_time(self, w0) -> float:
        """$t^*$ of a balanced chain from $w_l = w_0$ under hinge loss (depth > 2; 0 if $ra_0 \\ge 1$)."""
        a0, big_l = self._balanced_product(w0), self.depth
        if big_l == 2:
            raise ValueError("`depth` must be > 2 here (depth 2: ClassificationModes.hinge_stopping_time).")
        r, kappa = float(self.input_norm), float(self.learning_rate * self.frequency * self.input_norm)
        q = (big_l - 2) / big_l
        return max(0.0, (a0 ** (-q) - r**q) / ((big_l - 2) * kappa))

    def hinge_product(self, t, w0) -> np.ndarray:
        """The balanced hinge solution $a(t)$ (frozen after $t^*$), depth > 2."""
        a0, big_l = self._balanced_product(w0), self.depth
        t_star = self.hinge_stopping_time(w0)
        kappa = float(self.learning_rate * self.frequency * self.input_norm)
        q = (big_l - 2) / big_l
        t = np.minimum(np.asarray(t, float), t_star)
        return (a0 ** (-q) - (big_l - 2) * kappa * t) ** (-1.0 / q)


class FrequencyStarvation(AbstractSystem):
    r"""Two equally predictive features, one of them infrequent (theory note §11.3.7, our
    construction for the abstract's "gradient starvation" sentence): a linear model with weight
    $a_A$ on feature A, present in every example, and $a_B$ on feature B, present in a fraction
    $p$ of them; margins $a_A$ (without B) and $a_A + a_B$ (with B). Cross-entropy flow:

    $$\dot a_A = \eta[(1-p)\sigma(-a_A) + p\,\sigma(-a_A - a_B)],\qquad \dot a_B = \eta p\,\sigma(-a_A - a_B).$$

    The max-margin direction is (1, 0), so $a_B/a_A \to 0$: B is starved. Once the margins are
    large ($\sigma(-m)\approx e^{-m}$), $Q = (1-p)e^{a_B} + p\,a_B - p\,a_A$ is conserved, so
    $a_B \approx \log(p\,a_A/(1-p))$ grows like $\log\log t$ while $a_A \sim \log t$.

    **Arguments:** ``frequency`` $p\in(0, 1)$, ``learning_rate`` $\eta$ (> 0).
    State: $(a_A, a_B)$, shape ``(2,)``. Observables: ``"ratio"`` $a_B/a_A$, ``"invariant"`` $Q$, ``"loss"``.
    Reference: Tachet des Combes et al., arXiv:1809.06848 (abstract only; model ours).
    """

    frequency: jax.Array = eqx.field(converter=as_float_array)
    learning_rate: jax.Array = eqx.field(default=1.0, converter=as_float_array)

    def __check_init__(self):
        check_positive("frequency", self.frequency)
        if is_concrete(self.frequency) and not float(self.frequency) < 1.0:
            raise ValueError(f"`frequency` must lie in (0, 1); got {float(self.frequency)}.")
        check_positive("learning_rate", self.learning_rate)

    def vector_field(self, t, y, args):
        p = self.frequency
        both = jax.nn.sigmoid(-y[0] - y[1])
        return self.learning_rate * jnp.stack([(1 - p) * jax.nn.sigmoid(-y[0]) + p * both, p * both])

    def state_shapes(self):
        return jax.ShapeDtypeStruct((2,), jnp.float64)

    def timescale_ratio(self):
        return 100.0  # rates decay like 1/t: log-time solves

    def observables(self, t, y):
        p = self.frequency
        return {
            "ratio": y[1] / y[0],
            "invariant": (1 - p) * jnp.exp(y[1]) + p * y[1] - p * y[0],
            "loss": (1 - p) * jnp.logaddexp(0.0, -y[0]) + p * jnp.logaddexp(0.0, -y[0] - y[1]),
        }
