"""The banzai pattern: which reduction stages run on each observation type, in order.

One table instead of code paths: the per-frame reduction (:mod:`steps.nres.reduce_frame`)
runs ``STAGES[obstype]`` and nothing else.  ``overscan`` subtracts the per-row median of
BIASSEC and trims to TRIMSEC; ``gain`` converts to electrons; ``bias`` subtracts the nearest
good master BIAS; ``dark`` the nearest master DARK scaled by the exposure time.
"""

STAGES = {
    "BIAS": ("overscan", "gain"),
    "DARK": ("overscan", "gain", "bias"),
    "LAMPFLAT": ("overscan", "gain", "bias", "dark"),
    "DOUBLE": ("overscan", "gain", "bias", "dark"),
    "TARGET": ("overscan", "gain", "bias", "dark"),
}

STACKED = {"BIAS": "BIAS", "DARK": "DARK", "LAMPFLAT": "FLAT", "DOUBLE": "DOUBLE"}  # obstype -> master type
