"""NRES's Alembic branch (``nres``) in the calibration library's database."""
