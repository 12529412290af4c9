"""A singularly perturbed fast/slow gradient flow: the test bed for stiff solving."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._checks import as_float_array, check_positive
from .._system import AbstractSystem


class FastSlowGradientFlow(AbstractSystem):
    r"""Gradient flow of $V(x, z) = \tfrac12 (x - x_*)^2 + \tfrac12 (z - x)^2$ in which the fast
    variable $z$ learns $1/\varepsilon$ faster than the slow variable $x$:

    $$\dot x = -(x - x_*) + (z - x), \qquad \varepsilon\,\dot z = -(z - x).$$

    For $\varepsilon \to 0$, $z$ collapses onto the slow manifold $z = x$ in time
    $O(\varepsilon)$ and then $x$ relaxes to $x_*$ at rate 1 — the two-timescale structure of a
    layer that learns much faster than another (Berthier, Montanari, Zhou 2023, arXiv
    2306.07863). The system is linear, so ``closed_form`` is exact (matrix exponential), and
    stiff for small $\varepsilon$: the Jacobian has eigenvalues $\approx -1/\varepsilon$ and
    $\approx -1$.

    **Arguments:**

    - ``epsilon``: time-scale ratio (> 0); ``timescale_ratio()`` is ``1/epsilon``.
    - ``target``: $x_*$.

    State: ``{"slow": x, "fast": z}`` (scalars).
    """

    epsilon: jax.Array = eqx.field(converter=as_float_array)
    target: jax.Array = eqx.field(default=1.0, converter=as_float_array)

    def __check_init__(self):
        check_positive("epsilon", self.epsilon)

    def _matrix(self):
        return jnp.array([[-2.0, 1.0], [1.0 / self.epsilon, -1.0 / self.epsilon]])

    def vector_field(self, t, y, args):
        x, z = y["slow"], y["fast"]
        return {"slow": -(x - self.target) + (z - x), "fast": -(z - x) / self.epsilon}

    def state_shapes(self):
        scalar = jax.ShapeDtypeStruct((), jnp.float64)
        return {"fast": scalar, "slow": scalar}

    def observables(self, t, y):
        x, z = y["slow"], y["fast"]
        return {"potential": 0.5 * (x - self.target) ** 2 + 0.5 * (z - x) ** 2}

    def closed_form(self, t, y0):
        # Deviation from the fixed point (x*, x*) evolves linearly: d/dt e = A e.
        a = np.asarray(self._matrix())
        e0 = np.array([float(y0["slow"]), float(y0["fast"])]) - float(self.target)
        vals, vecs = np.linalg.eig(a)
        coeffs = np.linalg.solve(vecs, e0)
        t = np.asarray(t, dtype=np.float64)
        e = np.real(np.einsum("ij,j,...j->...i", vecs, coeffs, np.exp(np.multiply.outer(t, vals))))
        return {"slow": e[..., 0] + float(self.target), "fast": e[..., 1] + float(self.target)}

    def timescale_ratio(self):
        return 1.0 / self.epsilon

    def fast_components(self):
        """``z`` (``"fast"``) is the fast variable, ``x`` (``"slow"``) the slow one."""
        return {"fast": True, "slow": False}


class CurvedFastSlowGradientFlow(AbstractSystem):
    r"""A nonlinear singularly perturbed gradient flow with a curved slow manifold: the flow of
    $V(x, z) = \tfrac12 (x - 1)^2 + \tfrac12 (z - x^2)^2 + \tfrac14 x^4$ with the fast
    variable $z$ learning $1/\varepsilon$ faster,

    $$\dot x = -(x - 1) + 2x(z - x^2) - x^3, \qquad \varepsilon\,\dot z = -(z - x^2).$$

    As $\varepsilon \to 0$, $z$ collapses onto $z = x^2$ within $O(\varepsilon)$ time and
    $x$ follows the reduced flow $\dot x = -(x - 1) - x^3$ (Tikhonov's theorem) up to
    $O(\varepsilon)$: ``reduced_slow_flow`` gives it, the independent witness for small
    $\varepsilon$. Unlike ``FastSlowGradientFlow`` the implicit stages need several Newton
    (chord) iterations, which is what makes step counts of implicit solvers grow with
    $1/\varepsilon$ when their root finder is set too tight.

    **Arguments:**

    - ``epsilon``: time-scale ratio (> 0); ``timescale_ratio()`` is ``1/epsilon``.

    State: ``{"slow": x, "fast": z}`` (scalars).
    """

    epsilon: jax.Array = eqx.field(converter=as_float_array)

    def __check_init__(self):
        check_positive("epsilon", self.epsilon)

    def vector_field(self, t, y, args):
        x, z = y["slow"], y["fast"]
        return {"slow": -(x - 1.0) + 2.0 * x * (z - x**2) - x**3, "fast": -(z - x**2) / self.epsilon}

    def state_shapes(self):
        scalar = jax.ShapeDtypeStruct((), jnp.float64)
        return {"fast": scalar, "slow": scalar}

    def observables(self, t, y):
        x, z = y["slow"], y["fast"]
        return {"potential": 0.5 * (x - 1.0) ** 2 + 0.5 * (z - x**2) ** 2 + 0.25 * x**4}

    @staticmethod
    def reduced_slow_flow(t, x0):
        r"""The $\varepsilon \to 0$ limit $x(t)$ of $\dot x = -(x - 1) - x^3$ from ``x0``
        (scipy's DOP853 at rtol 1e-12, independent of this library's solvers)."""
        from scipy.integrate import solve_ivp

        t = np.asarray(t, dtype=np.float64)
        out = solve_ivp(lambda _, x: -(x - 1.0) - x**3, (0.0, float(t.max())), [float(x0)],
                        method="DOP853", t_eval=t, rtol=1e-12, atol=1e-14)
        return out.y[0]

    def timescale_ratio(self):
        return 1.0 / self.epsilon

    def fast_components(self):
        """``z`` (``"fast"``) is the fast variable, ``x`` (``"slow"``) the slow one."""
        return {"fast": True, "slow": False}
