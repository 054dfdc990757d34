"""The COSMETICS00 science: the defects-in-darkness mask, the photo-response mask, merged.  Pure
functions over NumPy arrays (a quadrant's image area in canonical orientation).

vison (``vis_cosmetics_masker``): each frame offset-subtracted, the biases' background model
subtracted and the flats divided by theirs, each set median-stacked and thresholded ([-1000, 50]
ADU for the dark mask, [0.5, 1.5] for the flat mask), a column with more than 200 masked pixels
masked whole, the two masks OR-ed into the cosmetics mask.

* :func:`dark_defects`: the biases' master (:func:`steps.vison.science.bias.master`, a clipped
  mean) minus its degree-5 2-D background (:func:`steps.vison.science.bias.poly2d_model`); a
  pixel above vison's 50 ADU, or ``HOT_SIGMA`` robust standard deviations above (a 0 s frame
  holds the dark current of its 72 s readout: a 0.5 e-/s pixel is ~10 ADU, 15 standard
  deviations of a 5-frame master, under vison's 50 ADU), is hot; a column as a whole by
  :func:`steps.vison.science.flat.column_outliers` (only those above: vison's lower threshold,
  -1000 ADU, masks nothing), its pixels the column's.
* the flat mask: :func:`steps.vison.science.flat.response_defects` on the flats' master (each
  flat over its smooth model, as FLAT01's individual flats).
* :func:`merge`: the cosmetics mask, the bits of both (``DARK_PIXEL``, ``DARK_COLUMN``,
  ``FLAT_PIXEL``, ``FLAT_COLUMN``; vison's merged mask is their OR, 1 for any): non-zero is a
  defect, and the bits say which mask found it.
"""

from __future__ import annotations

import numpy as np

from steps.vison.science import flat
from steps.vison.science.bias import poly2d_model, robust_sigma
from steps.vison.science.dark import HOT_SIGMA

HOT_ADU = 50.0  # vison's COSMETICS00 dark-mask upper threshold
DARK_PIXEL, DARK_COLUMN, FLAT_PIXEL, FLAT_COLUMN = 1, 2, 4, 8


def dark_defects(master: np.ndarray, hot_adu: float = HOT_ADU, sigma: float = HOT_SIGMA, degree: int = 5,
                 binsize: int = 300) -> tuple[np.ndarray, list[tuple[int, int, str, float]]]:
    """The dark-defects mask of a master bias's image area (ADU): ``flat.PIXEL``, ``flat.COLUMN``
    or 0, and the defects as (x, y, kind, excess ADU), y = -1 for a column."""
    background, _ = poly2d_model(master, degree, binsize)
    residual = master - background
    s = robust_sigma(residual)
    with np.errstate(invalid="ignore"):
        hot = (residual > hot_adu) | (residual > sigma * s)
    mask = np.zeros(master.shape, dtype=np.uint8)
    found: list[tuple[int, int, str, float]] = []
    columns = flat.column_outliers(residual, s, hot)
    for x in np.flatnonzero(columns > 0):
        mask[:, x] = flat.COLUMN
        found.append((int(x), -1, "hot_column", float(columns[x])))
    for y, x in zip(*np.nonzero(hot & (mask == 0))):
        mask[y, x] = flat.PIXEL
        found.append((int(x), int(y), "hot_pixel", float(residual[y, x])))
    return mask, found


def merge(dark: np.ndarray | None, response: np.ndarray | None) -> np.ndarray:
    """The cosmetics mask (uint8 bits) from a dark and a response mask (either may be None)."""
    shape = (dark if dark is not None else response).shape
    out = np.zeros(shape, dtype=np.uint8)
    if dark is not None:
        out |= np.where(dark == flat.PIXEL, DARK_PIXEL, 0).astype(np.uint8)
        out |= np.where(dark == flat.COLUMN, DARK_COLUMN, 0).astype(np.uint8)
    if response is not None:
        out |= np.where(response == flat.PIXEL, FLAT_PIXEL, 0).astype(np.uint8)
        out |= np.where(response == flat.COLUMN, FLAT_COLUMN, 0).astype(np.uint8)
    return out
