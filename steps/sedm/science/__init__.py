"""SEDM science kernels: pure functions over NumPy arrays (no file I/O)."""
