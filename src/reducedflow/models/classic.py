r"""Textbook dynamical systems with known fixed points, bifurcations and Lyapunov exponents:
the witnesses of the dynamics toolkit (``reducedflow.analysis``) and small examples for the
``portrait`` command.

- ``LinearSystem``: $\dot y = A y$ (every fixed-point type; exact solution and exponents);
- ``FitzHughNagumo``: the excitable-neuron model, a fast voltage and a slow recovery variable;
- ``Lorenz``: the chaotic Lorenz 1963 system (largest Lyapunov exponent 0.9056);
- ``FoldNormalForm``: $\dot x = r + x^2$, a fold (saddle-node) at $r = 0$;
- ``HopfNormalForm``: the supercritical Hopf normal form, a Hopf point at $\mu = 0$;
- ``DoubleWell``: the gradient flow of a tilted double well (two stable nodes, one saddle).

References: S. H. Strogatz, *Nonlinear Dynamics and Chaos* (2nd ed., 2015), ch. 3, 6, 8, 9;
Yu. A. Kuznetsov, *Elements of Applied Bifurcation Theory* (3rd ed., 2004), ch. 3;
E. N. Lorenz, "Deterministic nonperiodic flow", J. Atmos. Sci. 20 (1963);
R. FitzHugh, Biophys. J. 1 (1961); J. C. Sprott, *Chaos and Time-Series Analysis* (2003),
table of Lyapunov exponents (Lorenz: 0.9056, 0, -14.5723).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

from .._checks import as_float_array, check_finite, check_positive
from .._system import AbstractSystem

__all__ = ["LinearSystem", "FitzHughNagumo", "Lorenz", "FoldNormalForm", "HopfNormalForm", "DoubleWell"]

_SCALAR = jax.ShapeDtypeStruct((), jnp.float64)


class LinearSystem(AbstractSystem):
    r"""The linear system $\dot y = A y$.

    The origin is its fixed point; its type is set by the eigenvalues of $A$ (node, focus,
    saddle, ...), ``closed_form`` is $e^{tA}y_0$, and its Lyapunov exponents are the real
    parts of the eigenvalues of $A$.

    **Arguments:**

    - ``matrix``: $A$, a square ``(n, n)`` array.

    State: one array of shape ``(n,)`` (coordinates ``"y[0]"``, ``"y[1]"``, ...).
    """

    matrix: jax.Array = eqx.field(converter=as_float_array)

    def __check_init__(self):
        shape = np.shape(self.matrix)
        if len(shape) != 2 or shape[0] != shape[1] or shape[0] == 0:
            raise ValueError(f"`matrix` must be a square (n, n) array with n >= 1; got shape {shape}.")
        check_finite("matrix", self.matrix)

    def vector_field(self, t, y, args):
        return self.matrix @ y

    def state_shapes(self):
        return jax.ShapeDtypeStruct((self.matrix.shape[0],), jnp.float64)

    def closed_form(self, t, y0):
        t = np.asarray(t, dtype=np.float64)
        a = np.asarray(self.matrix)
        y0 = np.asarray(y0, dtype=np.float64)
        return np.array([scipy.linalg.expm(ti * a) @ y0 for ti in t.reshape(-1)]).reshape(t.shape + y0.shape)


class FitzHughNagumo(AbstractSystem):
    r"""The FitzHugh–Nagumo model of an excitable neuron,

    $$\dot v = v - v^3/3 - w + I, \qquad \tau\,\dot w = v + a - b w.$$

    Fixed points solve $w = (v + a)/b$ and $v - v^3/3 - (v + a)/b + I = 0$ (a cubic). The
    voltage $v$ is fast and the recovery $w$ slow when $\tau \gg 1$ (``fast_components``;
    the critical manifold is the cubic nullcline $w = v - v^3/3 + I$). With the default
    parameters ($a = 0.7$, $b = 0.8$, $\tau = 12.5$, $I = 0.5$) the single fixed point is an
    unstable focus surrounded by a relaxation oscillation; with $I = 0$ it is a stable focus.

    **Arguments:** ``a``, ``b`` (> 0), ``tau`` (> 0), ``current`` ($I$).

    State: ``{"v": v, "w": w}`` (scalars).

    Reference: R. FitzHugh, Biophys. J. 1 (1961) 445; J. Nagumo, S. Arimoto, S. Yoshizawa,
    Proc. IRE 50 (1962) 2061.
    """

    a: jax.Array = eqx.field(default=0.7, converter=as_float_array)
    b: jax.Array = eqx.field(default=0.8, converter=as_float_array)
    tau: jax.Array = eqx.field(default=12.5, converter=as_float_array)
    current: jax.Array = eqx.field(default=0.5, converter=as_float_array)

    def __check_init__(self):
        check_positive("b", self.b)
        check_positive("tau", self.tau)

    def vector_field(self, t, y, args):
        v, w = y["v"], y["w"]
        return {"v": v - v**3 / 3.0 - w + self.current, "w": (v + self.a - self.b * w) / self.tau}

    def state_shapes(self):
        return {"v": _SCALAR, "w": _SCALAR}

    def timescale_ratio(self):
        return self.tau

    def fast_components(self):
        """The voltage ``v`` is fast, the recovery ``w`` slow (time-scale ratio ``tau``)."""
        return {"v": True, "w": False}

    def fixed_point_voltages(self) -> np.ndarray:
        r"""The real roots $v$ of $v - v^3/3 - (v + a)/b + I = 0$ (``np.roots``), ascending;
        the fixed points are $(v, (v + a)/b)$."""
        a, b, current = float(self.a), float(self.b), float(self.current)
        roots = np.roots([-1.0 / 3.0, 0.0, 1.0 - 1.0 / b, current - a / b])
        return np.sort(roots[np.abs(roots.imag) < 1e-9].real)


class Lorenz(AbstractSystem):
    r"""The Lorenz system,

    $$\dot x = \sigma(y - x), \qquad \dot y = x(\rho - z) - y, \qquad \dot z = xy - \beta z.$$

    With the classic $\sigma = 10$, $\rho = 28$, $\beta = 8/3$ it is chaotic: the Lyapunov
    spectrum is about $(0.9056, 0, -14.5723)$ (sum $-(\sigma + 1 + \beta)$, the constant
    divergence). Fixed points: the origin and, for $\rho > 1$,
    $(\pm\sqrt{\beta(\rho - 1)}, \pm\sqrt{\beta(\rho - 1)}, \rho - 1)$.

    **Arguments:** ``sigma``, ``rho``, ``beta``.

    State: ``{"x": x, "y": y, "z": z}`` (scalars).

    Reference: E. N. Lorenz, J. Atmos. Sci. 20 (1963) 130; exponents from J. C. Sprott,
    *Chaos and Time-Series Analysis* (2003).
    """

    sigma: jax.Array = eqx.field(default=10.0, converter=as_float_array)
    rho: jax.Array = eqx.field(default=28.0, converter=as_float_array)
    beta: jax.Array = eqx.field(default=8.0 / 3.0, converter=as_float_array)

    def vector_field(self, t, y, args):
        x, yy, z = y["x"], y["y"], y["z"]
        return {"x": self.sigma * (yy - x), "y": x * (self.rho - z) - yy, "z": x * yy - self.beta * z}

    def state_shapes(self):
        return {"x": _SCALAR, "y": _SCALAR, "z": _SCALAR}


class FoldNormalForm(AbstractSystem):
    r"""The normal form of the fold (saddle-node) bifurcation, $\dot x = r + x^2$.

    For $r < 0$ there are two fixed points $x = \mp\sqrt{-r}$ (stable, unstable); they
    collide at $r = 0$ and vanish for $r > 0$.

    **Arguments:** ``r``.

    State: ``{"x": x}`` (a scalar).

    Reference: Strogatz (2015), sec. 3.1.
    """

    r: jax.Array = eqx.field(default=-1.0, converter=as_float_array)

    def vector_field(self, t, y, args):
        return {"x": self.r + y["x"] ** 2}

    def state_shapes(self):
        return {"x": _SCALAR}


class HopfNormalForm(AbstractSystem):
    r"""The normal form of the supercritical Hopf bifurcation, in Cartesian coordinates,

    $$\dot x = \mu x - \omega y - x(x^2 + y^2), \qquad \dot y = \omega x + \mu y - y(x^2 + y^2),$$

    i.e. $\dot r = \mu r - r^3$, $\dot\theta = \omega$. The origin has eigenvalues
    $\mu \pm i\omega$: a stable focus for $\mu < 0$, unstable for $\mu > 0$, surrounded then
    by a stable limit cycle of radius $\sqrt\mu$.

    **Arguments:** ``mu``, ``omega`` (the frequency at the Hopf point).

    State: ``{"x": x, "y": y}`` (scalars).

    Reference: Strogatz (2015), sec. 8.2; Kuznetsov (2004), sec. 3.4.
    """

    mu: jax.Array = eqx.field(default=-1.0, converter=as_float_array)
    omega: jax.Array = eqx.field(default=1.0, converter=as_float_array)

    def vector_field(self, t, y, args):
        x, yy = y["x"], y["y"]
        r2 = x**2 + yy**2
        return {"x": self.mu * x - self.omega * yy - x * r2, "y": self.omega * x + self.mu * yy - yy * r2}

    def state_shapes(self):
        return {"x": _SCALAR, "y": _SCALAR}


class DoubleWell(AbstractSystem):
    r"""Gradient flow $\dot q = -\nabla V$ of a tilted double well with a confining direction,

    $$V(x, y) = \tfrac14 x^4 - \tfrac12 x^2 - h x + \tfrac12 k y^2,
    \qquad \dot x = x - x^3 + h, \qquad \dot y = -k y.$$

    For $|h| < 2/(3\sqrt3)$ there are three fixed points on $y = 0$: two minima of $V$ (stable
    nodes, eigenvalues $1 - 3x^2 < 0$ and $-k$) and the saddle between them (one unstable
    direction). The potential is the observable ``"potential"``.

    **Arguments:** ``tilt`` ($h$), ``stiffness`` ($k$, > 0).

    State: ``{"x": x, "y": y}`` (scalars).
    """

    tilt: jax.Array = eqx.field(default=0.0, converter=as_float_array)
    stiffness: jax.Array = eqx.field(default=1.0, converter=as_float_array)

    def __check_init__(self):
        check_positive("stiffness", self.stiffness)

    def vector_field(self, t, y, args):
        x, yy = y["x"], y["y"]
        return {"x": x - x**3 + self.tilt, "y": -self.stiffness * yy}

    def state_shapes(self):
        return {"x": _SCALAR, "y": _SCALAR}

    def observables(self, t, y):
        x, yy = y["x"], y["y"]
        return {"potential": 0.25 * x**4 - 0.5 * x**2 - self.tilt * x + 0.5 * self.stiffness * yy**2}

    def critical_points(self) -> np.ndarray:
        """The $x$ of the fixed points, real roots of $x - x^3 + h = 0$, ascending."""
        roots = np.roots([-1.0, 0.0, 1.0, float(self.tilt)])
        return np.sort(roots[np.abs(roots.imag) < 1e-9].real)
