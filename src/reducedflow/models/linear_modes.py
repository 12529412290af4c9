r"""Deep linear networks: the mode dynamics of Saxe, McClelland & Ganguli and the full
matrix gradient flows they reduce.

A linear network $\hat y = W_D \cdots W_1 x$ trained by gradient flow on
$L = \tfrac12 E\|y - \hat y\|^2$ with whitened inputs ($E[xx^\top] = I$) decouples, for an
initialisation aligned with the singular vectors of $\Sigma^{yx} = E[yx^\top] = U S V^\top$,
into independent scalar modes, one per singular value $s_\alpha$. This module provides:

- ``BalancedModes``: two layers, balanced modes, $\tau\dot u = 2u(s - u)$ (logistic closed form);
- ``UnbalancedModes``: two layers, $\tau\dot a = b(s - ab)$, $\tau\dot b = a(s - ab)$, with the
  conserved imbalance $a^2 - b^2$ and an exact time formula;
- ``DeepModes``: depth $D$, balanced, $\tau\dot u = D u^{2 - 2/D}(s - u)$ (time by quadrature);
- ``TwoLayerLinearFlow``: the full matrix flow of $(W_1, W_2)$, with the matrix Riccati
  solution for balanced initialisations;
- ``DeepLinearFlow``: the full matrix flow of $D$ layers, with its $D - 1$ conserved matrices.

Convention used throughout: $\tau\dot W = -\partial L/\partial W$ (no factor of the number of
examples; how $\tau$ maps to a learning rate is the user's convention).

Reference: A. M. Saxe, J. L. McClelland, S. Ganguli, "Exact solutions to the nonlinear
dynamics of learning in deep linear neural networks", ICLR 2014, arXiv:1312.6120; and
"A mathematical theory of semantic development in deep neural networks", PNAS 116 (2019),
doi:10.1073/pnas.1820226116.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import scipy.integrate
import scipy.linalg
import scipy.special

from .._checks import (
    as_float_array,
    check_finite,
    check_integer,
    check_positive,
    is_concrete,
)
from .._random import generator, random_frame
from .._system import AbstractSystem

__all__ = [
    "BalancedModes",
    "UnbalancedModes",
    "DeepModes",
    "TwoLayerLinearFlow",
    "DeepLinearFlow",
]


# ----------------------------------------------------------------------------------------------
# Shared helpers


def _check_vector(name: str, value) -> None:
    if np.ndim(value) != 1:
        raise ValueError(f"`{name}` must be a 1-D array (one entry per mode); got shape {np.shape(value)}.")


def _check_matrix(name: str, value) -> None:
    if np.ndim(value) != 2:
        raise ValueError(f"`{name}` must be a 2-D array; got shape {np.shape(value)}.")
    check_finite(name, value)


def _check_mode_shape(name: str, value, n: int) -> None:
    shape = np.shape(value)
    if len(shape) > 1 or (len(shape) == 1 and shape[0] != n):
        raise ValueError(f"`{name}` must be a scalar or have shape ({n},) (one entry per mode); got shape {shape}.")


def _broadcast_modes(name: str, value, n: int) -> np.ndarray:
    _check_mode_shape(name, value, n)
    arr = np.asarray(value, dtype=np.float64)
    check_finite(name, arr)
    return np.broadcast_to(arr, (n,))


def _check_same_side(u_start, u_end, s, start_name: str, end_name: str) -> None:
    """The mode flows never cross u = s: the end point must lie on the start's side of s."""
    if not (is_concrete(u_start) and is_concrete(u_end) and is_concrete(s)):
        return
    u0, uf, s = np.broadcast_arrays(np.asarray(u_start), np.asarray(u_end), np.asarray(s))
    check_finite(start_name, u0)
    check_finite(end_name, uf)
    bad = (s - u0) * (s - uf) <= 0
    if np.any(bad):
        raise ValueError(
            f"`{end_name}` must lie strictly on the same side of the singular value s as "
            f"`{start_name}` (the flow approaches s but never reaches or crosses it); got "
            f"{start_name} = {u0[bad]}, {end_name} = {uf[bad]}, s = {s[bad]}."
        )


def _logistic(t, u0, s, tau):
    r"""$u(t)$ of $\tau\dot u = 2u(s - u)$, written as
    $u = u_0 / (e^{-2st/\tau} + u_0 (1 - e^{-2st/\tau})/s)$: no overflow at large t, exact at
    $u_0 = 0$, and continuous at $s = 0$ (where $(1 - e^{-2st/\tau})/s \to 2t/\tau$)."""
    x = 2.0 * t / tau
    decay = jnp.exp(-s * x)
    safe_s = jnp.where(s == 0, 1.0, s)
    grow = jnp.where(s == 0, x, -jnp.expm1(-s * x) / safe_s)
    return u0 / (decay + u0 * grow)


# ----------------------------------------------------------------------------------------------
# Two layers, balanced modes


class _AbstractTwoLayerModes(AbstractSystem):
    r"""Shared fields of the two-layer mode systems: the singular values $s_\alpha$ of
    $\Sigma^{yx}$ (1-D, each >= 0) and the time constant $\tau$ (> 0)."""

    singular_values: jax.Array = eqx.field(converter=as_float_array)
    tau: jax.Array = eqx.field(default=1.0, converter=as_float_array)

    def __check_init__(self):
        _check_vector("singular_values", self.singular_values)
        check_positive("singular_values", self.singular_values, allow_zero=True)
        check_positive("tau", self.tau)


class BalancedModes(_AbstractTwoLayerModes):
    r"""The modes of a two-layer linear network from a balanced, aligned initialisation
    (Saxe et al. 2014): the strength $u_\alpha$ of mode $\alpha$ (the singular value of
    $W_2W_1$ along the pair $u^\alpha v^{\alpha\top}$ of $\Sigma^{yx}$) follows

    $$\tau\,\dot u_\alpha = 2u_\alpha(s_\alpha - u_\alpha),\qquad
      u_\alpha(t) = \frac{s_\alpha e^{2s_\alpha t/\tau}}{e^{2s_\alpha t/\tau} - 1 + s_\alpha/u_{0,\alpha}} .$$

    Strong modes are learned first: the time from $u_0$ to $u_f$ is
    $\frac{\tau}{2s}\ln\frac{u_f(s - u_0)}{u_0(s - u_f)}$, proportional to $1/s$.

    **Arguments:**

    - ``singular_values``: the singular values $s_\alpha$ of $\Sigma^{yx}$ (1-D, each >= 0).
    - ``tau``: the time constant $\tau$ (> 0).

    State: ``u``, shape ``(n,)``, the mode strengths ($u_\alpha = a_\alpha^2 \ge 0$ for a
    balanced mode $a_\alpha = b_\alpha$). Observables: ``"risk"``
    $= \tfrac12\sum_\alpha (s_\alpha - u_\alpha)^2$, the loss up to its constant.

    Reference: Saxe, McClelland, Ganguli, ICLR 2014, arXiv:1312.6120.
    """

    def vector_field(self, t, y, args):
        return 2.0 * y * (self.singular_values - y) / self.tau

    def state_shapes(self):
        return jax.ShapeDtypeStruct(self.singular_values.shape, jnp.float64)

    def observables(self, t, y):
        return {"risk": 0.5 * jnp.sum((self.singular_values - y) ** 2)}

    def closed_form(self, t, y0):
        """The logistic solution $u(t)$ for times ``t`` of any shape.

        **Arguments:**

        - ``t``: times (any shape, >= 0 in the usual use).
        - ``y0``: initial strengths $u_0$, shape ``(n,)``, each >= 0.

        **Returns:** $u(t)$, shape ``t.shape + (n,)``.
        """
        y0 = jnp.asarray(y0, jnp.float64)
        self.check_state(y0)
        check_positive("y0", y0, allow_zero=True)
        t = jnp.asarray(t, jnp.float64)[..., None]
        return _logistic(t, y0, self.singular_values, self.tau)

    def learning_time(self, u0, u_final):
        r"""The time for each mode to go from $u_0$ to $u_f$:
        $t = \frac{\tau}{2s}\ln\frac{u_f(s - u_0)}{u_0(s - u_f)}$ (negative if $u_f$ comes
        before $u_0$ along the flow; $\frac\tau2(1/u_f - 1/u_0)$ for $s = 0$).

        **Arguments:**

        - ``u0``: start strengths (> 0), broadcastable to ``(n,)``.
        - ``u_final``: end strengths (> 0), on the same side of $s$ as ``u0``.

        **Returns:** the times, shape ``(n,)`` (the broadcast shape).
        """
        s = self.singular_values
        _check_mode_shape("u0", u0, s.shape[0])
        _check_mode_shape("u_final", u_final, s.shape[0])
        check_positive("u0", u0)
        check_positive("u_final", u_final)
        _check_same_side(u0, u_final, s, "u0", "u_final")
        u0 = jnp.asarray(u0, jnp.float64)
        uf = jnp.asarray(u_final, jnp.float64)
        safe_s = jnp.where(s == 0, 1.0, s)
        log_ratio = jnp.log(uf / u0) - jnp.log((s - uf) / (s - u0))
        return jnp.where(
            s == 0,
            0.5 * self.tau * (1.0 / uf - 1.0 / u0),
            self.tau / (2.0 * safe_s) * log_ratio,
        )


# ----------------------------------------------------------------------------------------------
# Two layers, unbalanced modes


class UnbalancedModes(_AbstractTwoLayerModes):
    r"""The modes of a two-layer linear network from an aligned but unbalanced
    initialisation: first-layer strength $a_\alpha$, second-layer strength $b_\alpha$,

    $$\tau\dot a = b(s - ab),\qquad \tau\dot b = a(s - ab).$$

    The imbalance $c_0 = a^2 - b^2$ is conserved, $a^2 + b^2 = \sqrt{c_0^2 + 4u^2}$ with
    $u = ab$, and $\tau\dot u = \sqrt{c_0^2 + 4u^2}\,(s - u)$, which integrates exactly to

    $$\frac t\tau = \frac{1}{\sqrt{c_0^2 + 4s^2}}
      \ln\!\left[\frac{\sqrt{c_0^2 + 4s^2}\sqrt{c_0^2 + 4u^2} + c_0^2 + 4su}{s - u}\right]_{u_0}^{u}
      \qquad(\text{``time_between``}).$$

    For $c_0 \to 0$ this is ``BalancedModes``; for $|c_0| \gg s$ the mode relaxes
    exponentially at rate $|c_0|/\tau$ (the "lazy" regime).

    **Arguments:**

    - ``singular_values``: $s_\alpha$ (1-D, each >= 0).
    - ``tau``: the time constant (> 0).

    State: ``{"first_layer": a, "second_layer": b}``, each of shape ``(n,)``. Observables:
    ``"product"`` $u = ab$, ``"imbalance"`` $a^2 - b^2$ (conserved) and ``"risk"``
    $\tfrac12\sum_\alpha(s_\alpha - a_\alpha b_\alpha)^2$.

    Reference: Saxe, McClelland, Ganguli, ICLR 2014, arXiv:1312.6120; for matrix
    λ-balanced initialisations, Braun, Dominé, Fitzgerald, Saxe, NeurIPS 2022.
    """

    def vector_field(self, t, y, args):
        a, b = y["first_layer"], y["second_layer"]
        error = self.singular_values - a * b
        return {"first_layer": b * error / self.tau, "second_layer": a * error / self.tau}

    def state_shapes(self):
        mode = jax.ShapeDtypeStruct(self.singular_values.shape, jnp.float64)
        return {"first_layer": mode, "second_layer": mode}

    def observables(self, t, y):
        a, b = y["first_layer"], y["second_layer"]
        u = a * b
        return {
            "product": u,
            "imbalance": a**2 - b**2,
            "risk": 0.5 * jnp.sum((self.singular_values - u) ** 2),
        }

    def time_between(self, u_start, u_end, imbalance):
        r"""The exact time for the product $u = ab$ to go from ``u_start`` to ``u_end`` at
        conserved imbalance $c_0 = a^2 - b^2$ (formula in the class docstring).

        The bracket $N(u) = \Delta\sqrt{c_0^2 + 4u^2} + c_0^2 + 4su$, $\Delta = \sqrt{c_0^2+4s^2}$,
        cancels for $u < 0$ and small $c_0$; it is evaluated there in the equivalent form
        $c_0^2\,[1 + (\Delta^2 + 4u^2)/(\Delta\sqrt{c_0^2+4u^2} - 4su)]$.

        **Arguments:**

        - ``u_start``, ``u_end``: products $u$, broadcastable to ``(n,)``, on the same side of
          $s$ (the flow never crosses $u = s$). $u$ may be negative or pass through 0 when
          $c_0 \ne 0$; with $c_0 = 0$ both must be > 0.
        - ``imbalance``: $c_0$, broadcastable to ``(n,)``.

        **Returns:** the times, shape ``(n,)`` (negative if ``u_end`` precedes ``u_start``).
        """
        s = self.singular_values
        for name, value in (("u_start", u_start), ("u_end", u_end), ("imbalance", imbalance)):
            _check_mode_shape(name, value, s.shape[0])
        _check_same_side(u_start, u_end, s, "u_start", "u_end")
        check_finite("imbalance", imbalance)
        if is_concrete((u_start, u_end, imbalance)):
            u0, uf, c0 = np.broadcast_arrays(
                np.asarray(u_start, float), np.asarray(u_end, float), np.asarray(imbalance, float)
            )
            bad = (c0 == 0) & ((u0 <= 0) | (uf <= 0))
            if np.any(bad):
                raise ValueError(
                    "`u_start` and `u_end` must be > 0 where `imbalance` is 0 (a balanced "
                    "mode with u > 0; u = 0 is then a fixed point the flow never crosses); got "
                    f"u_start = {u0[bad]}, u_end = {uf[bad]}."
                )
        u0 = jnp.asarray(u_start, jnp.float64)
        uf = jnp.asarray(u_end, jnp.float64)
        c2 = jnp.asarray(imbalance, jnp.float64) ** 2
        delta = jnp.sqrt(c2 + 4.0 * s**2)

        def log_bracket(u):
            root = jnp.sqrt(c2 + 4.0 * u**2)
            direct = delta * root + c2 + 4.0 * s * u
            # For u < 0: delta*root + 4su = c2 (delta^2 + 4u^2) / (delta*root - 4su).
            denom = jnp.where(u < 0, delta * root - 4.0 * s * u, 1.0)
            rationalised = c2 * (1.0 + (delta**2 + 4.0 * u**2) / denom)
            return jnp.log(jnp.where(u < 0, rationalised, direct))

        log_ratio = log_bracket(uf) - log_bracket(u0) - jnp.log((s - uf) / (s - u0))
        return self.tau * log_ratio / delta


# ----------------------------------------------------------------------------------------------
# Depth D, balanced modes


class DeepModes(AbstractSystem):
    r"""The modes of a depth-$D$ linear network (D weight matrices) from a balanced, aligned
    initialisation: every layer carries the same mode strength $a$, the network's is
    $u = a^D$, and

    $$\tau\dot a = a^{D-1}(s - a^D) \iff \tau\dot u = D\,u^{2-2/D}(s - u),\qquad
      t = \frac{\tau}{D}\int_{u_0}^{u_f}\frac{dv}{v^{2-2/D}(s - v)} .$$

    $D = 2$ is ``BalancedModes``. For $D \ge 3$ and small $u_0$ the escape from the plateau
    takes $t \approx \tau/((D-2)\,s\,a_0^{D-2})$, $a_0 = u_0^{1/D}$: polynomial in $1/a_0$,
    against logarithmic for $D = 2$.

    **Arguments:**

    - ``singular_values``: $s_\alpha$ (1-D, each >= 0).
    - ``depth``: the number of weight matrices $D$ (an integer >= 2; static).
    - ``tau``: the time constant (> 0).

    State: ``u``, shape ``(n,)``, each >= 0. Observables: ``"risk"``
    $\tfrac12\sum_\alpha(s_\alpha - u_\alpha)^2$. ``closed_form`` exists for ``depth == 2``.

    Reference: Saxe, McClelland, Ganguli, ICLR 2014, arXiv:1312.6120 (their
    $(N_l - 1)u^{2 - 2/(N_l - 1)}(s - u)$ with $N_l = D + 1$ layers of units).
    """

    singular_values: jax.Array = eqx.field(converter=as_float_array)
    depth: int = eqx.field(static=True)
    tau: jax.Array = eqx.field(default=1.0, converter=as_float_array)

    def __check_init__(self):
        _check_vector("singular_values", self.singular_values)
        check_positive("singular_values", self.singular_values, allow_zero=True)
        check_integer("depth", self.depth, minimum=2)
        check_positive("tau", self.tau)

    def vector_field(self, t, y, args):
        d = int(self.depth)
        speed = 2.0 * y if d == 2 else d * y * jnp.power(y, (d - 2) / d)
        return speed * (self.singular_values - y) / self.tau

    def state_shapes(self):
        return jax.ShapeDtypeStruct(self.singular_values.shape, jnp.float64)

    def observables(self, t, y):
        return {"risk": 0.5 * jnp.sum((self.singular_values - y) ** 2)}

    def closed_form(self, t, y0):
        """The logistic solution for ``depth == 2`` (shape ``t.shape + (n,)``); other depths
        have none (use ``learning_time`` or ``solve``)."""
        if int(self.depth) != 2:
            return super().closed_form(t, y0)
        y0 = jnp.asarray(y0, jnp.float64)
        self.check_state(y0)
        check_positive("y0", y0, allow_zero=True)
        t = jnp.asarray(t, jnp.float64)[..., None]
        return _logistic(t, y0, self.singular_values, self.tau)

    def learning_time(self, u0, u_final) -> np.ndarray:
        r"""The time for each mode to go from $u_0$ to $u_f$, by quadrature in $x = \ln v$:

        $$t = \frac\tau D\int_{\ln u_0}^{\ln u_f}\frac{e^{(2/D - 1)x}}{s - e^x}\,dx
            = \frac\tau D\left[\frac{e^{px}}{ps}\right]_{\ln u_0}^{\ln u_f}
              + \frac\tau{Ds}\int_{\ln u_0}^{\ln u_f}\frac{e^{(p+1)x}}{s - e^x}\,dx,
            \qquad p = \frac2D - 1,$$

        (using $\frac1{s-v} = \frac1s + \frac{v}{s(s-v)}$; the first term is $(x_f - x_0)/s$
        for $D = 2$). The large small-$u$ part is exact and ``scipy.integrate.quad`` only sees
        a remainder that vanishes as $u \to 0$, so tiny $u_0$ (1e-30) stays accurate, where
        quadrature in $v$ itself fails silently.

        **Arguments:**

        - ``u0``: start strengths (> 0), a scalar or shape ``(n,)``.
        - ``u_final``: end strengths (> 0), on the same side of $s$ as ``u0``.

        **Returns:** a numpy array of shape ``(n,)``.
        """
        n = self.singular_values.shape[0]
        check_positive("u0", u0)
        check_positive("u_final", u_final)
        u0 = _broadcast_modes("u0", u0, n)
        uf = _broadcast_modes("u_final", u_final, n)
        s_all = np.asarray(self.singular_values)
        _check_same_side(u0, uf, s_all, "u0", "u_final")
        d, tau = int(self.depth), float(self.tau)
        p = 2.0 / d - 1.0
        times = np.empty(n)
        for i, (s, a, b) in enumerate(zip(s_all, np.log(u0), np.log(uf))):
            if s == 0:  # tau u' = -D u^(3 - 2/D): exact
                q = p - 1.0
                times[i] = -tau / d * (math.exp(q * b) - math.exp(q * a)) / q
                continue
            leading = (b - a) / s if d == 2 else (math.exp(p * b) - math.exp(p * a)) / (p * s)
            remainder, _ = scipy.integrate.quad(
                lambda x: math.exp((p + 1.0) * x) / (s - math.exp(x)),
                a,
                b,
                epsabs=0.0,
                epsrel=1e-13,
                limit=200,
            )
            times[i] = tau / d * (leading + remainder / s)
        return times

    def escape_time_asymptotic(self, u0) -> np.ndarray:
        r"""The small-initialisation plateau length for ``depth >= 3``:
        $t \approx \tau/((D-2)\,s\,a_0^{D-2})$ with $a_0 = u_0^{1/D}$, the leading term of
        ``learning_time`` as $u_0 \to 0$ (relative error $O(a_0^{D-2})$).

        **Arguments:**

        - ``u0``: initial strengths (> 0), a scalar or shape ``(n,)``.

        **Returns:** a numpy array of shape ``(n,)``.
        """
        d = int(self.depth)
        if d < 3:
            raise ValueError(
                f"`depth` must be >= 3 for escape_time_asymptotic (for depth 2 the escape time "
                f"is logarithmic in 1/u0; use learning_time); got {d}."
            )
        check_positive("u0", u0)
        u0 = _broadcast_modes("u0", u0, self.singular_values.shape[0])
        a0 = u0 ** (1.0 / d)
        s = np.asarray(self.singular_values)
        return float(self.tau) / ((d - 2) * s * a0 ** (d - 2))


# ----------------------------------------------------------------------------------------------
# Full matrices, two layers


def _optional_array(value):
    return None if value is None else as_float_array(value)


class TwoLayerLinearFlow(AbstractSystem):
    r"""Gradient flow of a two-layer linear network $\hat y = W_2W_1x$ on
    $L = \tfrac12E\|y - W_2W_1x\|^2$:

    $$\tau\dot W_1 = W_2^\top(\Sigma^{yx} - W_2W_1\Sigma^x),\qquad
      \tau\dot W_2 = (\Sigma^{yx} - W_2W_1\Sigma^x)W_1^\top .$$

    $W_2^\top W_2 - W_1W_1^\top$ is conserved. With whitened inputs ($\Sigma^x = I$) and an
    aligned initialisation the flow splits into the modes of ``UnbalancedModes`` /
    ``BalancedModes``; from a balanced initialisation ($W_2^\top W_2 = W_1W_1^\top$) the
    network map has the closed form of ``riccati_solution``.

    **Arguments:**

    - ``input_output_correlation``: $\Sigma^{yx} = E[yx^\top]$, shape ``(N3, N1)``.
    - ``hidden_width``: $N_2$ (an integer >= 1; static).
    - ``input_correlation``: $\Sigma^x = E[xx^\top]$, shape ``(N1, N1)``, symmetric positive
      semi-definite; ``None`` (default) means whitened inputs, $\Sigma^x = I$.
    - ``tau``: the time constant (> 0).

    State: ``{"first_layer": W1 (N2, N1), "second_layer": W2 (N3, N2)}``. Observables, with
    $W = W_2W_1$:

    - ``"risk"``: $\tfrac12\operatorname{tr}(W\Sigma^xW^\top) - \operatorname{tr}(W\Sigma^{yx\top})
      + \tfrac12\|\Sigma^{yx}\|_F^2$, i.e. $L - \tfrac12(E\|y\|^2 - \|\Sigma^{yx}\|_F^2)$; for
      whitened inputs this is $\tfrac12\|\Sigma^{yx} - W\|_F^2$, computed in that form;
    - ``"network_map"``: $W$, shape ``(N3, N1)``;
    - ``"imbalance"``: $W_2^\top W_2 - W_1W_1^\top$, shape ``(N2, N2)`` (conserved).

    Reference: Saxe, McClelland, Ganguli, ICLR 2014, arXiv:1312.6120.
    """

    input_output_correlation: jax.Array = eqx.field(converter=as_float_array)
    hidden_width: int = eqx.field(static=True)
    input_correlation: jax.Array | None = eqx.field(default=None, converter=_optional_array)
    tau: jax.Array = eqx.field(default=1.0, converter=as_float_array)

    def __check_init__(self):
        _check_matrix("input_output_correlation", self.input_output_correlation)
        check_integer("hidden_width", self.hidden_width, minimum=1)
        check_positive("tau", self.tau)
        if self.input_correlation is not None:
            n1 = self.input_output_correlation.shape[1]
            sx = self.input_correlation
            if sx.shape != (n1, n1):
                raise ValueError(
                    f"`input_correlation` must have shape ({n1}, {n1}) to match "
                    f"input_output_correlation {self.input_output_correlation.shape}; got {sx.shape}."
                )
            check_finite("input_correlation", sx)
            if is_concrete(sx):
                arr = np.asarray(sx)
                scale = max(np.abs(arr).max(), 1e-300)
                if np.abs(arr - arr.T).max() > 1e-12 * scale:
                    raise ValueError("`input_correlation` must be symmetric.")
                if np.linalg.eigvalsh(arr).min() < -1e-12 * scale:
                    raise ValueError("`input_correlation` must be positive semi-definite.")

    @property
    def widths(self) -> tuple[int, int, int]:
        """The widths ``(N1, N2, N3)``: input, hidden, output."""
        n3, n1 = self.input_output_correlation.shape
        return n1, int(self.hidden_width), n3

    def _residual(self, network_map):
        if self.input_correlation is None:
            return self.input_output_correlation - network_map
        return self.input_output_correlation - network_map @ self.input_correlation

    def vector_field(self, t, y, args):
        w1, w2 = y["first_layer"], y["second_layer"]
        error = self._residual(w2 @ w1)
        return {"first_layer": w2.T @ error / self.tau, "second_layer": error @ w1.T / self.tau}

    def state_shapes(self):
        n1, n2, n3 = self.widths
        return {
            "first_layer": jax.ShapeDtypeStruct((n2, n1), jnp.float64),
            "second_layer": jax.ShapeDtypeStruct((n3, n2), jnp.float64),
        }

    def observables(self, t, y):
        w1, w2 = y["first_layer"], y["second_layer"]
        w = w2 @ w1
        syx = self.input_output_correlation
        if self.input_correlation is None:
            risk = 0.5 * jnp.sum((syx - w) ** 2)
        else:
            risk = (
                0.5 * jnp.sum(w * (w @ self.input_correlation))
                - jnp.sum(w * syx)
                + 0.5 * jnp.sum(syx**2)
            )
        return {
            "risk": risk,
            "network_map": w,
            "imbalance": jnp.matrix_transpose(w2) @ w2 - w1 @ jnp.matrix_transpose(w1),
        }

    # -- initial states ------------------------------------------------------------------------

    def balanced_init(self, scales, key) -> dict[str, jax.Array]:
        r"""A random balanced initial state of rank $r$ = ``len(scales)``:
        $W_1 = O_h\,\mathrm{diag}(d)\,V_1^\top$, $W_2 = U_1\,\mathrm{diag}(d)\,O_h^\top$, where
        $O_h$ (N2 x r), $V_1$ (N1 x r), $U_1$ (N3 x r) have Haar-random orthonormal columns, so
        $W_2^\top W_2 = W_1W_1^\top = O_h\,\mathrm{diag}(d^2)\,O_h^\top$. The frames are not
        aligned with $\Sigma^{yx}$.

        **Arguments:**

        - ``scales``: $d$, the singular values of each layer (1-D, each >= 0,
          ``len(scales) <= min(N1, N2, N3)``); $W_2W_1$ has singular values $d^2$.
        - ``key``: a ``jax.random`` key or an int seed.

        **Returns:** the state ``{"first_layer": W1, "second_layer": W2}``.
        """
        d = jnp.asarray(scales, jnp.float64)
        _check_vector("scales", d)
        check_positive("scales", d, allow_zero=True)
        n1, n2, n3 = self.widths
        r = d.shape[0]
        if r > min(n1, n2, n3):
            raise ValueError(f"`scales` must have at most min(N1, N2, N3) = {min(n1, n2, n3)} entries; got {r}.")
        rng = generator(key)
        o_h, v1, u1 = (jnp.asarray(random_frame(rng, n, r)) for n in (n2, n1, n3))
        return {"first_layer": (o_h * d) @ v1.T, "second_layer": (u1 * d) @ o_h.T}

    def mode_basis(self) -> tuple[jax.Array, jax.Array, jax.Array]:
        r"""The singular value decomposition $\Sigma^{yx} = U\,\mathrm{diag}(s)\,V^\top$ used by
        ``aligned_init`` and ``mode_strengths``: ``(U (N3, k), s (k,), V (N1, k))``,
        ``k = min(N1, N3)``, ``s`` decreasing. Traceable, so ``mode_strengths`` can be used
        inside a ``Crossing`` or an observable."""
        u, s, vt = jnp.linalg.svd(self.input_output_correlation, full_matrices=False)
        return u, s, jnp.matrix_transpose(vt)

    def aligned_init(self, first_layer, second_layer=None, key=0) -> dict[str, jax.Array]:
        r"""An initial state aligned with the modes of $\Sigma^{yx}$:
        $W_1 = R\,\mathrm{diag}(a)\,V^\top$, $W_2 = U\,\mathrm{diag}(b)\,R^\top$ with $U, V$ from
        ``mode_basis`` (first $n$ modes) and $R$ (N2 x n) Haar-random orthonormal columns (the
        hidden-layer symmetry). Each mode then follows ``UnbalancedModes`` (``BalancedModes``
        when $a = b$), and ``mode_strengths`` reads $u = ab$ back.

        **Arguments:**

        - ``first_layer``: $a$, one entry per mode (1-D, ``n <= min(N1, N2, N3)``).
        - ``second_layer``: $b$ (same shape); default ``first_layer`` (balanced).
        - ``key``: a ``jax.random`` key or an int seed for $R$.

        **Returns:** the state ``{"first_layer": W1, "second_layer": W2}``.
        """
        a = jnp.asarray(first_layer, jnp.float64)
        b = a if second_layer is None else jnp.asarray(second_layer, jnp.float64)
        _check_vector("first_layer", a)
        if b.shape != a.shape:
            raise ValueError(f"`second_layer` must have the shape of first_layer {a.shape}; got {b.shape}.")
        check_finite("first_layer", a)
        check_finite("second_layer", b)
        n1, n2, n3 = self.widths
        n = a.shape[0]
        if n > min(n1, n2, n3):
            raise ValueError(f"`first_layer` must have at most min(N1, N2, N3) = {min(n1, n2, n3)} entries; got {n}.")
        u, _, v = self.mode_basis()
        r = jnp.asarray(random_frame(generator(key), n2, n))
        return {"first_layer": (r * a) @ v[:, :n].T, "second_layer": (u[:, :n] * b) @ r.T}

    def mode_strengths(self, y):
        r"""$\mathrm{diag}(U^\top W_2W_1V)$ in the ``mode_basis``: the strength of each mode
        (works on a trajectory's ``ys`` too: leading axes are kept)."""
        u, _, v = self.mode_basis()
        w = y["second_layer"] @ y["first_layer"]
        return jnp.einsum("ia,...ij,ja->...a", u, w, v)

    # -- the Riccati closed form ---------------------------------------------------------------

    def riccati_solution(self, t, y0, chunk=None) -> np.ndarray:
        r"""The exact network map $W_2W_1(t)$ from a balanced initial state (whitened inputs).

        With $Q = [W_1^\top; W_2]$ and $F = [[0, \Sigma^{yx\top}], [\Sigma^{yx}, 0]]$, balance
        gives $\tau\dot Q = FQ - \tfrac12QQ^\top Q$, and $P = QQ^\top$ obeys the Riccati
        equation $\tau\dot P = FP + PF - P^2$, solved by ($\tau = 1$)

        $$P(t) = e^{Ft}Q_0\,[I + Q_0^\top K(t)Q_0]^{-1}Q_0^\top e^{Ft},\qquad
          K(t) = \int_0^t e^{2Fs}ds ;$$

        the network map is the block $P_{21} = W_2W_1$. The bracket has condition number
        $\sim e^{2s_{\max}t/\tau}$, so the state is advanced in chunks of at most ``chunk``:
        with $M = I + Q_0^\top K(h)Q_0 = LL^\top$ (Cholesky), $Q(h) = e^{Fh}Q_0L^{-\top}$
        (exact for $P$; $Q$ itself is determined up to a hidden-layer rotation). Everything
        is done in the eigenbasis $F = O\,\mathrm{diag}(f)\,O^\top$, where $e^{Fh}$ and $K(h)$
        are diagonal ($K$'s entries $(e^{2fh} - 1)/(2f)$ via ``scipy.special.exprel``).

        **Arguments:**

        - ``t``: times >= 0 in increasing order, any shape (flattened in order); each output
          time is also a restart point.
        - ``y0``: a balanced state, $W_2^\top W_2 = W_1W_1^\top$ to within 1e-8 relative.
        - ``chunk``: the longest step between restarts (> 0); default $\tau/s_{\max}$.
          ``numpy.inf`` gives the one-shot formula (accurate only while
          $e^{2s_{\max}t/\tau} \ll 10^{16}$).

        **Returns:** a numpy array of shape ``t.shape + (N3, N1)``.

        Raises ``ValueError`` if ``y0`` is not balanced or ``input_correlation`` is not the
        identity.
        """
        self.check_state(y0)
        n1, n2, n3 = self.widths
        if self.input_correlation is not None:
            sx = np.asarray(self.input_correlation)
            if np.abs(sx - np.eye(n1)).max() > 1e-12:
                raise ValueError(
                    "`input_correlation` must be the identity (whitened inputs) for "
                    "riccati_solution; integrate the flow with `solve` otherwise."
                )
        w1 = np.asarray(y0["first_layer"], np.float64)
        w2 = np.asarray(y0["second_layer"], np.float64)
        gram1, gram2 = w1 @ w1.T, w2.T @ w2
        size = max(np.linalg.norm(gram1), np.linalg.norm(gram2))
        gap = np.linalg.norm(gram2 - gram1)
        if gap > 1e-8 * size:
            raise ValueError(
                "`y0` must be balanced (W2^T W2 == W1 W1^T) for riccati_solution; "
                f"||W2^T W2 - W1 W1^T||_F / ||W W^T||_F = {gap / size:.3g} > 1e-8."
            )
        t = np.asarray(t, np.float64)
        flat = t.reshape(-1)
        if not np.all(np.isfinite(flat)) or np.any(flat < 0) or np.any(np.diff(flat) < 0):
            raise ValueError("`t` must hold finite times >= 0 in increasing order.")
        tau = float(self.tau)
        syx = np.asarray(self.input_output_correlation)
        s_max = float(np.linalg.norm(syx, 2))
        if chunk is None:
            chunk = tau / s_max if s_max > 0 else math.inf
        elif not (isinstance(chunk, (int, float, np.floating, np.integer)) and chunk > 0):
            raise ValueError(f"`chunk` must be > 0 (numpy.inf for one shot); got {chunk!r}.")

        f_mat = np.block([[np.zeros((n1, n1)), syx.T], [syx, np.zeros((n3, n3))]])
        rates, basis = np.linalg.eigh(f_mat)
        rates = rates / tau
        q = basis.T @ np.vstack([w1.T, w2])  # Q in the eigenbasis of F, (N1 + N3, N2)
        out = np.empty(flat.shape + (n3, n1))
        now = 0.0
        for i, target in enumerate(flat):
            span = target - now
            if span > 0:
                steps = max(1, math.ceil(span / chunk)) if math.isfinite(chunk) else 1
                h = span / steps
                grow = np.exp(rates * h)[:, None]
                kernel = (h * scipy.special.exprel(2.0 * rates * h))[:, None]
                for _ in range(steps):
                    m = np.eye(n2) + q.T @ (kernel * q)
                    try:
                        lower = np.linalg.cholesky(m)
                    except np.linalg.LinAlgError:
                        raise ValueError(
                            f"`chunk` = {chunk} is too long: over a step of {h:.4g} the bracket "
                            "I + Q^T K Q (condition number ~ exp(2 s_max h / tau) = "
                            f"{math.exp(min(2.0 * s_max * h / tau, 700.0)):.3g}) lost positive "
                            "definiteness in floating point. Use a smaller `chunk` (default "
                            "tau / s_max)."
                        ) from None
                    q = scipy.linalg.solve_triangular(lower, (grow * q).T, lower=True).T
                now = target
            stacked = basis @ q
            out[i] = stacked[n1:] @ stacked[:n1].T
        return out.reshape(t.shape + (n3, n1))


# ----------------------------------------------------------------------------------------------
# Full matrices, D layers


def _as_int_tuple(value):
    try:
        return tuple(value)
    except TypeError:
        return value


class DeepLinearFlow(AbstractSystem):
    r"""Gradient flow of a depth-$D$ linear network $\hat y = W_D\cdots W_1x$ with whitened
    inputs, on $L = \tfrac12E\|y - W_D\cdots W_1x\|^2$:

    $$\tau\dot W_l = (W_D\cdots W_{l+1})^\top\,(\Sigma^{yx} - W)\,(W_{l-1}\cdots W_1)^\top,
      \qquad W = W_D\cdots W_1 .$$

    For any loss of the end-to-end map, the $D - 1$ matrices
    $W_{l+1}^\top W_{l+1} - W_lW_l^\top$ are conserved (``imbalances``). From a balanced,
    aligned initialisation each mode follows ``DeepModes``.

    **Arguments:**

    - ``input_output_correlation``: $\Sigma^{yx}$, shape ``(N_{D+1}, N_1)``.
    - ``widths``: ``(N_1, ..., N_{D+1})``, the layer widths from input to output (integers
      >= 1, at least two; static). $D$ = ``len(widths) - 1`` = ``depth``.
    - ``tau``: the time constant (> 0).

    State: a dict ``{"layer_0": W_1, ..., "layer_{D-1}": W_D}`` (input side first;
    ``layer_l`` has shape ``(N_{l+2}, N_{l+1})``, i.e. ``(widths[l+1], widths[l])``).
    Observables: ``"risk"`` $\tfrac12\|\Sigma^{yx} - W\|_F^2$ (the loss up to a constant) and
    ``"network_map"`` $W$.

    Reference: Saxe, McClelland, Ganguli, ICLR 2014, arXiv:1312.6120; conservation laws:
    Arora, Cohen, Hazan, ICML 2018; Du, Hu, Lee, NeurIPS 2018.
    """

    input_output_correlation: jax.Array = eqx.field(converter=as_float_array)
    widths: tuple[int, ...] = eqx.field(static=True, converter=_as_int_tuple)
    tau: jax.Array = eqx.field(default=1.0, converter=as_float_array)

    def __check_init__(self):
        _check_matrix("input_output_correlation", self.input_output_correlation)
        if not isinstance(self.widths, tuple) or len(self.widths) < 2:
            raise ValueError(f"`widths` must be a sequence of at least two integers (N_1, ..., N_(D+1)); got {self.widths!r}.")
        for i, w in enumerate(self.widths):
            check_integer(f"widths[{i}]", w, minimum=1)
        want = (self.widths[-1], self.widths[0])
        if tuple(self.input_output_correlation.shape) != want:
            raise ValueError(
                f"`input_output_correlation` must have shape (widths[-1], widths[0]) = {want}; "
                f"got {tuple(self.input_output_correlation.shape)}."
            )
        check_positive("tau", self.tau)

    @property
    def depth(self) -> int:
        """The number of weight matrices D."""
        return len(self.widths) - 1

    def _layers(self, y):
        return [y[f"layer_{l}"] for l in range(self.depth)]

    def network_map(self, y):
        """$W = W_D\\cdots W_1$ (leading axes of a trajectory are kept)."""
        layers = self._layers(y)
        w = layers[0]
        for layer in layers[1:]:
            w = layer @ w
        return w

    def vector_field(self, t, y, args):
        layers = self._layers(y)
        d = self.depth
        below = [jnp.eye(self.widths[0])]  # below[l] = W_{l-1} ... W_0 (0-based)
        for layer in layers[:-1]:
            below.append(layer @ below[-1])
        above = [jnp.eye(self.widths[-1])]  # built from the top: W_{D-1} ... W_{l+1}
        for layer in reversed(layers[1:]):
            above.append(above[-1] @ layer)
        above = above[::-1]
        error = self.input_output_correlation - layers[-1] @ below[-1]
        return {
            f"layer_{l}": above[l].T @ error @ below[l].T / self.tau for l in range(d)
        }

    def state_shapes(self):
        return {
            f"layer_{l}": jax.ShapeDtypeStruct((self.widths[l + 1], self.widths[l]), jnp.float64)
            for l in range(self.depth)
        }

    def observables(self, t, y):
        w = self.network_map(y)
        return {"risk": 0.5 * jnp.sum((self.input_output_correlation - w) ** 2), "network_map": w}

    def imbalances(self, y) -> tuple[jax.Array, ...]:
        r"""The $D - 1$ conserved matrices $W_{l+1}^\top W_{l+1} - W_lW_l^\top$ (1-based
        $l = 1, \dots, D-1$; entry ``l-1`` has shape ``(N_{l+1}, N_{l+1})``). Works on a
        single state or a trajectory's ``ys`` (leading axes kept)."""
        layers = self._layers(y)
        return tuple(
            jnp.matrix_transpose(upper) @ upper - lower @ jnp.matrix_transpose(lower)
            for lower, upper in zip(layers[:-1], layers[1:])
        )

    def aligned_init(self, modes, key=0) -> dict[str, jax.Array]:
        r"""A balanced initial state aligned with the modes of $\Sigma^{yx} = U\,\mathrm{diag}(s)V^\top$:
        $W_1 = R_1\,\mathrm{diag}(a)\,V^\top$, $W_l = R_l\,\mathrm{diag}(a)\,R_{l-1}^\top$,
        $W_D = U\,\mathrm{diag}(a)\,R_{D-1}^\top$, with $R_l$ Haar-random orthonormal columns.
        Every imbalance is zero, $W = U\,\mathrm{diag}(a^D)\,V^\top$, and each mode follows
        ``DeepModes`` with $u = a^D$.

        **Arguments:**

        - ``modes``: $a$, the per-layer mode strengths (1-D, ``n <= min(widths)``).
        - ``key``: a ``jax.random`` key or an int seed.

        **Returns:** the state ``{"layer_0": ..., ...}``.
        """
        a = jnp.asarray(modes, jnp.float64)
        _check_vector("modes", a)
        check_finite("modes", a)
        n = a.shape[0]
        if n > min(self.widths):
            raise ValueError(f"`modes` must have at most min(widths) = {min(self.widths)} entries; got {n}.")
        u, _, vt = np.linalg.svd(np.asarray(self.input_output_correlation), full_matrices=False)
        frames = [jnp.asarray(vt[:n].T)]
        rng = generator(key)
        for l in range(1, self.depth):
            frames.append(jnp.asarray(random_frame(rng, self.widths[l], n)))
        frames.append(jnp.asarray(u[:, :n]))
        return {f"layer_{l}": (frames[l + 1] * a) @ frames[l].T for l in range(self.depth)}
