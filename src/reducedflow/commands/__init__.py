"""Command-line jobs, one module per family (see ``_registry.py``)."""

from ._registry import Command as Command, float_list as float_list, iter_commands as iter_commands
