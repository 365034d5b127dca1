"""The store's error for a file that exists but is not what its commit wrote: its own module, so
the byte layer (``backend.py``) and the containment rule (``paths.py``) both build on it without
importing each other."""

from __future__ import annotations


class DamagedFile(ValueError):
    """A store document that exists but cannot be parsed (torn write, manual edit, disk fault)."""

    def __init__(self, location: str, problem: str):
        self.location, self.problem = location, problem
        super().__init__(f"{location}: {problem}")
