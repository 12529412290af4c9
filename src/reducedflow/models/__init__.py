"""Reduced systems, one module per family."""

from .fast_slow import FastSlowGradientFlow as FastSlowGradientFlow
