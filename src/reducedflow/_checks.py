"""Argument checks shared by every module: each failure is a ValueError that names the
argument and the accepted range. Checks are skipped for traced values (inside jit/vmap),
where the numbers are not known yet."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(value) -> bool:
    """True when every leaf of ``value`` holds actual numbers (not a JAX tracer)."""
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(value))


def as_float_array(value) -> jax.Array:
    """Convert a parameter to a float64 JAX array (used as an ``eqx.field`` converter, so that
    changing a parameter's value never triggers recompilation)."""
    if isinstance(value, jax.core.Tracer):
        return value.astype(jnp.float64) if value.dtype != jnp.float64 else value
    return jnp.asarray(value, dtype=jnp.float64)


def _describe(value) -> str:
    arr = np.asarray(value)
    return repr(arr.item()) if arr.ndim == 0 else np.array2string(arr, threshold=8)


def check_positive(name: str, value, *, allow_zero: bool = False) -> None:
    """Raise ``ValueError`` unless every entry of ``value`` is finite and > 0 (>= 0 with
    ``allow_zero``)."""
    if not is_concrete(value):
        return
    arr = np.asarray(value, dtype=float)
    bad = ~np.isfinite(arr) | ((arr < 0) if allow_zero else (arr <= 0))
    if np.any(bad):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"`{name}` must be finite and {bound}; got {_describe(value)}.")


def check_finite(name: str, value) -> None:
    """Raise ``ValueError`` if any leaf of the PyTree ``value`` holds NaN or infinity."""
    if not is_concrete(value):
        return
    for path, leaf in jax.tree_util.tree_flatten_with_path(value)[0]:
        arr = np.asarray(leaf)
        if not np.issubdtype(arr.dtype, np.number):
            raise ValueError(f"`{name}{jax.tree_util.keystr(path)}` must be numeric; got {arr.dtype}.")
        if not np.all(np.isfinite(arr)):
            where = jax.tree_util.keystr(path)
            raise ValueError(
                f"`{name}{where}` must be finite (no NaN or inf); got {_describe(leaf)}."
            )


def check_in(name: str, value, choices) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"`{name}` must be one of {listed}; got {value!r}.")


def check_integer(name: str, value, *, minimum: int = 1) -> int:
    """Return ``value`` as int, raising ``ValueError`` unless it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def check_real(name: str, value) -> float:
    """Return ``value`` as a finite float, raising ``ValueError`` otherwise."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a real number; got {value!r}.") from None
    if not math.isfinite(out):
        raise ValueError(f"`{name}` must be finite; got {value!r}.")
    return out
