"""Randomness shared by every family: seeds and keys, and Haar-random orthonormal frames.

Every random thing takes a ``jax.random`` key or an integer seed. Data sets and
initialisations are drawn once, outside any trace, with a NumPy generator determined by the
key: eager ``jax.random`` calls compile anew for every shape (about half a second each on a
2-core machine), which would dominate small experiments. The same key gives the same numbers."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np


def as_key(key, name: str = "key") -> jax.Array:
    """An integer seed or a JAX PRNG key (typed or raw ``uint32[2]``) as a PRNG key; anything
    else raises ``ValueError`` naming the argument."""
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        return jr.PRNGKey(int(key))
    if isinstance(key, jax.Array) and (
        jnp.issubdtype(key.dtype, jax.dtypes.prng_key) or (key.dtype == jnp.uint32 and key.shape == (2,))
    ):
        return key
    raise ValueError(f"`{name}` must be a jax.random key or an integer seed; got {key!r}.")


def generator(key, name: str = "key") -> np.random.Generator:
    """A NumPy generator determined by a JAX PRNG key or an integer seed (an integer seed
    gives the same numbers as ``jax.random.PRNGKey(seed)``)."""
    key = as_key(key, name)
    data = jr.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    return np.random.default_rng([int(v) for v in np.asarray(data, dtype=np.uint32).ravel()])


def random_frame(rng: np.random.Generator, n: int, r: int) -> np.ndarray:
    """An ``n x r`` matrix with orthonormal columns, Haar-distributed (QR of a Gaussian
    matrix with the signs of R's diagonal absorbed)."""
    q, rr = np.linalg.qr(rng.standard_normal((n, r)))
    return q * np.where(np.diag(rr) < 0, -1.0, 1.0)
