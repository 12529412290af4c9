r"""Single-index two-layer networks (Berthier, Montanari, Zhou 2023, arXiv:2303.00055):
the exact finite-(d, m) population gradient flow on order parameters, its mean-field
particle flow in residual form, initial states, and the closed forms of the phases.

Network and target (data $x\sim N(0, I_d)$, $\|u_i\| = \|u_*\| = 1$):

$$f(x) = \frac1m\sum_{i=1}^m a_i\,\sigma(\langle u_i, x\rangle),\qquad y = \varphi(\langle u_*, x\rangle),
\qquad R = \tfrac12 E(y - f)^2 .$$

With the normalised Hermite coefficients $\sigma_k$, $\varphi_k$ ($f = \sum_k c_k He_k/\sqrt{k!}$)
and Mehler's formula, $V(s) = E\varphi(G)\sigma(G_s) = \sum_k\varphi_k\sigma_k s^k$ and
$U(q) = E\sigma(G)\sigma(G_q) = \sum_k\sigma_k^2 q^k$, the population risk is exact in the
overlaps $s_i = \langle u_i, u_*\rangle$, $Q_{ij} = \langle u_i, u_j\rangle$:

$$R(a, s, Q) = \tfrac12\|\varphi\|^2 - \frac1m\sum_i a_i V(s_i) + \frac1{2m^2}\sum_{ij}a_ia_jU(Q_{ij}).$$

Gradient flow with the second layer $1/\varepsilon$ times faster, first-layer weights on the
sphere: $\varepsilon\dot a_i = -m\,\partial_{a_i}R$, $\dot u_i = -m(I - u_iu_i^\top)\nabla_{u_i}R$.
The activation is the degree-$K$ polynomial $\sum_{k\le K}\sigma_kHe_k/\sqrt{k!}$ (exact for
polynomial activations, a stated truncation otherwise); the target's Hermite tail beyond $K$ is
kept as a constant in the risk (``risk_offset``).

Notation (``state`` keys): ``second_layer`` $= a$, ``overlap`` $= s$, ``gram`` $= Q$.
"""

from __future__ import annotations

import dataclasses
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from scipy import special

from .._checks import check_in, check_integer, check_positive
from .._random import as_key
from .._structured import ParticleJacobian
from .._system import AbstractSystem

__all__ = [
    "HermiteCoefficients",
    "hermite_coefficients",
    "SingleIndexMeanField",
    "SingleIndexExact",
    "OneAtom",
    "initial_second_layer",
    "mean_field_initial_state",
    "finite_dimension_initial_state",
    "overlaps_from_weights",
    "half_learning_times",
    "phase_one_second_moment",
    "phase_one_time",
    "phase_one_solution",
    "stage_blow_up_time",
    "StageFlow",
]

# ----------------------------------------------------------------------------------------------
# Hermite coefficients and kernels


@dataclasses.dataclass(frozen=True)
class HermiteCoefficients:
    r"""Normalised Hermite coefficients of the activation ($\sigma_k$) and the target
    ($\varphi_k$), $k = 0..K$.

    **Fields:** ``activation``, ``target`` (float64 arrays of length $K+1$), ``target_norm2``
    ($\|\varphi\|^2$, including the tail beyond $K$), ``activation_tail`` and ``target_tail``
    (the squared $L^2(\gamma)$ mass dropped by the truncation), ``names``.
    """

    activation: np.ndarray
    target: np.ndarray
    target_norm2: float
    activation_tail: float = 0.0
    target_tail: float = 0.0
    names: tuple[str, str] = ("activation", "target")

    @property
    def degree(self) -> int:
        return len(self.activation) - 1

    @property
    def risk_offset(self) -> float:
        r"""$\tfrac12\sum_{k > K}\varphi_k^2$: the part of the risk no degree-$K$ network reaches."""
        return 0.5 * self.target_tail

    @property
    def information_exponent(self) -> int | None:
        r"""The smallest $k\ge1$ with $\sigma_k\varphi_k\ne0$ (Ben Arous et al. 2021), or ``None``."""
        for k in range(1, self.degree + 1):
            if abs(self.activation[k] * self.target[k]) > 1e-14:
                return k
        return None

    def unfittable_degrees(self) -> tuple[int, ...]:
        r"""Degrees $k\le K$ with $\varphi_k\ne0$ but $\sigma_k = 0$ (e.g. odd $k\ge3$ for ReLU)."""
        return tuple(k for k in range(self.degree + 1) if abs(self.target[k]) > 1e-14 and abs(self.activation[k]) <= 1e-14)


def _as_coefficients(name: str, values, degree: int | None):
    from ..symbolic.hermite import hermite_expansion

    if isinstance(values, (list, tuple, np.ndarray, jax.Array)) and not isinstance(values, str):
        arr = np.asarray(values, dtype=np.float64)
        if arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr)):
            raise ValueError(f"`{name}` given as Hermite coefficients must be a non-empty 1-D finite array; got {values!r}.")
        if degree is not None:
            arr = np.pad(arr, (0, max(0, degree + 1 - arr.size)))[: degree + 1]
            dropped = np.asarray(values, dtype=np.float64)[degree + 1 :]
        else:
            dropped = np.zeros(0)
        label = "hermite(" + ", ".join(f"{v:.4g}" for v in arr) + ")"
        return arr, float(np.sum(arr**2) + np.sum(dropped**2)), float(np.sum(dropped**2)), label
    if degree is None:
        raise ValueError(f"`degree` is required when `{name}` is a function ({values!r}); e.g. degree=4.")
    try:
        expansion = hermite_expansion(values, degree)
    except ValueError as err:
        raise ValueError(f"`{name}` has no usable Hermite expansion: {err}") from None
    return expansion.coefficients, float(expansion.norm2), max(0.0, expansion.tail_mass), expansion.name


def hermite_coefficients(activation, target, degree: int | None = None) -> HermiteCoefficients:
    r"""The coefficients $\sigma_k$, $\varphi_k$ ($k\le K$) of ``activation`` and ``target``.

    **Arguments:**

    - ``activation``, ``target``: a name (``"relu"``, ``"exp"``, ``"tanh"``, ``"erf"``,
      ``"quadratic"``, ...), a sympy expression, a callable on NumPy arrays, or a sequence of
      normalised Hermite coefficients $(c_0, c_1, \dots)$ (see ``reducedflow.symbolic``).
    - ``degree``: the truncation degree $K$ (required for functions; for coefficient lists the
      default is the longer list's length minus one).

    **Returns:** ``HermiteCoefficients``. Raises ``ValueError`` for a function without a finite
    second moment (no Hermite expansion) or a negative degree.
    """
    if degree is None:
        lengths = [len(v) for v in (activation, target) if isinstance(v, (list, tuple, np.ndarray))]
        if len(lengths) == 2:
            degree = max(lengths) - 1
    if degree is not None:
        degree = check_integer("degree", degree, minimum=0)
    sig, _, sig_tail, sig_name = _as_coefficients("activation", activation, degree)
    phi, phi_norm2, phi_tail, phi_name = _as_coefficients("target", target, degree)
    return HermiteCoefficients(sig, phi, phi_norm2, sig_tail, phi_tail, (sig_name, phi_name))


def power_series(coefficients, x, derivative: int = 0):
    r"""$\sum_k c_k\,\partial_x^{n} x^k$ evaluated elementwise (Horner), $n$ = ``derivative``."""
    c = jnp.asarray(coefficients)
    for _ in range(derivative):
        c = c[1:] * jnp.arange(1, c.shape[0], dtype=c.dtype)
    out = jnp.zeros_like(x)
    for k in range(c.shape[0] - 1, -1, -1):
        out = out * x + c[k]
    return out


def _powers(s, degree):
    """``P[k, ...] = s**k`` for k = 0..degree (exact at s = 0, also for k = 0)."""
    return jnp.stack([jnp.ones_like(s)] + [s**k for k in range(1, degree + 1)])


def _set_common_fields(system, coefficients: HermiteCoefficients, epsilon, width=None) -> None:
    """The fields every single-index system shares (called from ``__init__``)."""
    _check_epsilon(epsilon)
    if width is not None:
        system.width = check_integer("width", width, minimum=1)
    system.activation = jnp.asarray(coefficients.activation, jnp.float64)
    system.target = jnp.asarray(coefficients.target, jnp.float64)
    system.epsilon = jnp.asarray(epsilon, jnp.float64)
    system.risk_offset = jnp.asarray(coefficients.risk_offset, jnp.float64)


def _check_epsilon(epsilon):
    check_positive("epsilon", epsilon)
    if float(np.min(np.asarray(epsilon))) <= 0.0:
        raise ValueError(
            "`epsilon` must be > 0: epsilon = 0 (an always-optimal second layer) is a singular limit "
            "of this model, where every degree up to a critical one is learned instantly (Berthier et "
            f"al. 2023, Sec. 8); got {epsilon!r}."
        )


# ----------------------------------------------------------------------------------------------
# Mean-field particle flow


class SingleIndexMeanField(AbstractSystem):
    r"""The mean-field particle flow in residual form (theory note §5).

    With $r_k = \varphi_k - \sigma_k\frac1m\sum_ja_js_j^k$ (the residual Hermite coefficients of
    $y - f$ along $u_*$):

    $$\varepsilon\dot a_i = \sum_k\sigma_kr_ks_i^k,\qquad
      \dot s_i = (1 - s_i^2)\,a_i\sum_kk\sigma_kr_ks_i^{k-1},\qquad
      R_{\rm mf} = \tfrac12\sum_kr_k^2 \;(+\ \text{``risk_offset``}).$$

    This is the exact flow of the overlaps when $Q_{ij} = s_is_j$ (the $d\to\infty$,
    $m\to\infty$ limit; Berthier et al. 2023, Eq. (23), with the $O(1/m)$ diagonal difference
    noted in the theory note). Cost $O(mK)$ per evaluation; the Jacobian is block-diagonal
    (one $2\times2$ block per neuron) plus rank $K+1$ (through the residuals), which
    ``particle_jacobian`` returns so that implicit steps cost $O(mK^2)$.

    **Fields:** ``activation`` ($\sigma_k$), ``target`` ($\varphi_k$), ``epsilon``
    (first-layer rate / second-layer rate, > 0), ``width`` $m$ (static), ``risk_offset``.

    **State:** ``{"second_layer": a (m,), "overlap": s (m,)}``.
    **Observables:** ``risk``, ``residuals`` $r_k$, ``learned_fraction``
    $\sigma_kM_k/\varphi_k$ (0 where $\varphi_k = 0$), ``mean_abs_overlap``, ``max_abs_second_layer``.
    """

    activation: jax.Array
    target: jax.Array
    epsilon: jax.Array
    width: int = eqx.field(static=True)
    risk_offset: jax.Array

    def __init__(self, coefficients: HermiteCoefficients, epsilon, width: int):
        _set_common_fields(self, coefficients, epsilon, width)

    @property
    def degree(self) -> int:
        return self.activation.shape[0] - 1

    def residuals(self, y):
        a, s = y["second_layer"], y["overlap"]
        return self.target - self.activation * (_powers(s, self.degree) @ a) / self.width

    def vector_field(self, t, y, args):
        a, s = y["second_layer"], y["overlap"]
        K = self.degree
        P = _powers(s, K)
        weights = self.activation * self.residuals(y)
        da = (weights @ P) / self.epsilon
        ds = (1.0 - s**2) * a * power_series(weights, s, derivative=1)
        return {"second_layer": da, "overlap": ds}

    def particle_jacobian(self, t, y, args):
        a, s = y["second_layer"], y["overlap"]
        K = self.degree
        sig, m, eps = self.activation, self.width, self.epsilon
        w = sig * self.residuals(y)
        g1 = power_series(w, s, 1)  # sum_k k sig_k r_k s^(k-1)
        g2 = power_series(w, s, 2)
        one_minus = 1.0 - s**2
        zero = jnp.zeros_like(s)
        # Per-neuron blocks at frozen residuals, in the order of the state's leaves (sorted
        # keys: overlap, second_layer); rows = derivative of, columns = with respect to.
        ds_ds = -2.0 * s * a * g1 + one_minus * a * g2
        blocks = jnp.stack([jnp.stack([ds_ds, one_minus * g1]), jnp.stack([g1 / eps, zero])])
        # Through the residuals: (d dot y_i / d r_k) (d r_k / d y_j), rank K + 1.
        P = _powers(s, K)  # (K+1, m): s_i^k
        ks = jnp.arange(1, K + 1, dtype=s.dtype)[:, None]
        dP = jnp.concatenate([jnp.zeros((1, s.shape[0])), ks * P[:-1]])  # k s^(k-1)
        sig = sig[:, None]
        left = jnp.stack([sig * dP * (one_minus * a), sig * P / eps], axis=1)  # (K+1, 2, m)
        right = -jnp.stack([sig * dP * a, sig * P], axis=1) / m
        return ParticleJacobian(blocks, left, right)

    def risk(self, y):
        return 0.5 * jnp.sum(self.residuals(y) ** 2) + self.risk_offset

    def dissipation(self, y):
        r"""$-\dot R_{\rm mf}$ from the note's formula (§10): the squared gradient in the flow's metric."""
        a, s = y["second_layer"], y["overlap"]
        w = self.activation * self.residuals(y)
        fast = w @ _powers(s, self.degree)
        slow = power_series(w, s, 1)
        return (jnp.sum(fast**2) / self.epsilon + jnp.sum((1 - s**2) * a**2 * slow**2)) / self.width

    def observables(self, t, y):
        r = self.residuals(y)
        moments = (self.target - r)
        safe = jnp.where(self.target != 0, self.target, 1.0)
        return {
            "risk": 0.5 * jnp.sum(r**2) + self.risk_offset,
            "residuals": r,
            "learned_fraction": jnp.where(self.target != 0, moments / safe, 0.0),
            "mean_abs_overlap": jnp.mean(jnp.abs(y["overlap"])),
            "max_abs_second_layer": jnp.max(jnp.abs(y["second_layer"])),
        }

    def state_shapes(self):
        shape = jax.ShapeDtypeStruct((self.width,), jnp.float64)
        return {"second_layer": shape, "overlap": shape}

    def check_state(self, y0, name="y0"):
        super().check_state(y0, name)
        if np.max(np.abs(np.asarray(y0["overlap"]))) > 1.0:
            raise ValueError(f"`{name}['overlap']` (s_i = <u_i, u_*>) must lie in [-1, 1]; got max |s| = {np.max(np.abs(np.asarray(y0['overlap'])))}.")

    def timescale_ratio(self):
        return 1.0 / self.epsilon

    def fast_components(self):
        return {"second_layer": True, "overlap": False}


# ----------------------------------------------------------------------------------------------
# Exact finite-(d, m) flow


class SingleIndexExact(AbstractSystem):
    r"""The exact population gradient flow of a width-$m$ network in any dimension $d\ge m+1$,
    closed on $(a, s, Q)$ (theory note §4). With $C_{ik} = a_ia_kU'(Q_{ik})/m$ ($i\ne k$),
    $C_{ii} = 0$:

    $$\varepsilon\dot a_i = V(s_i) - \frac1m\sum_jU(Q_{ij})a_j,\qquad
      \dot s_i = (1 - s_i^2)a_iV'(s_i) - \sum_{k}C_{ik}(s_k - Q_{ik}s_i),$$
    $$\dot Q_{ij} = A_{ij} + A_{ji},\quad A_{ij} = a_iV'(s_i)(s_j - s_iQ_{ij}) - \sum_kC_{ik}(Q_{kj} - Q_{ik}Q_{ij}),
      \quad\dot Q_{ii} = 0 .$$

    The dimension enters only through the initial state (``finite_dimension_initial_state``).
    Cost $O(m^3)$ per evaluation and a dense Jacobian: meant for $m\lesssim 50$.

    **State:** ``{"second_layer": a (m,), "overlap": s (m,), "gram": Q (m, m)}``.
    **Observables:** ``risk`` (the exact $R$), ``residuals`` (the mean-field $r_k$ from $s$),
    ``gram_deviation`` $\max_{i\ne j}|Q_{ij} - s_is_j|$.
    """

    activation: jax.Array
    target: jax.Array
    epsilon: jax.Array
    width: int = eqx.field(static=True)
    risk_offset: jax.Array
    target_norm2: jax.Array

    def __init__(self, coefficients: HermiteCoefficients, epsilon, width: int):
        _set_common_fields(self, coefficients, epsilon, width)
        self.target_norm2 = jnp.asarray(coefficients.target_norm2, jnp.float64)

    def _kernels(self):
        return self.activation * self.target, self.activation**2

    def vector_field(self, t, y, args):
        a, s, Q = y["second_layer"], y["overlap"], y["gram"]
        m = self.width
        v_coef, u_coef = self._kernels()
        off = 1.0 - jnp.eye(m)
        C = off * jnp.outer(a, a) * power_series(u_coef, Q, 1) / m
        dV = power_series(v_coef, s, 1)
        da = (power_series(v_coef, s) - power_series(u_coef, Q) @ a / m) / self.epsilon
        ds = (1.0 - s**2) * a * dV - (C @ s - jnp.sum(C * Q, axis=1) * s)
        A = (a * dV)[:, None] * (s[None, :] - s[:, None] * Q) - (C @ Q - jnp.sum(C * Q, axis=1)[:, None] * Q)
        dQ = off * (A + A.T)
        return {"second_layer": da, "overlap": ds, "gram": dQ}

    def risk(self, y):
        a, s, Q = y["second_layer"], y["overlap"], y["gram"]
        v_coef, u_coef = self._kernels()
        m = self.width
        kept = self.target_norm2 - 2.0 * self.risk_offset
        return (
            0.5 * kept
            - jnp.sum(a * power_series(v_coef, s)) / m
            + 0.5 * a @ power_series(u_coef, Q) @ a / m**2
            + self.risk_offset
        )

    def dissipation(self, y):
        r"""$-\dot R = \frac m\varepsilon\sum_i(\partial_{a_i}R)^2 + m\sum_i\|P_i^\perp\nabla_{u_i}R\|^2$ (§10),
        evaluated from the order parameters: the second term is $\sum_i\langle\dot u_i, \dot u_i\rangle/m$
        with the Gram matrix of $(u_*, u_1..u_m)$."""
        a, s, Q = y["second_layer"], y["overlap"], y["gram"]
        m = self.width
        v_coef, u_coef = self._kernels()
        grad_a = -(power_series(v_coef, s) - power_series(u_coef, Q) @ a / m) / m
        # u_dot_i = alpha_i u_* + sum_k beta_ik u_k with alpha_i = a_i V'(s_i), beta from C and the projection.
        off = 1.0 - jnp.eye(m)
        C = off * jnp.outer(a, a) * power_series(u_coef, Q, 1) / m
        alpha = a * power_series(v_coef, s, 1)
        beta = -C + jnp.diag(-alpha * s + jnp.sum(C * Q, axis=1))
        # |u_dot_i|^2 = alpha^2 + 2 alpha (beta s)_i + (beta Q beta^T)_ii
        norm2 = alpha**2 + 2 * alpha * (beta @ s) + jnp.einsum("ik,kl,il->i", beta, Q, beta)
        return m * jnp.sum(grad_a**2) / self.epsilon + jnp.sum(norm2) / m

    def observables(self, t, y):
        s, Q = y["overlap"], y["gram"]
        r = self.target - self.activation * (_powers(s, self.activation.shape[0] - 1) @ y["second_layer"]) / self.width
        off = 1.0 - jnp.eye(self.width)
        return {
            "risk": self.risk(y),
            "residuals": r,
            "gram_deviation": jnp.max(off * jnp.abs(Q - jnp.outer(s, s))),
        }

    def state_shapes(self):
        m = self.width
        return {
            "second_layer": jax.ShapeDtypeStruct((m,), jnp.float64),
            "overlap": jax.ShapeDtypeStruct((m,), jnp.float64),
            "gram": jax.ShapeDtypeStruct((m, m), jnp.float64),
        }

    def check_state(self, y0, name="y0"):
        super().check_state(y0, name)
        s = np.asarray(y0["overlap"])
        Q = np.asarray(y0["gram"])
        if np.max(np.abs(s)) > 1.0:
            raise ValueError(f"`{name}['overlap']` must lie in [-1, 1]; got max |s| = {np.max(np.abs(s))}.")
        if not np.allclose(np.diag(Q), 1.0, atol=1e-10) or not np.allclose(Q, Q.T, atol=1e-12):
            raise ValueError(f"`{name}['gram']` must be symmetric with unit diagonal (Q_ij = <u_i, u_j>, |u_i| = 1).")
        gram = np.block([[np.ones((1, 1)), s[None, :]], [s[:, None], Q]])
        if np.min(np.linalg.eigvalsh(gram)) < -1e-10:
            raise ValueError(
                f"`{name}`: the Gram matrix of (u_*, u_1, ..., u_m) built from 'overlap' and 'gram' is not "
                f"positive semidefinite (smallest eigenvalue {np.min(np.linalg.eigvalsh(gram)):.3g}); "
                "no unit vectors have these overlaps."
            )

    def timescale_ratio(self):
        return 1.0 / self.epsilon

    def fast_components(self):
        return {"second_layer": True, "overlap": False, "gram": False}


# ----------------------------------------------------------------------------------------------
# One atom and the stage ODE (closed forms / witnesses)


class OneAtom(AbstractSystem):
    r"""All neurons equal (theory note §5): $\varepsilon\dot a = V(s) - aU(s^2)$,
    $\dot s = (1 - s^2)\,a\,[V'(s) - asU'(s^2)]$, the gradient flow of
    $R(a, s) = \tfrac12\sum_k(\varphi_k - a\sigma_ks^k)^2$ (plus ``risk_offset``).
    State ``jnp.array([a, s])``. The reduced slow flow (fast $a$ eliminated) is the spherical
    gradient flow of $\tilde R(s) = \tfrac12\|\varphi\|^2 - V(s)^2/(2U(s^2))$."""

    activation: jax.Array
    target: jax.Array
    epsilon: jax.Array
    risk_offset: jax.Array

    def __init__(self, coefficients: HermiteCoefficients, epsilon):
        _set_common_fields(self, coefficients, epsilon)

    def vector_field(self, t, y, args):
        a, s = y[0], y[1]
        v_coef, u_coef = self.activation * self.target, self.activation**2
        da = (power_series(v_coef, s) - a * power_series(u_coef, s**2)) / self.epsilon
        ds = (1 - s**2) * a * (power_series(v_coef, s, 1) - a * s * power_series(u_coef, s**2, 1))
        return jnp.stack([da, ds])

    def risk(self, y):
        K = self.activation.shape[0] - 1
        return 0.5 * jnp.sum((self.target - y[0] * self.activation * _powers(y[1], K)) ** 2) + self.risk_offset

    def slow_risk(self, s):
        r"""$\tilde R(s) = \min_a R(a, s)$."""
        v_coef, u_coef = self.activation * self.target, self.activation**2
        return 0.5 * jnp.sum(self.target**2) + self.risk_offset - power_series(v_coef, s) ** 2 / (2 * power_series(u_coef, s**2))

    def observables(self, t, y):
        return {"risk": self.risk(y)}

    def state_shapes(self):
        return jax.ShapeDtypeStruct((2,), jnp.float64)

    def timescale_ratio(self):
        return 1.0 / self.epsilon

    def fast_components(self):
        return jnp.array([True, False])


class StageFlow(AbstractSystem):
    r"""The degree-$l$ stage ODE (theory note §8.3): lower modes slaved, higher inactive,

    $$\varepsilon\dot a_i = \sigma_lr_ls_i^l,\qquad \dot s_i = l\sigma_lr_l\,a_is_i^{l-1},\qquad
      r_l = \varphi_l - \sigma_l\frac1m\sum_ja_js_j^l,$$

    or, with ``frozen_residual=True``, $r_l \equiv \varphi_l$. Per-particle invariant
    $\varepsilon a_i^2 - s_i^2/l$. State ``{"second_layer", "overlap"}``."""

    degree: int = eqx.field(static=True)
    activation_coefficient: jax.Array
    target_coefficient: jax.Array
    epsilon: jax.Array
    frozen_residual: bool = eqx.field(static=True)

    def __init__(self, degree, activation_coefficient, target_coefficient, epsilon, frozen_residual=False):
        _check_epsilon(epsilon)
        self.degree = check_integer("degree", degree, minimum=1)
        self.activation_coefficient = jnp.asarray(activation_coefficient, jnp.float64)
        self.target_coefficient = jnp.asarray(target_coefficient, jnp.float64)
        self.epsilon = jnp.asarray(epsilon, jnp.float64)
        self.frozen_residual = bool(frozen_residual)

    def residual(self, y):
        if self.frozen_residual:
            return self.target_coefficient
        a, s = y["second_layer"], y["overlap"]
        return self.target_coefficient - self.activation_coefficient * jnp.mean(a * s**self.degree)

    def vector_field(self, t, y, args):
        a, s = y["second_layer"], y["overlap"]
        l, c = self.degree, self.activation_coefficient * self.residual(y)
        return {"second_layer": c * s**l / self.epsilon, "overlap": l * c * a * s ** (l - 1)}

    def observables(self, t, y):
        a, s = y["second_layer"], y["overlap"]
        return {
            "residual": self.residual(y),
            "invariant": self.epsilon * a**2 - s**2 / self.degree,
            "readout_energy": 0.5 * self.epsilon * jnp.mean(a**2),
            "moment": jnp.mean(a * s**self.degree),
        }

    def timescale_ratio(self):
        return 1.0 / self.epsilon


# ----------------------------------------------------------------------------------------------
# Initial states


_LAWS = ("gaussian", "uniform", "rademacher")


def initial_second_layer(width: int, law: str = "gaussian", scale: float = 1.0, *, key=None) -> np.ndarray:
    r"""Second-layer weights $a_i(0)$ for $m$ = ``width`` neurons.

    The paper's law of $a(0)$ is not known to us; this library's documented choices:

    - ``"gaussian"``: $a\sim N(0, \text{scale}^2)$;
    - ``"uniform"``: $a\sim U[-\text{scale}, \text{scale}]$;
    - ``"rademacher"``: $a = \pm\text{scale}$ with probability 1/2.

    Without ``key`` the law is discretised by quantiles (deterministic, symmetric, and
    converging fast in $m$): Gaussian $\Phi^{-1}((i + \frac12)/m)$, uniform
    ``linspace(-1, 1, m + 2)[1:-1]``, Rademacher alternating signs. With ``key`` the weights are
    i.i.d. samples.
    """
    width = check_integer("width", width, minimum=1)
    check_in("law", law, _LAWS)
    check_positive("scale", scale)
    if key is None:
        if law == "gaussian":
            a = special.ndtri((np.arange(width) + 0.5) / width)
        elif law == "uniform":
            a = np.linspace(-1.0, 1.0, width + 2)[1:-1]
        else:
            a = np.where(np.arange(width) % 2 == 0, 1.0, -1.0)
        return scale * a
    key = as_key(key)
    if law == "gaussian":
        a = jax.random.normal(key, (width,))
    elif law == "uniform":
        a = jax.random.uniform(key, (width,), minval=-1.0, maxval=1.0)
    else:
        a = jax.random.rademacher(key, (width,), dtype=jnp.float64)
    return scale * np.asarray(a, dtype=np.float64)


def mean_field_initial_state(width: int, law: str = "gaussian", scale: float = 1.0, *, key=None) -> dict:
    r"""The $d = \infty$ initial state of ``SingleIndexMeanField``: $s_i(0) = 0$ (random
    first-layer weights are orthogonal to $u_*$) and $a_i(0)$ from ``initial_second_layer``."""
    a = initial_second_layer(width, law, scale, key=key)
    return {"second_layer": jnp.asarray(a), "overlap": jnp.zeros(width)}


def overlaps_from_weights(first_layer, teacher) -> tuple[jax.Array, jax.Array]:
    r"""The order parameters of unit first-layer weights $u_i$ (rows of ``first_layer``, shape
    $(m, d)$) and the teacher direction $u_*$: $s = Uu_*$, $Q = UU^\top$."""
    first_layer = jnp.asarray(first_layer)
    teacher = jnp.asarray(teacher)
    return first_layer @ teacher, first_layer @ first_layer.T


def finite_dimension_initial_state(width: int, dimension: int, *, key, law: str = "gaussian", scale: float = 1.0,
                                   return_weights: bool = False):
    r"""An initial state of ``SingleIndexExact`` from actual random unit vectors in
    $\mathbb R^d$: $u_i$ uniform on $S^{d-1}$, $u_* = e_1$, so $s_i(0), Q_{ij}(0)\approx N(0, 1/d)$
    and the Gram matrix is PSD by construction; $a_i(0)$ from ``initial_second_layer`` (i.i.d.
    with the same key).

    **Returns:** the state dict, and with ``return_weights=True`` also
    ``(second_layer, first_layer (m, d), teacher (d,))``.
    """
    width = check_integer("width", width, minimum=1)
    dimension = check_integer("dimension", dimension, minimum=2)
    k_u, k_a = jax.random.split(as_key(key))
    u = jax.random.normal(k_u, (width, dimension))
    u = u / jnp.linalg.norm(u, axis=1, keepdims=True)
    teacher = jnp.zeros(dimension).at[0].set(1.0)
    a = jnp.asarray(initial_second_layer(width, law, scale, key=k_a))
    s, Q = overlaps_from_weights(u, teacher)
    Q = 0.5 * (Q + Q.T)
    Q = Q - jnp.diag(jnp.diag(Q)) + jnp.eye(width)
    state = {"second_layer": a, "overlap": s, "gram": Q}
    if return_weights:
        return state, (a, u, teacher)
    return state


# ----------------------------------------------------------------------------------------------
# Closed forms of the phases


def phase_one_second_moment(second_layer0, coefficients: HermiteCoefficients) -> float:
    r"""$A_2$, the input of ``phase_one_time``: the second moment of $a(0)$ that drives the
    phase-1 growth $M_1 = \tfrac12A_2\sqrt\varepsilon\sinh(2\tau/\sqrt\varepsilon)$.

    With a constant mode ($\sigma_0 \ne 0$) the residual $r_0$ is slaved on the fastest
    timescale, $\sigma_0r_0 = -\sigma_1r_1\bar s$, so the mean of $a$ is frozen after phase 0 and
    only the deviations $a_i - \bar a$ grow: $A_2 = \operatorname{Var}a(0)$. Without one
    ($\sigma_0 = 0$), $\varepsilon\dot a_i = \sigma_1r_1s_i$ and $A_2 = \overline{a(0)^2}$. (Our derivation;
    for a symmetric law and $\varphi_0 = 0$ both equal the theory note's "second moment after the
    phase-0 shift". The frozen mean adds a slow drift of $\bar s$, so with $\bar a \ne 0$ the law
    is approached more slowly as $\varepsilon\to0$.)"""
    a = np.asarray(second_layer0, dtype=np.float64)
    return float(np.var(a)) if coefficients.activation[0] != 0 else float(np.mean(a**2))


def phase_one_time(epsilon, activation_1, target_1, second_moment, fraction: float = 1 - 1 / math.sqrt(2)) -> float:
    r"""The time to learn the fraction $x^*$ of the linear coefficient from $s = 0$ (law T1):

    $$t_1(x^*) \approx \frac{\sqrt\varepsilon}{2\sigma_1\varphi_1}\Big[\operatorname{asinh}
      \Big(\frac{2x^*\varphi_1}{\sigma_1A_2\sqrt\varepsilon}\Big) - \ln(1 - x^*)\Big]
      = \frac{\sqrt\varepsilon}{4\sigma_1\varphi_1}\ln\frac1\varepsilon\,(1 + o(1)),$$

    $A_2$ from ``phase_one_second_moment`` (the variance of $a(0)$ when $\sigma_0 \ne 0$). The default $x^* = 1 - 1/\sqrt2$ is
    the first time $r_1^2 < \varphi_1^2/2$. Needs $\sigma_1\varphi_1 > 0$. Derived in the
    theory note §8.2 from the linearisation at $s\approx0$; asymptotic as $\varepsilon\to0$.
    """
    _check_epsilon(epsilon)
    c = activation_1 * target_1
    if not c > 0:
        raise ValueError(f"phase_one_time needs sigma_1 * phi_1 > 0; got {c!r}.")
    check_positive("second_moment", second_moment)
    if not 0 < fraction < 1:
        raise ValueError(f"`fraction` must lie in (0, 1); got {fraction!r}.")
    root = math.sqrt(epsilon)
    return root / (2 * c) * (math.asinh(2 * fraction * target_1 / (activation_1 * second_moment * root)) - math.log(1 - fraction))


def half_learning_times(trajectory, coefficients: HermiteCoefficients, degrees=None) -> dict[int, float]:
    r"""The half-learning time of each Hermite degree $l$ on a solved trajectory: the first time
    $r_l^2 < \varphi_l^2/2$ (interpolated on log time; NaN if never), for the degrees with
    $\varphi_l \ne 0$ (default) or the given ``degrees``. ``trajectory`` is a ``Trajectory`` of
    ``SingleIndexMeanField`` or ``SingleIndexExact`` (observable ``residuals``)."""
    from ..analysis.plateaus import transition_time

    target = np.asarray(coefficients.target)
    if degrees is None:
        degrees = [k for k in range(1, target.size) if target[k] != 0]
    residuals = np.asarray(trajectory.observables["residuals"])
    return {int(k): transition_time(trajectory.ts, residuals[:, k] ** 2, 0.5 * target[k] ** 2) for k in degrees}


def phase_one_solution(t_rescaled, a0, epsilon):
    r"""The linearised phase-1 solution in the time $\tau = \int_0^t\sigma_1r_1dt'$:
    $a_i = a_i(0)\cosh(\tau/\sqrt\varepsilon)$, $s_i = a_i(0)\sqrt\varepsilon\sinh(\tau/\sqrt\varepsilon)$."""
    root = jnp.sqrt(epsilon)
    return a0 * jnp.cosh(t_rescaled / root), a0 * root * jnp.sinh(t_rescaled / root)


def stage_blow_up_time(epsilon, degree: int, activation_coefficient, target_coefficient, overlap0) -> float:
    r"""Blow-up time of the degree-$l$ stage ODE with frozen residual $r_l = \varphi_l$ from
    $s(0) = s_0 > 0$ on the invariant set $\varepsilon a^2 = s^2/l$ ($a = s/\sqrt{l\varepsilon}$):

    $$\dot s = \frac{\sqrt l\,c\,s^l}{\sqrt\varepsilon},\quad c = \sigma_l\varphi_l > 0
      \;\Rightarrow\; t^* = \frac{\sqrt\varepsilon}{(l - 1)\sqrt l\,c\,s_0^{l-1}} \quad (l\ge2).$$
    """
    _check_epsilon(epsilon)
    degree = check_integer("degree", degree, minimum=2)
    c = activation_coefficient * target_coefficient
    if not c > 0:
        raise ValueError(f"stage_blow_up_time needs sigma_l * phi_l > 0; got {c!r}.")
    check_positive("overlap0", overlap0)
    return math.sqrt(epsilon) / ((degree - 1) * math.sqrt(degree) * c * overlap0 ** (degree - 1))
