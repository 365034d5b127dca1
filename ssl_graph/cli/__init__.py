"""``ssl-graph``: plan, run, inspect, query and export pipelines from the shell.

``group.py`` is the command group (options, one-line errors) and knows nothing of its commands;
each module here defines its commands and this package adds them to the group.
"""

from . import compare, export, pipeline, store
from .group import main

for _module in (pipeline, store, export, compare):
    for _command in _module.COMMANDS:
        main.add_command(_command)

__all__ = ["main"]
