"""The runbook's quality scheme (section "Quality"), as one pure function.

- 0: default quality
- 1: extraction OK (usually recovered from quality 5; set by ``redex --recover``)
- 2: a minor problem was encountered (currently not used)
- 3: the telescope offset placed the target outside the IFU
- 4: more than 20 % of the flux is negative
- 5: the guide image astrometry failed (for science targets only)

Values 0-2 are acceptable; above 2 the spectrum is neither classified nor uploaded.  Standards
always use the brightest spaxel, so they are never 5.  When several apply, the grade that says
most about what can be done wins: 3 (cannot be fixed) before 5 (the position is unknown: a hand
centroid is needed) before 4 (hand extraction may help).  A hand-given centroid (redex X Y)
clears 5, as the runbook says.
"""

from __future__ import annotations

ACCEPTABLE_MAX = 2
NEGATIVE_LIMIT = 0.20


def grade(*, kind: str, position_source: str, guider_ok: bool, in_ifu: bool, negative_fraction: float,
          negative_limit: float = NEGATIVE_LIMIT, recovered: bool = False) -> tuple[int, str]:
    """(quality, reason) of one extraction.  ``kind``: standard or science; ``position_source``:
    wcs, brightest or centroid (a hand-given one); ``guider_ok``: the astrometry was trusted;
    ``in_ifu``: the target's position through it falls on the IFU (pysedm then extracts at the
    brightest spaxel and grades 3)."""
    science = kind != "standard"
    if science and guider_ok and not in_ifu and position_source != "centroid":
        return 3, "the guider astrometry places the target outside the IFU"
    if science and not guider_ok and position_source != "centroid":
        if recovered:
            return 1, "astrometry failed; the brightest spaxel was confirmed as the target (recovered)"
        return 5, "the guider astrometry failed: extracted at the brightest spaxel"
    if not negative_fraction <= negative_limit:
        return 4, f"{100 * negative_fraction:.0f} % of the spectrum is negative (limit {100 * negative_limit:.0f} %)"
    return 0, ""


def acceptable(quality: int) -> bool:
    """Whether a spectrum of this quality is classified and uploaded."""
    return 0 <= quality <= ACCEPTABLE_MAX
