"""Numerical kernels (Numba/BLAS): k-means, label assignment, cluster quality, masking."""
