"""Generators for the project's own data (see ``espeak_corpus.py``); not part of the ssl_graph package."""
