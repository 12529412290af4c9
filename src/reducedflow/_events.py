"""Non-terminating events: the times at which a function of the state crosses a level,
recorded while the integration continues to ``t1``.

diffrax's own events stop the solve. Here the solve runs to the end with dense output; the
crossings are bracketed between the solver's accepted steps and then refined by bisection on
the solver's own interpolant (the same accuracy as the dense output, to ~1e-15 in time)."""

from __future__ import annotations

import dataclasses
from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._checks import check_in


class Crossing(eqx.Module):
    r"""Record every time $t$ at which ``function(t, y, system)`` crosses ``level``.

    ``function`` may return an array: each component is tracked separately, against the
    matching entry of ``level`` (broadcast), e.g. every mode reaching half its target:
    ``Crossing("half", lambda t, y, s: y, level=s.singular_values / 2, direction=+1)``.

    **Arguments:**

    - ``name``: key of the crossing in ``Trajectory.events``.
    - ``function``: ``(t, y, system) -> array``.
    - ``level``: the level (scalar or broadcastable to the output of ``function``).
    - ``direction``: ``+1`` upward crossings only, ``-1`` downward only, ``0`` both.
    """

    name: str = eqx.field(static=True)
    function: Callable = eqx.field(static=True)
    level: jax.Array = eqx.field(default=0.0, converter=lambda x: jnp.asarray(x, jnp.float64))
    direction: int = eqx.field(default=0, static=True)

    def __check_init__(self):
        check_in("Crossing.direction", self.direction, (-1, 0, 1))
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"`Crossing.name` must be a non-empty string; got {self.name!r}.")

    @classmethod
    def of_observable(cls, observable: str, level, direction: int = 0, name: str | None = None):
        """A crossing of one of the system's named ``observables`` (e.g. ``"risk"``)."""
        return cls(
            name=name or observable,
            function=lambda t, y, system: system.observables(t, y)[observable],
            level=level,
            direction=direction,
        )

    def in_log_time(self) -> "Crossing":
        """The same crossing for a system wrapped in ``LogTime`` (its time is sigma = ln(1+t))."""
        return Crossing(self.name, _InLogTime(self.function), self.level, self.direction)

    def gap(self, t, y, system) -> jax.Array:
        """``function - level`` flattened to one dimension."""
        value = jnp.asarray(self.function(t, y, system), jnp.float64)
        return jnp.ravel(value - jnp.broadcast_to(self.level, value.shape))


class _InLogTime(eqx.Module):
    """``function(t, y, system)`` called with sigma = ln(1 + t) and the ``LogTime`` wrapper."""

    function: Callable = eqx.field(static=True)

    def __call__(self, sigma, y, wrapper):
        return self.function(jnp.expm1(sigma), y, wrapper.system)


@dataclasses.dataclass(frozen=True)
class EventTimes:
    """The crossings found for one ``Crossing``: ``times[i]`` is when component
    ``components[i]`` (index into the flattened output) crossed, in direction
    ``directions[i]`` (+1 up, -1 down). Sorted by time."""

    times: np.ndarray
    components: np.ndarray
    directions: np.ndarray

    def first(self, component: int = 0) -> float:
        """The first crossing time of ``component``, or NaN if it never crossed."""
        hits = self.times[self.components == component]
        return float(hits[0]) if hits.size else float("nan")

    def first_per_component(self, n_components: int) -> np.ndarray:
        """First crossing time of each component (NaN where none)."""
        return np.array([self.first(i) for i in range(n_components)])


def _select_brackets(t_grid, gaps, direction):
    """Brackets (t_a, t_b, component, sign) where the gap changes sign between grid points."""
    lo, hi = gaps[:-1], gaps[1:]
    up = (lo < 0) & (hi >= 0)
    down = (lo > 0) & (hi <= 0)
    if direction == 1:
        mask, sign = up, np.ones_like(lo)
    elif direction == -1:
        mask, sign = down, -np.ones_like(lo)
    else:
        mask, sign = up | down, np.where(up, 1.0, -1.0)
    steps, comps = np.nonzero(mask)
    return t_grid[steps], t_grid[steps + 1], comps, sign[steps, comps]


@eqx.filter_jit
def _gaps_on_grid(crossing, system, interpolation, t_grid):
    return jax.vmap(lambda t: crossing.gap(t, interpolation.evaluate(t), system))(t_grid)


@eqx.filter_jit
def _bisect(crossing, system, interpolation, t_lo, t_hi, comps, iterations=60):
    def gap(t, c):
        return crossing.gap(t, interpolation.evaluate(t), system)[c]

    def one(a, b, c):
        ga = gap(a, c)

        def body(_, carry):
            a, b, ga = carry
            m = 0.5 * (a + b)
            gm = gap(m, c)
            same = jnp.sign(gm) == jnp.sign(ga)
            return jnp.where(same, m, a), jnp.where(same, b, m), jnp.where(same, gm, ga)

        a, b, _ = jax.lax.fori_loop(0, iterations, body, (a, b, ga))
        return 0.5 * (a + b)

    return jax.vmap(one)(t_lo, t_hi, comps)


def _pad_to_power_of_two(*arrays):
    n = arrays[0].shape[0]
    size = 1 << max(0, (n - 1).bit_length())
    return [np.concatenate([a, np.repeat(a[-1:], size - n, axis=0)]) for a in arrays]


def locate_crossings(crossing: Crossing, system, interpolation, step_times: np.ndarray) -> EventTimes:
    """Find every crossing of ``crossing`` along a diffrax dense ``interpolation`` whose
    accepted step boundaries are ``step_times``."""
    # Evaluate on a fixed-size grid (the solver's step buffer) so repeated solves reuse one
    # compilation; padding entries repeat the last time and add no brackets.
    gaps = np.asarray(_gaps_on_grid(crossing, system, interpolation, jnp.asarray(step_times)))
    t_lo, t_hi, comps, signs = _select_brackets(step_times, gaps, crossing.direction)
    if t_lo.size == 0:
        empty = np.zeros(0)
        return EventTimes(empty, empty.astype(int), empty)
    n = t_lo.size
    p_lo, p_hi, p_comps = _pad_to_power_of_two(t_lo, t_hi, comps)
    roots = np.asarray(_bisect(crossing, system, interpolation, p_lo, p_hi, p_comps))[:n]
    order = np.argsort(roots, kind="stable")
    return EventTimes(roots[order], comps[order].astype(int), signs[order])
