"""Training: crop batches (``data``), safetensors checkpoints (``checkpoint``), the loop (``loop``)."""
