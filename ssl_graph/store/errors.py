"""The store's errors, in a module of their own so that the byte layer (``backend.py``), the
containment rule (``paths.py``), the write-safety probe (``conditional.py``) and the store
(``store.py``) all build on them without importing each other."""

from __future__ import annotations


class DamagedFile(ValueError):
    """A store document that exists but cannot be parsed (torn write, manual edit, disk fault)."""

    def __init__(self, location: str, problem: str):
        self.location, self.problem = location, problem
        super().__init__(f"{location}: {problem}")


class StoreError(RuntimeError):
    """The location is not a store this ssl_graph can use (foreign directory, newer format)."""
