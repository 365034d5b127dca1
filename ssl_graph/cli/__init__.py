"""``ssl-graph``: plan, run, inspect, query and export pipelines from the shell.

``group.py`` is the command group (options, one-line errors) and knows nothing of its commands;
each module here defines its commands and this package adds them to the group.
"""

import gc
import sys
from pathlib import Path

# importing the CLI allocates ~100k objects (click, pydantic, rich, the command modules), none of
# them garbage, and the cyclic collector would walk them several times over (~10 % of a small
# ``plan``): it is paused while they load; in the ``ssl-graph`` program (not a process that
# imports this package) they are then frozen, never walked again, as they live as long as it
_collecting = gc.isenabled()
_program = Path(sys.argv[0] if sys.argv else "")
gc.disable()
try:
    from . import compare, export, pipeline, store
    from .group import main
finally:
    if _collecting:
        if _program.name == "ssl-graph" or _program.parts[-2:] == ("ssl_graph", "__main__.py"):
            gc.freeze()
        gc.enable()

for _module in (pipeline, store, export, compare):
    for _command in _module.COMMANDS:
        main.add_command(_command)

__all__ = ["main"]
