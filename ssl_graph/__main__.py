"""``python -m ssl_graph`` = the ``ssl-graph`` command."""

from .cli import main

if __name__ == "__main__":
    main()
