"""What users write: spec bases (``base``), node definitions (``nodes``), file loading (``loader``)."""
