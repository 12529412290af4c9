"""Figures: phase portraits of 2-D systems and slices, bifurcation diagrams."""

from .bifurcation import bifurcation_diagram as bifurcation_diagram
from .portrait import Portrait as Portrait, phase_portrait as phase_portrait
