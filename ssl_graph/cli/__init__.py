"""``ssl-graph``: plan, run, inspect, query and export pipelines from the shell.

``group.py`` is the command group (options, one-line errors) and knows nothing of its commands;
each module here defines its commands and this package adds them to the group.
"""

import os

from ..collector import paused, program

if program():
    # pydantic looks for plugins (third-party validation hooks) by reading the entry points of
    # every installed distribution at the first model build: ~5 % of a small `plan`, for spec
    # models no plugin is meant for. The program goes without them unless
    # $PYDANTIC_DISABLE_PLUGINS is set (to anything: empty loads every plugin, as before).
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

# importing the CLI allocates ~20k objects (click, the command modules), none of them garbage: the
# cyclic collector is paused while they load and, in the ``ssl-graph`` program, they are then
# frozen, never walked again, as they live as long as it (``collector.py``; a command's loading
# of pydantic and the spec, ~30k more, likewise: ``group.loading``)
with paused(freeze=program()):
    from . import compare, export, pipeline, store
    from .group import main

for _module in (pipeline, store, export, compare):
    for _command in _module.COMMANDS:
        main.add_command(_command)

__all__ = ["main"]
