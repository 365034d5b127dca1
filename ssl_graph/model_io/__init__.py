"""Models in and out, as other tools read and write them: transformers directories
(``hf_checkpoint`` reads the weights of Wav2Vec2 / HuBERT / Data2VecAudio / WavLM releases,
whose architecture ``ssl_graph.specs.hf_config`` reads at plan time; ``hf_export`` writes ours
back) and ARPA word n-gram language models for decoding (``arpa``).

Corpora and annotations (data in, units out) are ``ssl_graph.formats``.
"""
