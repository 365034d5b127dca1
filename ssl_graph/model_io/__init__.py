"""Models in and out, as other tools read and write them: transformers directories
(``hf_checkpoint`` reads Wav2Vec2 / HuBERT / Data2VecAudio / WavLM releases, ``hf_export``
writes ours back) and ARPA word n-gram language models for decoding (``arpa``).

Corpora and annotations (data in, units out) are ``ssl_graph.formats``.
"""
