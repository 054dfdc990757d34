"""The NRES science kernels: pure functions over NumPy arrays (no file I/O, no astroflow imports),
each tested on synthetic arrays with known truth (tests/nres/test_science_*.py) and the trace and
wavelength steps on the independent sample night.

- ``ccd``: FITS sections, overscan (per-row median of BIASSEC, smoothed) and trim, the
  sigma-clipped mean stack with the count per pixel, read noise from bias pairs.
- ``trace``: blind traces from a flat, fiber and order labels (two complementary flats), refinement,
  the IDL pipeline's hand trace file (config/ref_trace.txt) and trace0.
- ``extract``: profile and blaze from a flat, optimal extraction (Horne 1986) with variance,
  cosmic-ray rejection and a mask; box extraction.
- ``wavelength``: ThAr line finding, blind identification with the echelle relation, the 2D solution
  lambda(x, m) per fiber, SIGLAM / RVPRECSN / NLINEDET / NLINES, the drift of the simultaneous fiber.
- ``continuum``: blaze division and the 201-pixel running median after masking lines.
- ``rv``: cross-correlation against a ZERO or a model, coarse and fine, clipped order peaks, RVERR;
  the ZERO itself.
- ``barycentric``: barycentric correction and BJD_TDB with astropy (Wright & Eastman 2014).
"""
