"""Revisions of the ``calib`` branch (a package only so that the files ship in the wheel)."""
