"""Each spaxel's spectrum on the CCD, extracted along its trace (a box across dispersion).

``extract(image, traces, columns, half_rows=3, pad=8)``: for every trace, the sum over the rows
within ``half_rows`` of its centre line of every column from ``pad`` columns before its first to
``pad`` after its last (the trace ends found on the dome flat may miss the faint blue end), cut
to the imaging ``columns``.  Returns the first column of each spectrum and the spectra as one
(n_traces, n_columns) array padded with NaN.  Rows are whole pixels: with a 1-px cross profile
a box of +-3 rows keeps 99.8 % of the light whatever the trace's sub-pixel position, and the
traces of the IFU are at least ~6.5 rows apart where they share columns.
"""

from __future__ import annotations

import numpy as np


def extract(image: np.ndarray, traces, columns: slice, *, half_rows: int = 3, pad: int = 8):
    data = np.asarray(image, dtype=np.float64)
    ny = data.shape[0]
    lo_col = columns.start or 0
    hi_col = (columns.stop if columns.stop is not None else data.shape[1]) - 1
    starts = np.array([max(lo_col, t.x_min - pad) for t in traces], dtype=np.int64)
    stops = np.array([min(hi_col, t.x_max + pad) for t in traces], dtype=np.int64)
    width = int((stops - starts).max()) + 1 if len(traces) else 0
    out = np.full((len(traces), width), np.nan)
    offsets = np.arange(-half_rows, half_rows + 1)
    for i, t in enumerate(traces):
        xs = np.arange(starts[i], stops[i] + 1)
        yc = np.rint(t.y(xs)).astype(np.int64)
        rows = yc[:, None] + offsets[None, :]
        ok = (rows >= 0) & (rows < ny)
        vals = np.where(ok, data[np.clip(rows, 0, ny - 1), xs[:, None]], 0.0)
        out[i, :xs.size] = vals.sum(axis=1)
    return starts, out
