"""Time reparametrisation for dynamics that live on log time."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ._system import AbstractSystem


class LogTime(AbstractSystem):
    r"""``system`` integrated in the log-time variable $\sigma = \ln(1 + t)$:

    $$\frac{dy}{d\sigma} = (1 + t)\, f(t, y), \qquad t = e^\sigma - 1 .$$

    Dynamics whose rates decay like $1/t$ (e.g. logistic loss on separable data, where
    $\|w\| \sim \ln t$) take O(1) steps per decade of $t$ in $\sigma$, so reaching $t = 10^8$
    costs little. ``solve(system, y0, t1, log_time=True)`` does this wrapping and maps every
    time in and out; used directly (solve ``LogTime(system)`` from ``LogTime.to_sigma(t0)``
    to ``LogTime.to_sigma(t1)``) the trajectory's ``ts`` are values of $\sigma$.
    Observables are those of ``system`` at the original time.
    """

    system: AbstractSystem

    @staticmethod
    def to_sigma(t):
        return jnp.log1p(t)

    @staticmethod
    def to_time(sigma):
        return jnp.expm1(sigma)

    def vector_field(self, sigma, y, args):
        t = jnp.expm1(sigma)
        return jax.tree_util.tree_map(lambda v: (1.0 + t) * v, self.system.vector_field(t, y, args))

    def observables(self, sigma, y):
        return self.system.observables(jnp.expm1(sigma), y)

    def state_shapes(self):
        return self.system.state_shapes()

    def timescale_ratio(self):
        return self.system.timescale_ratio()

    def particle_jacobian(self, sigma, y, args):
        # d/dy of (1 + t) f(t, y): the same structure, scaled.
        t = jnp.expm1(sigma)
        inner = self.system.particle_jacobian(t, y, args)
        return type(inner)((1.0 + t) * inner.blocks, (1.0 + t) * inner.left, inner.right)
