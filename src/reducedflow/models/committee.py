r"""Online SGD of soft committee machines: the Saad–Solla / Goldt et al. order-parameter ODEs.

Student and teacher (inputs $x \sim N(0, I_N)$, activation $g(z) = \mathrm{erf}(z/\sqrt2)$):

$$\hat y = \sum_{k=1}^K v_k\,g(\lambda_k),\quad \lambda_k = \frac{w_k\cdot x}{\sqrt N};\qquad
  y = \sum_{n=1}^M A_n\,g(\rho_n) + \sigma\zeta,\quad \rho_n = \frac{w^*_n\cdot x}{\sqrt N}.$$

Online SGD, one fresh sample per step, $\Delta = y - \hat y$:
$w_k \leftarrow w_k + \frac{\eta}{\sqrt N}v_kg'(\lambda_k)\Delta\,x - \frac\kappa Nw_k$,
$v_k \leftarrow v_k + \frac{\eta_v}{N}g(\lambda_k)\Delta - \frac\kappa N v_k$; time $t = $ steps$/N$.
As $N \to \infty$ the order parameters $Q_{ik} = w_i\cdot w_k/N$, $R_{in} = w_i\cdot w^*_n/N$
(with the fixed $T_{nm} = w^*_n\cdot w^*_m/N$) and $v$ follow deterministic ODEs. Stacking the
$K + M$ fields $(\lambda, \rho)$ with signed weights $s = (-v, A)$ and covariance
$C = [[Q, R], [R^\top, T]]$:

$$\dot R_{in} = \eta v_i\sum_p s_pI_3(i, n, p) - \kappa R_{in},$$
$$\dot Q_{ik} = \eta v_i\sum_p s_pI_3(i, k, p) + \eta v_k\sum_p s_pI_3(k, i, p)
  + \eta^2v_iv_k\Big[\sum_{p,q}s_ps_qI_4(i, k, p, q) + \sigma^2J_2(i, k)\Big] - 2\kappa Q_{ik},$$
$$\dot v_i = \eta_v\sum_p s_pI_2(i, p) - \kappa v_i\quad(\text{second layer trained}),$$

with $I_2 = E[g\,g]$, $J_2 = E[g'g']$, $I_3 = E[g'\,z\,g]$, $I_4 = E[g'g'g\,g]$ the closed-form
Gaussian integrals of ``reducedflow.symbolic.gaussian`` (``committee_i2`` etc.;
$I_2 = \frac2\pi\arcsin(\cdot)$, i.e. the full expectation, not half of it). The $O(\eta)$ terms
are the population gradient flow; the $O(\eta^2)$ terms (including $\sigma^2J_2$) are the SGD
noise. The generalisation error (without the noise floor $\sigma^2/2$) is

$$\varepsilon_g = \tfrac12E(\hat y - y_{\rm clean})^2 = \tfrac12\sum_{p,q}s_ps_qI_2(p, q).$$

References: D. Saad, S. A. Solla, "On-line learning in soft committee machines", Phys. Rev. E 52,
4225 (1995) and PRL 74, 4337 (1995); S. Goldt, M. S. Advani, A. M. Saxe, F. Krzakala,
L. Zdeborová, "Dynamics of stochastic gradient descent for two-layer neural networks in the
teacher-student setup", NeurIPS 2019, arXiv:1906.08632. The equations follow the public code
sgoldt/nn2pp (see shared/theory/committee.md).
"""

from __future__ import annotations

import dataclasses
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._random import generator
from .._checks import as_float_array, check_finite, check_integer, check_positive, is_concrete
from .._system import AbstractSystem
from ..symbolic.gaussian import check_covariance, committee_i2, committee_i3, committee_i4, committee_j2

__all__ = [
    "SoftCommittee",
    "committee_generalisation_error",
    "plateau_fixed_point",
    "plateau_generalisation_error",
    "plateau_escape_rate",
    "max_learning_rate",
    "perfect_solution",
    "noise_floor",
    "noise_floor_small_learning_rate",
    "SymmetricPlateau",
    "symmetric_plateau",
    "random_weight_overlaps",
    "EscapeStudy",
    "escape_times_from_random_weights",
]


def _sub_covariances(covariance, index):
    """The covariance blocks ``C[idx][:, idx]`` for every index tuple in ``index`` (shape
    ``(..., r)``): returns shape ``(..., r, r)``. One gather, no Python loops over indices."""
    return covariance[index[..., :, None], index[..., None, :]]


def _full_covariance(q, r, t):
    return jnp.block([[q, r], [r.T, t]])


@jax.jit
def committee_generalisation_error(q, r, t, v, a):
    r"""$\varepsilon_g = \tfrac12\sum_{p,q}s_ps_qI_2(p, q)$ with $s = (-v, A)$ over the
    $K + M$ fields, i.e. $\frac1\pi\sum_{ik}v_iv_k\arcsin\frac{Q_{ik}}{\sqrt{(1+Q_{ii})(1+Q_{kk})}}
    + \frac1\pi\sum_{nm}A_nA_m\arcsin(\cdot T\cdot) - \frac2\pi\sum_{in}v_iA_n\arcsin(\cdot R\cdot)$
    (the noise floor $\sigma^2/2$ is not included).

    **Arguments:** ``q`` $(K, K)$, ``r`` $(K, M)$, ``t`` $(M, M)$, ``v`` $(K,)$, ``a`` $(M,)$.

    **Returns:** the scalar $\varepsilon_g$.
    """
    c = _full_covariance(q, r, t)
    size = c.shape[0]
    grid = jnp.stack(jnp.meshgrid(jnp.arange(size), jnp.arange(size), indexing="ij"), axis=-1)
    i2 = committee_i2(_sub_covariances(c, grid))
    s = jnp.concatenate([-v, a])
    return 0.5 * s @ i2 @ s


class SoftCommittee(AbstractSystem):
    r"""The order-parameter ODEs of online SGD in a soft committee machine (see the module
    docstring for the equations).

    **Arguments:**

    - ``teacher_overlaps``: $T$, the fixed teacher Gram matrix $(M, M)$, symmetric PSD.
    - ``width``: $K$, the number of student hidden units (integer >= 1; static).
    - ``teacher_second_layer``: $A$, shape $(M,)$ (default all ones).
    - ``learning_rate``: $\eta \ge 0$ of the first layer (default 1).
    - ``second_layer_rate``: $\eta_v \ge 0$ of the second layer (default 1; used only when
      ``train_second_layer``).
    - ``noise``: output-noise standard deviation $\sigma \ge 0$.
    - ``weight_decay``: $\kappa \ge 0$.
    - ``train_second_layer``: whether $v$ is trained (``False``: the soft committee machine of
      Saad & Solla, $\dot v = 0$; static).
    - ``gradient_terms``: include the $O(\eta)$ (population gradient-flow) terms (static).
    - ``sgd_noise_terms``: include the $O(\eta^2)$ SGD-noise terms of $\dot Q$, with
      $\sigma^2J_2$ (static). Off: the population gradient flow (time in units of $1/\eta$).

    State: ``{"Q": (K, K), "R": (K, M), "v": (K,)}`` ($Q$ symmetric; $v$ stays constant when it
    is not trained). Observables: ``"generalisation_error"`` $\varepsilon_g$ (without
    $\sigma^2/2$). ``check_state`` also requires $[[Q, R], [R^\top, T]]$ to be positive
    semi-definite (it is the covariance of the local fields).
    """

    teacher_overlaps: jax.Array = eqx.field(converter=as_float_array)
    width: int = eqx.field(static=True)
    teacher_second_layer: jax.Array | None = eqx.field(default=None, converter=lambda x: x if x is None else as_float_array(x))
    learning_rate: jax.Array = eqx.field(default=1.0, converter=as_float_array)
    second_layer_rate: jax.Array = eqx.field(default=1.0, converter=as_float_array)
    noise: jax.Array = eqx.field(default=0.0, converter=as_float_array)
    weight_decay: jax.Array = eqx.field(default=0.0, converter=as_float_array)
    train_second_layer: bool = eqx.field(default=False, static=True)
    gradient_terms: bool = eqx.field(default=True, static=True)
    sgd_noise_terms: bool = eqx.field(default=True, static=True)

    def __post_init__(self):
        if self.teacher_second_layer is None and np.ndim(self.teacher_overlaps) == 2:
            self.teacher_second_layer = jnp.ones(self.teacher_overlaps.shape[0])

    def __check_init__(self):
        check_integer("width", self.width, minimum=1)
        t = self.teacher_overlaps
        if t.ndim != 2 or t.shape[0] != t.shape[1] or t.shape[0] < 1:
            raise ValueError(
                f"`teacher_overlaps` must be an (M, M) matrix with M >= 1 teacher units; got shape {tuple(t.shape)}."
            )
        if is_concrete(t):
            check_covariance("teacher_overlaps", t)
        m = t.shape[0]
        if self.teacher_second_layer is None or tuple(self.teacher_second_layer.shape) != (m,):
            raise ValueError(
                f"`teacher_second_layer` must have shape ({m},); got "
                f"{None if self.teacher_second_layer is None else tuple(self.teacher_second_layer.shape)}."
            )
        check_finite("teacher_second_layer", self.teacher_second_layer)
        check_positive("learning_rate", self.learning_rate, allow_zero=True)
        check_positive("second_layer_rate", self.second_layer_rate, allow_zero=True)
        check_positive("noise", self.noise, allow_zero=True)
        check_positive("weight_decay", self.weight_decay, allow_zero=True)

    @property
    def teacher_width(self) -> int:
        """$M$, the number of teacher hidden units."""
        return self.teacher_overlaps.shape[0]

    # -- state ---------------------------------------------------------------------------------

    def state_shapes(self):
        k, m = self.width, self.teacher_width
        f = jnp.float64
        return {"Q": jax.ShapeDtypeStruct((k, k), f), "R": jax.ShapeDtypeStruct((k, m), f),
                "v": jax.ShapeDtypeStruct((k,), f)}

    def check_state(self, y0, name: str = "y0") -> None:
        super().check_state(y0, name)
        if is_concrete(y0):
            c = np.block([[np.asarray(y0["Q"]), np.asarray(y0["R"])],
                          [np.asarray(y0["R"]).T, np.asarray(self.teacher_overlaps)]])
            check_covariance(f"{name} (the field covariance [[Q, R], [R^T, T]])", c, tol=1e-10)

    def initial_state(self, student_overlaps, student_teacher_overlaps, second_layer=None):
        """A checked state dict from $Q$, $R$ and $v$ (default all ones)."""
        v = jnp.ones(self.width) if second_layer is None else jnp.asarray(second_layer, jnp.float64)
        y0 = {"Q": jnp.asarray(student_overlaps, jnp.float64), "R": jnp.asarray(student_teacher_overlaps, jnp.float64), "v": v}
        self.check_state(y0)
        return y0

    # -- right-hand side -----------------------------------------------------------------------

    def _signed_weights(self, v):
        return jnp.concatenate([-v, self.teacher_second_layer])

    def vector_field(self, t, y, args):
        q, r, v = y["Q"], y["R"], y["v"]
        k = self.width
        size = k + self.teacher_width
        c = _full_covariance(q, r, self.teacher_overlaps)
        s = self._signed_weights(v)
        students, fields = jnp.arange(k), jnp.arange(size)
        eta, kappa = self.learning_rate, self.weight_decay

        dq = -2.0 * kappa * q
        dr = -kappa * r
        if self.gradient_terms:
            # I3(i, b, p) for student i, any field b, any field p: (K, K+M, K+M)
            i, b, p = jnp.meshgrid(students, fields, fields, indexing="ij")
            i3 = committee_i3(_sub_covariances(c, jnp.stack([i, b, p], axis=-1)))
            bracket = i3 @ s  # (K, K+M): sum_p s_p I3(i, b, p)
            drift = eta * v[:, None] * bracket
            dr = dr + drift[:, k:]
            dq = dq + drift[:, :k] + drift[:, :k].T
        if self.sgd_noise_terms:
            i, kk, p, qq = jnp.meshgrid(students, students, fields, fields, indexing="ij")
            i4 = committee_i4(_sub_covariances(c, jnp.stack([i, kk, p, qq], axis=-1)))
            i_, k_ = jnp.meshgrid(students, students, indexing="ij")
            j2 = committee_j2(_sub_covariances(c, jnp.stack([i_, k_], axis=-1)))
            noise_term = jnp.einsum("ikpq,p,q->ik", i4, s, s) + self.noise**2 * j2
            dq = dq + eta**2 * jnp.outer(v, v) * noise_term
        if self.train_second_layer:
            i_, p = jnp.meshgrid(students, fields, indexing="ij")
            i2 = committee_i2(_sub_covariances(c, jnp.stack([i_, p], axis=-1)))
            dv = self.second_layer_rate * (i2 @ s) - kappa * v
        else:
            dv = jnp.zeros_like(v)
        return {"Q": dq, "R": dr, "v": dv}

    def generalisation_error(self, y):
        """$\\varepsilon_g$ at state ``y`` (without the noise floor $\\sigma^2/2$)."""
        return committee_generalisation_error(y["Q"], y["R"], self.teacher_overlaps, y["v"], self.teacher_second_layer)

    def observables(self, t, y):
        return {"generalisation_error": self.generalisation_error(y)}

    # -- packed coordinates (for Jacobians) ----------------------------------------------------

    def pack(self, y):
        r"""The independent coordinates as one vector: $R$ (row-major), the upper triangle
        $Q_{ik}$, $i \le k$ (row-major), then $v$ if it is trained. Packing only $i \le k$
        avoids the spurious zero eigenvalue of the antisymmetric part of $Q$."""
        iu = jnp.triu_indices(self.width)
        parts = [y["R"].reshape(-1), y["Q"][iu]]
        if self.train_second_layer:
            parts.append(y["v"])
        return jnp.concatenate(parts)

    def unpack(self, x, second_layer=None):
        """Inverse of ``pack``; ``second_layer`` gives $v$ when it is not trained (default 1)."""
        k, m = self.width, self.teacher_width
        nr, nq = k * m, k * (k + 1) // 2
        r = x[:nr].reshape(k, m)
        iu = jnp.triu_indices(k)
        upper = jnp.zeros((k, k)).at[iu].set(x[nr:nr + nq])
        q = upper + jnp.triu(upper, 1).T
        if self.train_second_layer:
            v = x[nr + nq:]
        else:
            v = jnp.ones(k) if second_layer is None else jnp.asarray(second_layer, jnp.float64)
        return {"Q": q, "R": r, "v": v}

    def jacobian(self, y):
        """The Jacobian of the packed vector field at state ``y`` (``jax.jacfwd``, compiled)."""
        return _packed_jacobian(self, y)


@eqx.filter_jit
def _packed_jacobian(system: SoftCommittee, y):
    v = y["v"]

    def packed_field(x):
        return system.pack(system.vector_field(0.0, system.unpack(x, v), None))

    return jax.jacfwd(packed_field)(system.pack(y))


@eqx.filter_jit
def _vector_field(system: SoftCommittee, y):
    return system.vector_field(0.0, y, None)


# ----------------------------------------------------------------------------------------------
# Closed forms (shared/theory/committee.md, sections 5-7)


def plateau_fixed_point(width: int) -> dict[str, np.ndarray]:
    r"""The symmetric (unspecialised) fixed point of the first-order flow for $K = M$,
    $T = I$, $v = A = 1$, $\sigma = \kappa = 0$: $Q_{ik} = 1/(2K - 1)$ for all $i, k$ and
    $R_{in} = 1/\sqrt{K(2K-1)}$ for all $i, n$ (Saad & Solla 1995)."""
    k = check_integer("width", width, minimum=1)
    return {"Q": np.full((k, k), 1.0 / (2 * k - 1)), "R": np.full((k, k), 1.0 / math.sqrt(k * (2 * k - 1))), "v": np.ones(k)}


def plateau_generalisation_error(width: int) -> float:
    r"""$\varepsilon_g^{\rm plateau} = \frac K\pi\big[\frac\pi6 - K\arcsin\frac1{2K}\big]$, the
    height of the symmetric plateau for $K = M$, $T = I$, $v = A = 1$, $\eta \to 0$."""
    k = check_integer("width", width, minimum=1)
    return k / math.pi * (math.pi / 6 - k * math.asin(1.0 / (2 * k)))


def plateau_escape_rate(width: int, learning_rate: float = 1.0) -> float:
    r"""$\lambda_{\rm esc} = \eta\,\frac{2K}{\pi\sqrt{2K - 1}(2K + 1)^{3/2}}$: the unstable
    eigenvalue (multiplicity $(K-1)^2$) of the first-order flow at the symmetric fixed point
    (identified numerically to ~10 digits; shared/theory/committee.md section 6)."""
    k = check_integer("width", width, minimum=1)
    check_positive("learning_rate", learning_rate)
    return learning_rate * 2 * k / (math.pi * math.sqrt(2 * k - 1) * (2 * k + 1) ** 1.5)


def max_learning_rate(width: int, *, upper: float = 20.0, xtol: float = 1e-12) -> float:
    r"""The largest learning rate at which the perfect solution $R = Q = T = I$ ($K = M$,
    $v = A = 1$ fixed, $\sigma = \kappa = 0$, $\eta^2$ terms on) is linearly stable: bisection
    on $\eta$ for the sign change of the largest real part of the eigenvalues of the packed
    Jacobian. For $K = 1$ the exact value is $\pi\sqrt{5/3}$.

    **Arguments:** ``width`` $K$; ``upper``: an unstable $\eta$ to start the bracket;
    ``xtol``: absolute tolerance.

    **Returns:** $\eta_{\max}$.
    """
    k = check_integer("width", width, minimum=1)
    check_positive("upper", upper)
    eye = jnp.eye(k)
    y = {"Q": eye, "R": eye, "v": jnp.ones(k)}

    @jax.jit
    def top(eta):
        system = SoftCommittee(eye, k, learning_rate=eta)
        return jnp.max(jnp.real(jnp.linalg.eigvals(system.jacobian(y))))

    lo, hi = 1e-3, float(upper)
    if not float(top(lo)) < 0 or not float(top(hi)) > 0:
        raise ValueError(f"`upper` = {upper} does not bracket the stability limit; try a larger value.")
    while hi - lo > xtol:
        mid = 0.5 * (lo + hi)
        if float(top(mid)) < 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)

# ----------------------------------------------------------------------------------------------
# Noise floor (shared/theory/committee.md, section 8)


def perfect_solution(system: SoftCommittee) -> dict[str, jax.Array]:
    r"""The perfect solution $Q = R = T$, $v = A$ of a committee with $K = M$: the student
    equals the teacher, $\Delta \equiv$ noise, and every term of the noiseless ODE vanishes.

    **Arguments:** ``system``, a ``SoftCommittee`` with ``width`` equal to the teacher width.

    **Returns:** the state dict ``{"Q", "R", "v"}``.
    """
    if system.width != system.teacher_width:
        raise ValueError(
            f"`system` must have as many student as teacher units (K = M) for the perfect solution; "
            f"got K = {system.width}, M = {system.teacher_width}."
        )
    t = system.teacher_overlaps
    return {"Q": t, "R": t, "v": system.teacher_second_layer}


@eqx.filter_jit
def _noise_response(system: SoftCommittee, y):
    noiseless = eqx.tree_at(lambda s: s.noise, system, jnp.zeros_like(system.noise))
    v = y["v"]
    jacobian = _packed_jacobian(noiseless, y)
    forcing = system.pack(system.vector_field(0.0, y, None))  # = eta^2 sigma^2 J2 at y (Delta = noise)
    shift = -jnp.linalg.solve(jacobian, forcing)
    gradient = jax.grad(lambda x: system.generalisation_error(system.unpack(x, v)))(system.pack(y))
    return gradient @ shift, shift


def noise_floor(system: SoftCommittee) -> float:
    r"""The asymptotic generalisation error with output noise $\sigma$, from linear response
    around the perfect solution $y^* = (Q = R = T, v = A)$, $K = M$, $\kappa = 0$.

    At $y^*$ the gradient and $I_4$ terms vanish ($\Delta$ is pure noise), so the only forcing is
    $b = \eta^2\sigma^2v_iv_kJ_2(i, k)$ in the $\dot Q_{ik}$ components. To first order in
    $\sigma^2$ the stationary point moves by $\delta x = -J^{-1}b$, $J$ the Jacobian of the
    noiseless ODE (with its $\eta^2$ terms) at $y^*$ in the packed coordinates of
    ``SoftCommittee.pack``, and

    $$\varepsilon_g^* = \nabla\varepsilon_g(y^*)\cdot\delta x + O(\sigma^4)$$

    ($\varepsilon_g$ without $\sigma^2/2$; its gradient in the order parameters does not vanish
    at $y^*$ because they are constrained to the covariance cone). For $\eta \to 0$ this tends
    to $\eta\sigma^2K/(2\sqrt3\pi)$ for $T = I$, $v = A = 1$
    (``noise_floor_small_learning_rate``). Exact for any $\eta$ below the stability limit as
    $\sigma \to 0$; the relative error is $O(\sigma^2)$.

    **Arguments:** ``system``: a ``SoftCommittee`` with $K = M$ and no weight decay (first
    layer only, or both layers trained). Its ``learning_rate`` and ``noise`` are used.

    **Returns:** the predicted $\varepsilon_g^*$ (float).

    Reference: Goldt et al., NeurIPS 2019, arXiv:1906.08632 (the asymptotic error of online SGD
    with output noise); method: shared/theory/committee.md section 8.
    """
    if not isinstance(system, SoftCommittee):
        raise ValueError(f"`system` must be a SoftCommittee; got {type(system).__name__}.")
    if is_concrete(system.weight_decay) and float(system.weight_decay) != 0.0:
        raise ValueError(
            f"`system.weight_decay` must be 0 for the noise floor around the perfect solution; "
            f"got {float(system.weight_decay)}."
        )
    if not (system.gradient_terms and system.sgd_noise_terms):
        raise ValueError("`system` must include both the gradient and the SGD-noise terms (the defaults).")
    floor, _ = _noise_response(system, perfect_solution(system))
    return float(floor)


def noise_floor_small_learning_rate(width: int, learning_rate: float, noise: float) -> float:
    r"""$\varepsilon_g^* = \eta\sigma^2K/(2\sqrt3\pi)$: the leading small-$\eta$ term of the
    noise floor for $K = M$, $T = I$, $v = A = 1$ fixed (shared/theory/committee.md section 8,
    identified numerically; ``noise_floor`` gives the value at finite $\eta$)."""
    k = check_integer("width", width, minimum=1)
    check_positive("learning_rate", learning_rate, allow_zero=True)
    check_positive("noise", noise, allow_zero=True)
    return learning_rate * noise**2 * k / (2 * math.sqrt(3) * math.pi)


# ----------------------------------------------------------------------------------------------
# The plateau at finite learning rate, and random initial overlaps


@dataclasses.dataclass(frozen=True)
class SymmetricPlateau:
    """The symmetric (unspecialised) fixed point of the full ODE at a finite learning rate.

    **Attributes:** ``state`` (the fixed point, a state dict of NumPy arrays),
    ``generalisation_error`` (its $\\varepsilon_g$), ``escape_rate`` (the largest real part of
    the Jacobian's eigenvalues there), ``residual`` (max |RHS| at ``state``)."""

    state: dict
    generalisation_error: float
    escape_rate: float
    residual: float


def symmetric_plateau(width: int, learning_rate: float, *, iterations: int = 50) -> SymmetricPlateau:
    r"""The symmetric plateau of the committee ODE with $K = M$, $T = I$, $v = A = 1$ fixed,
    $\sigma = \kappa = 0$, at learning rate $\eta$ *including* the $\eta^2$ terms (which move
    it: $Q$, $R$ and $\varepsilon_g$ grow with $\eta$). Newton's method on the packed vector
    field, started at the $\eta \to 0$ point ``plateau_fixed_point`` (the field is equivariant
    under permutations of units, so the iterates stay on the symmetric subspace).

    **Arguments:** ``width`` $K$; ``learning_rate`` $\eta > 0$; ``iterations``: Newton steps.
    (Without the $\eta^2$ terms the plateau is ``plateau_fixed_point`` at every $\eta$.)

    **Returns:** a ``SymmetricPlateau``; its ``escape_rate`` is the rate that sets the plateau
    length $\approx \ln(1/\delta_0)/\lambda_{\rm esc}$ at this $\eta$.
    """
    k = check_integer("width", width, minimum=1)
    check_positive("learning_rate", learning_rate)
    iterations = check_integer("iterations", iterations)
    system = SoftCommittee(jnp.eye(k), k, learning_rate=learning_rate)
    y = {key: jnp.asarray(val) for key, val in plateau_fixed_point(k).items()}
    x = system.pack(y)
    for _ in range(iterations):
        y = system.unpack(x)
        step = jnp.linalg.solve(_packed_jacobian(system, y), system.pack(_vector_field(system, y)))
        x = x - step
        if float(jnp.max(jnp.abs(step))) < 1e-15:
            break
    y = system.unpack(x)
    residual = float(jnp.max(jnp.abs(system.pack(_vector_field(system, y)))))
    if not residual < 1e-10:
        raise ValueError(f"Newton's method did not converge to the plateau at `learning_rate` = {learning_rate} "
                         f"(residual {residual:.2e}); the plateau may not exist this close to the stability limit.")
    rate = float(np.max(np.linalg.eigvals(np.asarray(_packed_jacobian(system, y))).real))
    return SymmetricPlateau({key: np.asarray(val) for key, val in y.items()},
                            float(system.generalisation_error(y)), rate, residual)


def random_weight_overlaps(width: int, teacher_width: int, dimension: int, key, *, seeds: int = 1,
                           scale: float = 1.0) -> dict[str, np.ndarray]:
    r"""The order parameters of random student weights, drawn exactly without building
    $N$-dimensional vectors: student rows $w_k = \text{scale}\cdot\xi_k$, $\xi_k \sim N(0, I_N)$,
    teacher rows orthogonal with $|w^*_n|^2 = N$ ($T = I$). Writing $\xi_k$ in a basis whose
    first $M$ vectors are the teacher directions,

    $$R = \text{scale}\,Z/\sqrt N,\qquad Q = \text{scale}^2\,(ZZ^\top + W)/N,$$

    $Z$ a $K\times M$ standard Gaussian matrix and $W \sim$ Wishart$_K(N - M, I)$ (Bartlett
    decomposition). So $R = O(N^{-1/2})$ and $Q = \text{scale}^2(I + O(N^{-1/2}))$: the
    symmetry-breaking amplitude of a random start is $O(N^{-1/2})$, as for
    ``reducedflow.networks.committee.sample_committee(..., overlap=None)``.

    **Arguments:** ``width`` $K$, ``teacher_width`` $M$, ``dimension`` $N \ge K + M$ (integers);
    ``key``: a ``jax.random`` key or an integer seed; ``seeds``: number of draws S;
    ``scale`` (> 0).

    **Returns:** ``{"Q": (S, K, K), "R": (S, K, M), "v": (S, K)}`` ($v = 1$), for
    ``solve_many(..., y0_batched=True)``.
    """
    k = check_integer("width", width)
    m = check_integer("teacher_width", teacher_width)
    n = check_integer("dimension", dimension, minimum=k + m)
    s = check_integer("seeds", seeds)
    check_positive("scale", scale)
    rng = generator(key)
    z = rng.standard_normal((s, k, m))
    lower = np.tril(rng.standard_normal((s, k, k)), -1)
    dof = n - m - np.arange(k)
    lower[:, np.arange(k), np.arange(k)] = np.sqrt(rng.chisquare(dof, size=(s, k)))
    wishart = lower @ np.swapaxes(lower, -1, -2)
    q = scale**2 * (z @ np.swapaxes(z, -1, -2) + wishart) / n
    return {"Q": q, "R": scale * z / math.sqrt(n), "v": np.ones((s, k))}


@dataclasses.dataclass(frozen=True)
class EscapeStudy:
    """Plateau escape times of the committee ODE from the overlaps of random weights.

    **Attributes:** ``dimensions`` (the $N$ values), ``times`` (shape ``(len(dimensions), seeds)``:
    first time $\\varepsilon_g$ falls below half the plateau height), ``mean_times``,
    ``escape_rate`` (of the plateau at this $\\eta$, ``symmetric_plateau``),
    ``closed_form_rate`` (``plateau_escape_rate``, $\\eta \\to 0$), ``plateau_error``, and
    ``fit``: ``reducedflow.analysis.plateaus.fit_scaling`` of $e^{\\lambda t_{\\rm esc}}$ against
    $N$, whose exponent is $\\lambda b$ in $t_{\\rm esc} = a + b\\ln N$ (theory: 1/2)."""

    dimensions: np.ndarray
    times: np.ndarray
    mean_times: np.ndarray
    escape_rate: float
    closed_form_rate: float
    plateau_error: float
    fit: object


def escape_times_from_random_weights(width: int, learning_rate: float, dimensions, *, seeds: int = 32,
                                     key=0, rtol: float = 1e-8) -> EscapeStudy:
    r"""Escape times from the symmetric plateau ($K = M$, $T = I$, $v = A = 1$ fixed, full ODE
    at $\eta$) starting from the exact overlaps of random weights at each input dimension $N$
    (``random_weight_overlaps``, scale 1): the symmetry-breaking part of $R$ is $O(N^{-1/2})$
    and grows like $e^{\lambda_{\rm esc}t}$ on the plateau, so
    $t_{\rm esc} \approx \frac1{2\lambda_{\rm esc}}\ln N + \text{const}$
    (Biehl, Riegler & Wöhler 1996; Saad & Solla 1995). All seeds and dimensions are solved in one
    ``solve_many`` call.

    **Arguments:** ``width`` $K \ge 2$; ``learning_rate`` $\eta$; ``dimensions``: the $N$
    values (each >= 2K); ``seeds`` per $N$; ``key``; ``rtol`` of the solve.

    **Returns:** an ``EscapeStudy``.
    """
    import equinox as eqx

    from .._solve import solve_many
    from ..analysis.plateaus import fit_scaling, transition_time

    k = check_integer("width", width, minimum=2)
    seeds = check_integer("seeds", seeds, minimum=2)
    dims = np.asarray(dimensions, dtype=np.float64).reshape(-1)
    if dims.size < 2 or np.any(dims != np.round(dims)) or np.any(dims < 2 * k):
        raise ValueError(f"`dimensions` must hold at least two integers >= 2K = {2 * k}; got {dimensions!r}.")
    plateau = symmetric_plateau(k, learning_rate)
    rng = generator(key)
    draws = [random_weight_overlaps(k, k, int(n), int(rng.integers(2**31)), seeds=seeds) for n in dims]
    y0 = {name: jnp.asarray(np.concatenate([d[name] for d in draws])) for name in ("Q", "R", "v")}
    batch = dims.size * seeds
    system = SoftCommittee(jnp.eye(k), k, learning_rate=learning_rate)
    systems = jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (batch,) + a.shape) if eqx.is_array(a) else a, system)
    t1 = 2.0 * (0.5 * math.log(dims.max()) / plateau.escape_rate + 30.0 / learning_rate)
    ts = np.linspace(0.0, t1, 3001)
    traj = solve_many(systems, y0, t1, y0_batched=True, saveat=ts, rtol=rtol, atol=1e-3 * rtol)
    eg = np.asarray(traj.observables["generalisation_error"])
    level = 0.5 * plateau.generalisation_error
    times = np.array([transition_time(ts[1:], curve[1:], level) for curve in eg]).reshape(dims.size, seeds)
    if not np.all(np.isfinite(times)):
        raise ValueError("some runs did not leave the plateau before t1; try a larger `learning_rate`.")
    fit = fit_scaling(dims, np.exp(plateau.escape_rate * times))
    return EscapeStudy(dims, times, times.mean(axis=1), plateau.escape_rate,
                       plateau_escape_rate(k, learning_rate), plateau.generalisation_error, fit)
