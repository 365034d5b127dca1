"""Node computations, one module per node kind (see ``base.py`` for the contract)."""
