"""Alembic migrations of the calibration library (applied by ``Library`` when it is opened).

``env.py`` runs them on the connection the library hands over; ``versions/`` holds the
``calib`` branch.  A new revision of this branch is a file ``versions/calib_NNNN_*.py`` with
``revision = "calib_NNNN"`` and ``down_revision`` the previous one; a pipeline's own tables live
in a branch of their own, in a version folder the pipeline passes as ``Library(url, migrations=[...])``.
"""
