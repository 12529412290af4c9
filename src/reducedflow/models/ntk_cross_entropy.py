r"""Cross-entropy training of a linearised (NTK) model and gradient starvation.

A network linearised at its initialisation, $\hat y(\theta) = \hat y_0 + \Phi\theta$
($\Phi\in\mathbb R^{n\times p}$ the Jacobian, the "neural tangent random feature matrix";
$\theta$ the displacement from the initial weights), trained by gradient flow on the summed
cross-entropy with weight decay (WD) and Spectral Decoupling (SD, an L2 penalty on the logits),

$$L(\theta) = \mathbf 1^\top\log(1 + e^{-Y\hat y}) + \tfrac{\lambda_{WD}}2\|\theta\|^2
  + \tfrac{\lambda_{SD}}2\|\hat y\|^2,\qquad \dot\theta = -\eta\nabla_\theta L,$$

with labels $y\in\{\pm1\}^n$, $Y = \mathrm{diag}(y)$. With $Y\Phi = USV^\top$ (thin SVD, $k$ = rank,
columns oriented so that $(U^\top\mathbf 1)_j \ge 0$) the **feature responses**
$z = SV^\top\theta = U^\top Y(\hat y - \hat y_0)$ obey a closed $k$-dimensional flow
(margins $m = b_0 + Uz$, $b_0 = Y\hat y_0$):

$$\dot z = \eta\,[S^2U^\top\sigma(-m) - \lambda_{SD}S^2U^\top m - \lambda_{WD}z]
        = -\eta S^2\nabla_z\mathcal L(z),$$
$$\mathcal L(z) = \sum_i\mathrm{softplus}(-m_i) + \tfrac{\lambda_{WD}}2 z^\top S^{-2}z
                 + \tfrac{\lambda_{SD}}2\|m\|^2 .$$

The features are coupled through $U$: where $U\ne I$ the saturation of $\sigma$ lets a strong
feature (large $s_i$) lower the gradient weights $\alpha_k = \sigma(-m_k)$ of the samples it shares
with a weaker one, which then is learned less ("gradient starvation",
$dz_j^*/d(s_i^2) < 0$). SD makes the fixed point independent of $S$.

Provenance (read this): the papers themselves were not read. The loss, the toy model, the dual
and every hyper-parameter come from the authors' public code (github.com/mohammadpz/
Gradient_Starvation) and blog; the reduction to $z$, the Newton fixed point, the implicit-function
derivative, the two-feature sign formula, the SD closed forms and the Lambert-W approximations are
derived in ``shared/theory/gradient_starvation.md`` (§3-§8) for the model as the code and blog
state it, and are checked numerically in ``tests/test_ntk_cross_entropy.py``. The paper's own
notation, theorem hypotheses and equation numbers are not verified.

Reference: M. Pezeshki, S.-O. Kaba, Y. Bengio, A. Courville, D. Precup, G. Lajoie, "Gradient
Starvation: A Learning Proclivity in Neural Networks", NeurIPS 2021, arXiv:2011.09468.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize
import scipy.special

from .._checks import as_float_array, check_finite, check_positive, is_concrete
from .._system import AbstractSystem

__all__ = [
    "FeatureDecomposition",
    "feature_decomposition",
    "LinearisedPrimalFlow",
    "FeatureResponseFlow",
    "QuadraticResponseFlow",
    "DualAscentFlow",
    "two_feature_system",
    "two_feature_starvation_derivative",
    "decoupled_fixed_point",
    "spectral_decoupling_margin",
    "spectral_decoupling_fixed_point",
    "lambert_w_margin",
    "binary_entropy",
    "legendre_lower_bound",
]


# ----------------------------------------------------------------------------------------------
# Input checks


def check_labels(labels) -> np.ndarray:
    """``labels`` as a float64 vector, raising ``ValueError`` unless it is 1-D with entries in
    {-1, +1}."""
    arr = np.asarray(labels, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"`labels` must be a non-empty 1-D array of -1/+1; got shape {arr.shape}.")
    bad = (arr != 1.0) & (arr != -1.0)
    if np.any(bad):
        raise ValueError(
            f"`labels` must hold only -1 and +1 (map 0/1 labels by 2y - 1); got values {np.unique(arr[bad])[:5]}."
        )
    return arr


def check_features(features, n_samples: int) -> np.ndarray:
    """``features`` as a float64 matrix with ``n_samples`` rows, or ``ValueError``."""
    arr = np.asarray(features, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"`features` (Phi) must be a 2-D array (n_samples, n_parameters); got shape {arr.shape}.")
    if arr.shape[0] != n_samples:
        raise ValueError(
            f"`features` (Phi) must have one row per label: {n_samples} rows; got shape {arr.shape}."
        )
    check_finite("features", arr)
    return arr


def _check_penalties(weight_decay, spectral_decoupling, learning_rate) -> None:
    check_positive("weight_decay", weight_decay, allow_zero=True)
    check_positive("spectral_decoupling", spectral_decoupling, allow_zero=True)
    check_positive("learning_rate", learning_rate)


def _optional_array(value):
    return None if value is None else as_float_array(value)


# ----------------------------------------------------------------------------------------------
# The SVD of Y Phi


class FeatureDecomposition(NamedTuple):
    r"""$Y\Phi = U\,\mathrm{diag}(s)\,V^\top$: ``left`` $U$ (n x k, orthonormal columns),
    ``singular_values`` $s$ (k,, decreasing, > 0), ``right`` $V$ (p x k)."""

    left: np.ndarray
    singular_values: np.ndarray
    right: np.ndarray


def feature_decomposition(features, labels, *, rank_tol: float = 1e-10) -> FeatureDecomposition:
    r"""The thin SVD $Y\Phi = USV^\top$ truncated to the numerical rank $k$ (singular values
    above ``rank_tol`` times the largest), with each pair $(u_j, v_j)$ oriented so that
    $(U^\top\mathbf 1)_j \ge 0$ (then a positively learned feature has $z_j^* \ge 0$; the
    starvation statements concern $|z_j^*|$, theory note §6).

    **Arguments:**

    - ``features``: $\Phi$, shape ``(n, p)``.
    - ``labels``: $y \in \{-1, +1\}^n$.
    - ``rank_tol``: relative cut-off for the rank (> 0).

    **Returns:** a ``FeatureDecomposition``.
    """
    y = check_labels(labels)
    phi = check_features(features, y.size)
    check_positive("rank_tol", rank_tol)
    u, s, vt = np.linalg.svd(y[:, None] * phi, full_matrices=False)
    k = int(np.sum(s > rank_tol * s[0])) if s.size and s[0] > 0 else 0
    if k == 0:
        raise ValueError("`features` (Phi) must not be zero: Y Phi has no singular value above rank_tol.")
    u, s, v = u[:, :k], s[:k], vt[:k].T
    sign = np.where(u.sum(axis=0) < 0, -1.0, 1.0)
    return FeatureDecomposition(u * sign, s, v * sign)


# ----------------------------------------------------------------------------------------------
# The primal flow


class LinearisedPrimalFlow(AbstractSystem):
    r"""Gradient flow on the weights of the linearised model $\hat y = \hat y_0 + \Phi\theta$:

    $$\dot\theta = \eta\,[\Phi^\top Y\sigma(-Y\hat y) - \lambda_{SD}\Phi^\top\hat y - \lambda_{WD}\theta].$$

    (Weight decay acts on $\theta$, the displacement from the linearisation point; with
    $\hat y_0 = 0$ and $\theta$ the weights themselves this is the toy model of the authors' code,
    ``Figure_6/toy_fig_6.py``.)

    **Arguments:**

    - ``features``: $\Phi$, shape ``(n, p)``.
    - ``labels``: $y\in\{-1, +1\}^n$.
    - ``weight_decay``: $\lambda_{WD}$ (>= 0).
    - ``spectral_decoupling``: $\lambda_{SD}$ (>= 0).
    - ``learning_rate``: $\eta$ (> 0).
    - ``output_offset``: $\hat y_0$ (n,), the outputs at the linearisation point (default 0).

    State: $\theta$, shape ``(p,)``. Observables: ``"outputs"`` $\hat y$, ``"margins"``
    $Y\hat y$, ``"loss"`` the summed cross-entropy.

    Reference: Pezeshki et al., NeurIPS 2021, arXiv:2011.09468 (model as in their public code).
    """

    features: jax.Array = eqx.field(converter=as_float_array)
    labels: jax.Array = eqx.field(converter=as_float_array)
    weight_decay: jax.Array = eqx.field(default=0.0, converter=as_float_array)
    spectral_decoupling: jax.Array = eqx.field(default=0.0, converter=as_float_array)
    learning_rate: jax.Array = eqx.field(default=1.0, converter=as_float_array)
    output_offset: jax.Array | None = eqx.field(default=None, converter=_optional_array)

    def __check_init__(self):
        if is_concrete(self.labels):
            check_labels(self.labels)
            check_features(self.features, self.labels.shape[0])
        _check_penalties(self.weight_decay, self.spectral_decoupling, self.learning_rate)
        if self.output_offset is not None:
            if self.output_offset.shape != self.labels.shape:
                raise ValueError(
                    f"`output_offset` must have shape {self.labels.shape} (one output per sample); "
                    f"got {self.output_offset.shape}."
                )
            check_finite("output_offset", self.output_offset)

    def outputs(self, theta):
        r"""$\hat y = \hat y_0 + \Phi\theta$ (leading axes of ``theta`` kept)."""
        out = jnp.einsum("ip,...p->...i", self.features, theta)
        return out if self.output_offset is None else out + self.output_offset

    def vector_field(self, t, y, args):
        out = self.outputs(y)
        margins = self.labels * out
        push = self.labels * jax.nn.sigmoid(-margins) - self.spectral_decoupling * out
        return self.learning_rate * (self.features.T @ push - self.weight_decay * y)

    def state_shapes(self):
        return jax.ShapeDtypeStruct((self.features.shape[1],), jnp.float64)

    def observables(self, t, y):
        out = self.outputs(y)
        margins = self.labels * out
        return {"outputs": out, "margins": margins, "loss": jnp.sum(jnp.logaddexp(0.0, -margins))}

    def timescale_ratio(self):
        return _timescale_ratio(np.linalg.svd(np.asarray(self.features), compute_uv=False),
                                self.weight_decay, self.spectral_decoupling)

    def decomposition(self, rank_tol: float = 1e-10) -> FeatureDecomposition:
        """``feature_decomposition(features, labels)``."""
        return feature_decomposition(self.features, self.labels, rank_tol=rank_tol)

    def responses(self, theta, decomposition: FeatureDecomposition | None = None):
        r"""The feature responses $z = U^\top Y(\hat y - \hat y_0) = U^\top Y\Phi\theta = SV^\top\theta$
        (leading axes of ``theta`` kept)."""
        dec = self.decomposition() if decomposition is None else decomposition
        yphi = self.labels[:, None] * self.features
        return jnp.einsum("ik,ip,...p->...k", jnp.asarray(dec.left), yphi, theta)

    def response_flow(self, decomposition: FeatureDecomposition | None = None) -> "FeatureResponseFlow":
        """The equivalent closed ``FeatureResponseFlow`` on $z$."""
        dec = self.decomposition() if decomposition is None else decomposition
        offset = None if self.output_offset is None else self.labels * self.output_offset
        return FeatureResponseFlow(dec.left, dec.singular_values, self.weight_decay,
                                   self.spectral_decoupling, self.learning_rate, offset)

    def dual_flow(self, dual_learning_rate=1.0, decomposition: FeatureDecomposition | None = None) -> "DualAscentFlow":
        """The ``DualAscentFlow`` with the same fixed point (no output offset allowed)."""
        if self.output_offset is not None:
            raise ValueError("`output_offset` must be None for the dual flow (the dual is derived for yhat_0 = 0).")
        dec = self.decomposition() if decomposition is None else decomposition
        return DualAscentFlow(dec.left, dec.singular_values, self.weight_decay, self.spectral_decoupling,
                              dual_learning_rate)


def _timescale_ratio(s, weight_decay, spectral_decoupling):
    """Fastest early rate s_max^2 (1/4 + lambda_SD) + lambda_WD over the slowest late rate
    lambda_WD + lambda_SD s_min^2 (inf without regularisation: margins grow like log t)."""
    s2 = np.asarray(s, dtype=float) ** 2
    wd, sd = float(weight_decay), float(spectral_decoupling)
    slow = wd + sd * s2.min()
    fast = s2.max() * (0.25 + sd) + wd
    return math.inf if slow <= 0 else fast / slow


# ----------------------------------------------------------------------------------------------
# The feature-response flows


class _AbstractResponseFlow(AbstractSystem):
    r"""Shared parameters and the convex objective of the feature-response flows.

    $\dot z = -\eta S^2\nabla\mathcal L(z)$ with
    $\mathcal L(z) = \sum_i\ell(m_i) + \tfrac{\lambda_{WD}}2z^\top S^{-2}z + \tfrac{\lambda_{SD}}2\|m\|^2$,
    $m = b_0 + Uz$; subclasses fix the per-sample loss $\ell$ through ``_sample_loss``.
    """

    left_singular_vectors: jax.Array = eqx.field(converter=as_float_array)
    singular_values: jax.Array = eqx.field(converter=as_float_array)
    weight_decay: jax.Array = eqx.field(default=0.0, converter=as_float_array)
    spectral_decoupling: jax.Array = eqx.field(default=0.0, converter=as_float_array)
    learning_rate: jax.Array = eqx.field(default=1.0, converter=as_float_array)
    margin_offset: jax.Array | None = eqx.field(default=None, converter=_optional_array)

    def __check_init__(self):
        u, s = self.left_singular_vectors, self.singular_values
        if u.ndim != 2:
            raise ValueError(f"`left_singular_vectors` (U) must be a 2-D array (n, k); got shape {u.shape}.")
        if s.ndim != 1 or s.shape[0] != u.shape[1]:
            raise ValueError(
                f"`singular_values` must be 1-D with one entry per column of U ({u.shape[1]}); got shape {s.shape}."
            )
        check_positive("singular_values", s)
        _check_penalties(self.weight_decay, self.spectral_decoupling, self.learning_rate)
        if is_concrete(u):
            check_finite("left_singular_vectors", u)
            gram = np.asarray(u).T @ np.asarray(u)
            if np.max(np.abs(gram - np.eye(u.shape[1]))) > 1e-8:
                raise ValueError("`left_singular_vectors` (U) must have orthonormal columns (U^T U = I to 1e-8).")
        if self.margin_offset is not None:
            if self.margin_offset.shape != (u.shape[0],):
                raise ValueError(f"`margin_offset` must have shape ({u.shape[0]},); got {self.margin_offset.shape}.")
            check_finite("margin_offset", self.margin_offset)

    # -- the per-sample loss: value, -derivative (the gradient weight alpha), curvature --------

    def _sample_loss(self, m, xp):
        raise NotImplementedError

    def margins(self, z):
        """$m = b_0 + Uz$ (leading axes of ``z`` kept)."""
        m = jnp.einsum("ik,...k->...i", self.left_singular_vectors, z)
        return m if self.margin_offset is None else m + self.margin_offset

    def vector_field(self, t, y, args):
        u, s2 = self.left_singular_vectors, self.singular_values**2
        m = self.margins(y)
        _, weight, _ = self._sample_loss(m, jnp)
        drive = u.T @ (weight - self.spectral_decoupling * m)
        return self.learning_rate * (s2 * drive - self.weight_decay * y)

    def state_shapes(self):
        return jax.ShapeDtypeStruct(self.singular_values.shape, jnp.float64)

    def observables(self, t, y):
        m = self.margins(y)
        value, _, _ = self._sample_loss(m, jnp)
        return {"margins": m, "loss": jnp.sum(value)}

    def timescale_ratio(self):
        return _timescale_ratio(self.singular_values, self.weight_decay, self.spectral_decoupling)

    # -- the convex objective in numpy -----------------------------------------------------------

    def _numpy_objective(self) -> "_ConvexObjective":
        u = np.asarray(self.left_singular_vectors)
        b0 = np.zeros(u.shape[0]) if self.margin_offset is None else np.asarray(self.margin_offset)
        return _ConvexObjective(u, np.asarray(self.singular_values) ** 2, float(self.weight_decay),
                                float(self.spectral_decoupling), b0, self._sample_loss)

    def objective(self, z):
        r"""$\mathcal L(z)$, whose $S^2$-preconditioned gradient flow this is."""
        return self._numpy_objective().value(np.asarray(z, float))

    def objective_gradient(self, z) -> np.ndarray:
        r"""$\nabla\mathcal L = -U^\top\alpha + \lambda_{WD}S^{-2}z + \lambda_{SD}U^\top m$,
        $\alpha = -\ell'(m)$; zero exactly at the fixed point."""
        return self._numpy_objective().gradient(np.asarray(z, float))

    def objective_hessian(self, z) -> np.ndarray:
        r"""$A = U^\top DU + \lambda_{WD}S^{-2} + \lambda_{SD}I$, $D = \mathrm{diag}(\ell''(m))$."""
        return self._numpy_objective().hessian(np.asarray(z, float))

    def fixed_point(self, *, tol: float = 1e-13, max_iterations: int = 200) -> np.ndarray:
        r"""The unique fixed point $z^*$, the minimiser of the strictly convex $\mathcal L$, by
        damped Newton from $z = 0$ (theory note §4).

        Backtracking accepts a step that satisfies the Armijo test on $\mathcal L$ **or** lowers
        the gradient norm (near the optimum differences of $\mathcal L$ reach round-off and an
        Armijo test alone stalls). Stops when $\|\nabla\mathcal L\| \le$ ``tol`` or the step is
        below round-off. Plain numpy (the problem is k-dimensional and small).

        **Returns:** $z^*$, shape ``(k,)``. Raises ``ValueError`` without regularisation
        ($\lambda_{WD} = \lambda_{SD} = 0$: no finite fixed point on separable data) and
        ``RuntimeError`` if Newton does not converge in ``max_iterations``.
        """
        problem = self._numpy_objective()
        if problem.weight_decay == 0.0 and problem.spectral_decoupling == 0.0:
            raise ValueError(
                "`weight_decay` or `spectral_decoupling` must be > 0 for a fixed point: unregularised "
                "cross-entropy margins grow like log t."
            )
        z = np.zeros(problem.s2.shape[0])
        grad = problem.gradient(z)
        for _ in range(max_iterations):
            gnorm = np.linalg.norm(grad)
            if gnorm <= tol:
                return z
            step = np.linalg.solve(problem.hessian(z), -grad)
            if np.linalg.norm(step) <= 4e-16 * (1.0 + np.linalg.norm(z)):
                return z
            value, slope, size = problem.value(z), float(grad @ step), 1.0
            while True:
                trial = z + size * step
                trial_grad = problem.gradient(trial)
                if problem.value(trial) <= value + 1e-4 * size * slope or np.linalg.norm(trial_grad) < gnorm:
                    break
                size *= 0.5
                if size < 1e-12:
                    return z  # no further progress possible in floating point
            z, grad = trial, trial_grad
        raise RuntimeError(
            f"Newton did not reach |grad| <= {tol:g} in {max_iterations} iterations (|grad| = {gnorm:.3g}); "
            "raise `max_iterations` or loosen `tol`."
        )

    def fixed_point_residual(self, z) -> float:
        r"""$\|\lambda_{WD}z - S^2U^\top\alpha + \lambda_{SD}S^2U^\top m\|_\infty$, the velocity at ``z``
        divided by $\eta$."""
        return float(np.max(np.abs(np.asarray(self.vector_field(0.0, jnp.asarray(z), None)))) / float(self.learning_rate))

    def starvation_matrix(self, z_star=None) -> np.ndarray:
        r"""$M_{ji} = dz_j^*/d(s_i^2)$ by the implicit-function theorem (theory note §6):
        differentiating $\nabla\mathcal L(z^*; s^2) = 0$,

        $$\frac{dz^*}{d(s_i^2)} = A^{-1}e_i\,\frac{\lambda_{WD}z_i^*}{s_i^4},\qquad
          A = U^\top DU + \lambda_{WD}S^{-2} + \lambda_{SD}I .$$

        Feature $i$ starves feature $j$ when $M_{ji} < 0$ (for $z_j^* > 0$). Pure SD gives
        $M = 0$. **Arguments:** ``z_star``: the fixed point (default ``fixed_point()``).
        **Returns:** the ``(k, k)`` matrix, column $i$ = derivative with respect to $s_i^2$.
        """
        z = self.fixed_point() if z_star is None else np.asarray(z_star, float)
        problem = self._numpy_objective()
        rhs = np.diag(problem.weight_decay * z / problem.s2**2)
        return np.linalg.solve(problem.hessian(z), rhs)


class _ConvexObjective(NamedTuple):
    """The objective of ``_AbstractResponseFlow`` with its parameters as numpy arrays (built once
    per Newton solve: converting JAX arrays on every call would dominate a small problem)."""

    u: np.ndarray
    s2: np.ndarray
    weight_decay: float
    spectral_decoupling: float
    b0: np.ndarray
    sample_loss: object

    def value(self, z):
        m = self.b0 + self.u @ z
        loss, _, _ = self.sample_loss(m, np)
        return float(loss.sum() + 0.5 * self.weight_decay * np.sum(z**2 / self.s2) + 0.5 * self.spectral_decoupling * m @ m)

    def gradient(self, z):
        m = self.b0 + self.u @ z
        _, weight, _ = self.sample_loss(m, np)
        return -self.u.T @ weight + self.weight_decay * z / self.s2 + self.spectral_decoupling * self.u.T @ m

    def hessian(self, z):
        m = self.b0 + self.u @ z
        _, _, curvature = self.sample_loss(m, np)
        return (self.u.T * curvature) @ self.u + np.diag(self.weight_decay / self.s2 + self.spectral_decoupling)


def _cross_entropy_terms(m, xp):
    if xp is np:
        weight = scipy.special.expit(-m)
        return np.logaddexp(0.0, -m), weight, weight * scipy.special.expit(m)
    weight = jax.nn.sigmoid(-m)
    return jnp.logaddexp(0.0, -m), weight, weight * jax.nn.sigmoid(m)


class FeatureResponseFlow(_AbstractResponseFlow):
    r"""The closed flow of the feature responses of cross-entropy training (theory note §3.2, §3.4,
    §3.5):

    $$\dot z = \eta\,[S^2U^\top\sigma(-m) - \lambda_{SD}S^2U^\top m - \lambda_{WD}z],\qquad m = b_0 + Uz,$$

    exact for the linearised model ($z = SV^\top\theta$; ``LinearisedPrimalFlow.response_flow``).
    Early on ($m\approx0$) the rates are $\eta(s_j^2(\tfrac14 + \lambda_{SD}) + \lambda_{WD})$;
    once the margins saturate they fall to $\eta(\lambda_{WD} + \lambda_{SD}s_j^2)$: stiff.

    **Arguments:**

    - ``left_singular_vectors``: $U$ (n x k, orthonormal columns).
    - ``singular_values``: $s$ (k,, > 0).
    - ``weight_decay``: $\lambda_{WD}$ (>= 0); ``spectral_decoupling``: $\lambda_{SD}$ (>= 0).
    - ``learning_rate``: $\eta$ (> 0).
    - ``margin_offset``: $b_0 = Y\hat y_0$ (n,), default 0.

    State: $z$ (k,). Observables: ``"margins"`` $m$, ``"loss"`` $\sum\mathrm{softplus}(-m)$.
    ``fixed_point()`` (Newton), ``starvation_matrix()`` (implicit differentiation).

    Reference: Pezeshki et al., NeurIPS 2021, arXiv:2011.09468 (equations derived in the
    theory note from the model of their code; the paper's form not verified).
    """

    def _sample_loss(self, m, xp):
        return _cross_entropy_terms(m, xp)

    @classmethod
    def from_features(cls, features, labels, weight_decay=0.0, spectral_decoupling=0.0, learning_rate=1.0,
                      output_offset=None, rank_tol: float = 1e-10) -> "FeatureResponseFlow":
        """Build the flow from $\\Phi$ and $y$ (SVD by ``feature_decomposition``)."""
        return LinearisedPrimalFlow(features, labels, weight_decay, spectral_decoupling, learning_rate,
                                    output_offset).response_flow(
            feature_decomposition(features, labels, rank_tol=rank_tol))


class QuadraticResponseFlow(_AbstractResponseFlow):
    r"""The small-margin (quadratic, MSE-like) approximation of ``FeatureResponseFlow``:
    $\mathrm{softplus}(-m)\to\log2 - \tfrac m2 + \tfrac{m^2}8$, i.e. $\sigma(-m)\to\tfrac12 - \tfrac m4$.
    Since $U^\top U = I$ the flow is linear and **diagonal for every U** (no coupling):

    $$\dot z_j = \eta\,[s_j^2 c_j - r_jz_j],\quad r_j = s_j^2(\tfrac14 + \lambda_{SD}) + \lambda_{WD},\quad
      c = U^\top(\tfrac12 - (\tfrac14 + \lambda_{SD})b_0),$$
    $$z_j(t) = z_j^\infty + (z_j(0) - z_j^\infty)e^{-\eta r_jt},\qquad z_j^\infty = s_j^2c_j/r_j .$$

    Arguments, state and observables as ``FeatureResponseFlow``. Theory note §5.2 [derived].
    Reference: Pezeshki et al., NeurIPS 2021, arXiv:2011.09468.
    """

    def _sample_loss(self, m, xp):
        return math.log(2.0) - 0.5 * m + 0.125 * m**2, 0.5 - 0.25 * m, 0.25 + 0.0 * m

    def _rates_and_limit(self):
        problem = self._numpy_objective()
        sd, s2 = problem.spectral_decoupling, problem.s2
        rates = s2 * (0.25 + sd) + problem.weight_decay
        drive = problem.u.T @ (0.5 - (0.25 + sd) * problem.b0)
        return rates, s2 * drive / rates

    def closed_form(self, t, y0):
        """$z(t)$ for times ``t`` of any shape; returns shape ``t.shape + (k,)``."""
        y0 = np.asarray(y0, float)
        self.check_state(y0)
        rates, limit = self._rates_and_limit()
        t = np.asarray(t, float)[..., None]
        return limit + (y0 - limit) * np.exp(-float(self.learning_rate) * rates * t)


class DualAscentFlow(AbstractSystem):
    r"""Gradient ascent on the dual of the regularised cross-entropy (no output offset):

    $$\max_{\alpha\in(0,1)^n}\ \mathbf 1^\top H(\alpha) - \tfrac12\alpha^\top C\alpha,\quad
      C = U\,\mathrm{diag}(c)\,U^\top,\ \ c_j = \frac{s_j^2}{\lambda_{SD}s_j^2 + \lambda_{WD}},$$
    $$\dot\alpha = \eta_\alpha\Big[\log\frac{1-\alpha}\alpha - C\alpha\Big],\qquad z = c\odot U^\top\alpha .$$

    $C = US^2U^\top/\lambda$ for pure WD (the coupling matrix) and $UU^\top/\lambda$ for pure SD. By
    the Legendre identity $\log(1 + e^{-m}) = \max_\alpha[H(\alpha) - \alpha m]$ the maximiser
    gives the same fixed point as the primal flow, $\alpha^* = \sigma(-Uz^*)$, but this is a
    **different** dynamical system (other trajectories, unrelated clock). The authors' code runs
    it as plain gradient steps with clipping; here the state is $w = \mathrm{logit}(\alpha)$ so
    that $\alpha$ stays in $(0, 1)$:
    $\dot w = \eta_\alpha[-w - C\sigma(w)]/(\sigma(w)\sigma(-w))$, the same flow.

    **Arguments:** ``left_singular_vectors`` $U$, ``singular_values`` $s$, ``weight_decay``,
    ``spectral_decoupling`` (not both 0), ``learning_rate`` $\eta_\alpha$ (> 0).

    State: $w$ (n,). Observables: ``"alpha"``, ``"responses"`` $z$, ``"dual_objective"``.
    Declared stiff (the factor $1/(\alpha(1-\alpha))$ is huge near the boundary).

    Reference: Pezeshki et al., NeurIPS 2021, arXiv:2011.09468 (dual as in their
    ``Figure_6/toy_fig_6.py``; the flow form is derived in the theory note §2, §3.3).
    """

    left_singular_vectors: jax.Array = eqx.field(converter=as_float_array)
    singular_values: jax.Array = eqx.field(converter=as_float_array)
    weight_decay: jax.Array = eqx.field(default=0.0, converter=as_float_array)
    spectral_decoupling: jax.Array = eqx.field(default=0.0, converter=as_float_array)
    learning_rate: jax.Array = eqx.field(default=1.0, converter=as_float_array)

    def __check_init__(self):
        u, s = self.left_singular_vectors, self.singular_values
        if u.ndim != 2 or s.ndim != 1 or s.shape[0] != u.shape[1]:
            raise ValueError(
                f"`left_singular_vectors` must be (n, k) and `singular_values` (k,); got {u.shape} and {s.shape}."
            )
        check_positive("singular_values", s)
        _check_penalties(self.weight_decay, self.spectral_decoupling, self.learning_rate)
        if is_concrete((self.weight_decay, self.spectral_decoupling)) and (
            float(self.weight_decay) == 0.0 and float(self.spectral_decoupling) == 0.0
        ):
            raise ValueError("`weight_decay` or `spectral_decoupling` must be > 0 for the dual flow.")

    def response_scales(self):
        """$c_j = s_j^2/(\\lambda_{SD}s_j^2 + \\lambda_{WD})$."""
        s2 = self.singular_values**2
        return s2 / (self.spectral_decoupling * s2 + self.weight_decay)

    def coupling_matrix(self):
        """$C = U\\,\\mathrm{diag}(c)\\,U^\\top$."""
        u = self.left_singular_vectors
        return (u * self.response_scales()) @ u.T

    def vector_field(self, t, y, args):
        alpha = jax.nn.sigmoid(y)
        ascent = -y - self.coupling_matrix() @ alpha
        return self.learning_rate * ascent / (alpha * jax.nn.sigmoid(-y))

    def state_shapes(self):
        return jax.ShapeDtypeStruct((self.left_singular_vectors.shape[0],), jnp.float64)

    def responses(self, w):
        """$z = c\\odot U^\\top\\sigma(w)$ (leading axes kept)."""
        alpha = jax.nn.sigmoid(w)
        return self.response_scales() * jnp.einsum("ik,...i->...k", self.left_singular_vectors, alpha)

    def observables(self, t, y):
        alpha = jax.nn.sigmoid(y)
        dual = jnp.sum(binary_entropy(alpha)) - 0.5 * alpha @ self.coupling_matrix() @ alpha
        return {"alpha": alpha, "responses": self.responses(y), "dual_objective": dual}

    def timescale_ratio(self):
        return math.inf

    @staticmethod
    def initial_state(alpha0, n: int):
        """$w_0 = \\mathrm{logit}(\\alpha_0)$ for every sample (the code uses $\\alpha_0 = 10^{-8}$)."""
        if not 0.0 < alpha0 < 1.0:
            raise ValueError(f"`alpha0` must lie in (0, 1); got {alpha0}.")
        return jnp.full((n,), math.log(alpha0) - math.log1p(-alpha0))


# ----------------------------------------------------------------------------------------------
# Legendre transform


def binary_entropy(alpha):
    r"""$H(\alpha) = -\alpha\log\alpha - (1-\alpha)\log(1-\alpha)$ (0 at the end points); JAX in,
    JAX out, otherwise numpy."""
    if isinstance(alpha, jax.Array):
        return -jax.scipy.special.xlogy(alpha, alpha) - jax.scipy.special.xlog1py(1.0 - alpha, -alpha)
    alpha = np.asarray(alpha, float)
    return -scipy.special.xlogy(alpha, alpha) - scipy.special.xlog1py(1.0 - alpha, -alpha)


def legendre_lower_bound(alpha, margin):
    r"""$H(\alpha) - \alpha m \le \log(1 + e^{-m})$, with equality at $\alpha = \sigma(-m)$
    (the Legendre form of the cross-entropy, theory note §2 [derived])."""
    return binary_entropy(alpha) - alpha * margin


# ----------------------------------------------------------------------------------------------
# Closed forms of decoupled cases


def _scalar_root(coefficient: float) -> float:
    r"""The root $m > 0$ of $c\,m(1 + e^m) = 1$, bracketed by $0 < m < W_0(1/c)$."""
    upper = float(np.real(scipy.special.lambertw(1.0 / coefficient)))
    f = lambda m: coefficient * m * (1.0 + math.exp(m)) - 1.0  # noqa: E731
    if f(upper) <= 0:  # only by round-off
        return upper
    return scipy.optimize.brentq(f, 0.0, upper, xtol=1e-15, rtol=1e-15, maxiter=200)


def decoupled_fixed_point(singular_values, weight_decay=0.0, spectral_decoupling=0.0) -> np.ndarray:
    r"""The fixed point for $U = I$ (each sample carries one feature; also a signed permutation up
    to relabelling), $b_0 = 0$: each $z_j^*$ solves $(\lambda_{WD}/s_j^2 + \lambda_{SD})\,z(1 + e^z) = 1$,
    i.e. $z(1 + e^z) = s_j^2/\lambda_{WD}$ for pure WD: it depends only on its own $s_j$.

    **Returns:** $z^*$, shape ``(k,)``. Theory note §5.1 [derived].
    """
    s = np.atleast_1d(np.asarray(singular_values, float))
    check_positive("singular_values", s)
    check_positive("weight_decay", weight_decay, allow_zero=True)
    check_positive("spectral_decoupling", spectral_decoupling, allow_zero=True)
    if weight_decay == 0 and spectral_decoupling == 0:
        raise ValueError("`weight_decay` or `spectral_decoupling` must be > 0 for a fixed point.")
    return np.array([_scalar_root(weight_decay / si**2 + spectral_decoupling) for si in s])


def spectral_decoupling_margin(spectral_decoupling) -> float:
    r"""$m^*(\lambda)$, the root of $\lambda m(1 + e^m) = 1$ ($\iff\lambda m = \sigma(-m)$): with SD
    alone and square $U$, every training margin at the fixed point equals $m^*$, whatever $S$
    (theory note §7 [derived])."""
    check_positive("spectral_decoupling", spectral_decoupling)
    return _scalar_root(float(spectral_decoupling))


def spectral_decoupling_fixed_point(left_singular_vectors, spectral_decoupling) -> np.ndarray:
    r"""$z^* = m^*(\lambda_{SD})\,U^\top\mathbf 1$ for SD alone, square $U$ (n = k), no offset.
    Independent of $S$."""
    u = np.asarray(left_singular_vectors, float)
    if u.ndim != 2 or u.shape[0] != u.shape[1]:
        raise ValueError(f"`left_singular_vectors` must be square (k = n) for this closed form; got shape {u.shape}.")
    return spectral_decoupling_margin(spectral_decoupling) * u.sum(axis=0)


def lambert_w_margin(coefficient, refined: bool = False) -> float:
    r"""Lambert-W approximations of the root of $\lambda m(1 + e^m) = 1$ (theory note §8, an
    approximation derived there, not the paper's stated formula):
    $m^*\approx W_0(1/\lambda)$ (drop the "1+", an upper bound) or, ``refined``,
    $m^*\approx W_0((1+\lambda)/\lambda)/(1+\lambda)$ (keep $\log(1-\alpha)\approx-\alpha$ in the
    dual). Both become exact as $\lambda\to0$. For WD with $U = I$ use $\lambda = \lambda_{WD}/s^2$."""
    check_positive("coefficient", coefficient)
    lam = float(coefficient)
    if refined:
        return float(np.real(scipy.special.lambertw((1.0 + lam) / lam))) / (1.0 + lam)
    return float(np.real(scipy.special.lambertw(1.0 / lam)))


# ----------------------------------------------------------------------------------------------
# The two-feature rotation (Figure 6 of the authors' code)


def _rotation(overlap: float) -> np.ndarray:
    if not -1.0 < overlap < 1.0:
        raise ValueError(f"`overlap` (delta) must lie in (-1, 1); got {overlap}.")
    c = math.sqrt(1.0 - overlap**2)
    return np.array([[c, -overlap], [overlap, c]])


def two_feature_system(s1, s2, overlap=0.5, weight_decay=0.01, spectral_decoupling=0.0,
                       learning_rate=1.0) -> FeatureResponseFlow:
    r"""The two-feature toy: $n = 2$, $y = (1, 1)$, $U = ((c, -\delta), (\delta, c))$,
    $c = \sqrt{1-\delta^2}$, $S = \mathrm{diag}(s_1, s_2)$ (the authors' ``toy_fig_6.py`` uses
    $\delta = 0.5$, $s_2 = 2$, $s_1\in\{2,\dots,6\}$, $\lambda_{WD} = 0.01$ or $\lambda_{SD} = 0.002$)."""
    return FeatureResponseFlow(_rotation(float(overlap)), np.array([s1, s2], float), weight_decay,
                               spectral_decoupling, learning_rate)


def two_feature_starvation_derivative(system: FeatureResponseFlow, z_star=None) -> float:
    r"""The exact sign formula for the two-feature rotation (theory note §6 [derived]):

    $$\frac{dz_2^*}{d(s_1^2)} = -\frac{c\,\delta\,(D_2 - D_1)\,\lambda_{WD}z_1^*}{s_1^4\det A},\qquad
      D_k = \alpha_k^*(1 - \alpha_k^*),$$

    so with $z_1^* > 0$, $0 < \delta < 1/\sqrt2$: negative (starvation) iff $D_2 > D_1$, i.e.
    iff margin 2 is the smaller one (iff $s_1 > s_2$ on the grids checked), and exactly 0 at
    $s_1 = s_2$. ``system`` must be a two-feature rotation without offset."""
    u = np.asarray(system.left_singular_vectors)
    if u.shape != (2, 2) or abs(u[0, 0] - u[1, 1]) > 1e-12 or abs(u[0, 1] + u[1, 0]) > 1e-12:
        raise ValueError("`system` must be a two-feature rotation U = ((c, -delta), (delta, c)) (see two_feature_system).")
    z = system.fixed_point() if z_star is None else np.asarray(z_star, float)
    c, delta = u[0, 0], u[1, 0]
    _, _, curvature = system._sample_loss(u @ z, np)
    det = np.linalg.det(system.objective_hessian(z))
    s1 = float(system.singular_values[0])
    return float(-c * delta * (curvature[1] - curvature[0]) * float(system.weight_decay) * z[0] / (s1**4 * det))
