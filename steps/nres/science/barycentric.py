"""Barycentric correction and BJD_TDB of an NRES exposure with astropy (as banzai-nres's
``barycentric_correction``, completed): the exposure midpoint (DATE-OBS + EXPTIME/2, UTC), the
site from the header's LATITUDE/LONGITUD/HEIGHT, the target with its proper motion, parallax and
(when known) radial velocity propagated from the catalogue epoch, ``SkyCoord.
radial_velocity_correction`` (Wright & Eastman 2014, PASP 126, 838: the barycentric redshift
``z_B``, reported as ``c z_B``), and the correction applied with the cross term
``RV_true = RV_obs + BC + RV_obs * BC / c`` (their eq. 11). BJD_TDB = midpoint in TDB plus the
Roemer delay to the barycentre (``Time.light_travel_time``). Uses astropy's built-in ephemeris
(ERFA), so nothing is downloaded; IERS tables are taken from the installed ``astropy-iers-data``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "C_MS",
    "apply_correction",
    "barycentric_correction",
    "midpoint",
    "parse_sexagesimal",
    "site_location",
]

C_MS = 299792458.0


def parse_sexagesimal(ra, dec):
    """RA and Dec in degrees from header strings (``'05:53:41.071'`` hours, ``'-25:18:15.01'``
    degrees) or numbers (degrees). Returns ``(ra_deg, dec_deg)``."""
    import astropy.units as u
    from astropy.coordinates import Angle

    def one(v, unit):
        if isinstance(v, (int, float, np.floating, np.integer)):
            return float(v)
        s = str(v).strip()
        try:
            return float(s)
        except ValueError:
            return float(Angle(s, unit=unit).to(u.deg).value)

    return one(ra, u.hourangle), one(dec, u.deg)


def site_location(latitude, longitude, height):
    """An astropy EarthLocation from geodetic latitude, east longitude (degrees) and height (m)."""
    import astropy.units as u
    from astropy.coordinates import EarthLocation
    return EarthLocation.from_geodetic(lon=float(longitude) * u.deg, lat=float(latitude) * u.deg,
                                       height=float(height) * u.m)


def midpoint(date_obs, exptime):
    """The exposure midpoint, an astropy Time (UTC): DATE-OBS (ISO) plus half of EXPTIME (s)."""
    import astropy.units as u
    from astropy.time import Time
    return Time(str(date_obs), format="isot", scale="utc") + float(exptime) / 2.0 * u.s


def barycentric_correction(date_obs, exptime, ra, dec, latitude, longitude, height,
                           pm_ra_mas_yr=0.0, pm_dec_mas_yr=0.0, parallax_mas=None, rv_kms=None,
                           epoch=2000.0, pm_ra_includes_cosdec: bool = True, use_rv: bool = False):
    """Barycentric correction (m/s) and BJD_TDB of an exposure.

    ``date_obs``: DATE-OBS (UTC, ISO); ``exptime``: s; ``ra``, ``dec``: degrees or header strings;
    ``latitude``, ``longitude`` (east), ``height``: the header's LATITUDE, LONGITUD, HEIGHT; proper
    motions in mas/yr (targets.csv; ``pm_ra_includes_cosdec`` False when the value is d(RA)/dt
    without the cos(dec) factor), parallax in mas (None or <= 0: no distance), catalogue RV in km/s
    (enters the space motion only with ``use_rv``; a sub-mm/s effect), catalogue ``epoch``
    (Julian year). With a parallax, astropy propagates the position to the exposure and adds the
    star's own-motion term of ``z_B`` (the change of the star's direction since the catalogue
    epoch: 9 m/s in all for HD 10700 in 2024); with proper motion but no parallax only the position
    is propagated (2 m/s of the 9 for HD 10700).

    Returns a dict: ``barycorr`` (m/s, ``c z_B``), ``bjd_tdb`` (days), ``jd_utc_mid``, ``mjd_utc_mid``.
    """
    import warnings

    import astropy.units as u
    from astropy.coordinates import Distance, SkyCoord
    from astropy.time import Time
    from astropy.utils import iers

    ra_deg, dec_deg = parse_sexagesimal(ra, dec)
    loc = site_location(latitude, longitude, height)
    with iers.conf.set_temp("auto_download", False):
        t = midpoint(date_obs, exptime)
        pmra = float(pm_ra_mas_yr or 0.0)
        if not pm_ra_includes_cosdec:
            pmra *= np.cos(np.radians(dec_deg))
        has_distance = parallax_mas is not None and np.isfinite(parallax_mas) and parallax_mas > 0
        has_pm = bool(pmra or pm_dec_mas_yr)
        has_rv = use_rv and rv_kms is not None and np.isfinite(rv_kms)
        cat_epoch = Time(float(epoch), format="jyear", scale="tt")
        pm = {"pm_ra_cosdec": pmra * u.mas / u.yr, "pm_dec": float(pm_dec_mas_yr or 0.0) * u.mas / u.yr}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if has_distance:
                # astropy's own path: space motion to the exposure inside radial_velocity_correction
                extra = {"radial_velocity": float(rv_kms) * u.km / u.s} if has_rv else {}
                coord = SkyCoord(ra=ra_deg * u.deg, dec=dec_deg * u.deg,
                                 distance=Distance(parallax=float(parallax_mas) * u.mas),
                                 obstime=cat_epoch, frame="icrs", **pm, **extra)
                now = coord.apply_space_motion(new_obstime=t)
            elif has_pm:
                # no parallax: carry the proper motion with a nominal distance, then drop it
                moving = SkyCoord(ra=ra_deg * u.deg, dec=dec_deg * u.deg, distance=1000.0 * u.pc,
                                  radial_velocity=0.0 * u.km / u.s, obstime=cat_epoch, frame="icrs", **pm)
                moved = moving.apply_space_motion(new_obstime=t)
                coord = now = SkyCoord(ra=moved.ra, dec=moved.dec, frame="icrs")
            else:
                coord = now = SkyCoord(ra=ra_deg * u.deg, dec=dec_deg * u.deg, frame="icrs")
            vcorr = coord.radial_velocity_correction(kind="barycentric", obstime=t, location=loc)
            target = SkyCoord(ra=now.ra, dec=now.dec, distance=now.distance, frame="icrs") \
                if has_distance else now
            ltt = t.light_travel_time(target, kind="barycentric", location=loc)
        bjd = (t.tdb + ltt).jd
    return {"barycorr": float(vcorr.to(u.m / u.s).value), "bjd_tdb": float(bjd),
            "jd_utc_mid": float(t.jd), "mjd_utc_mid": float(t.mjd)}


def apply_correction(rv_obs_ms, barycorr_ms):
    """Barycentric radial velocity with the Wright & Eastman (2014) cross term:
    ``RV_obs + BC + RV_obs * BC / c`` (m/s)."""
    rv_obs_ms = np.asarray(rv_obs_ms, float)
    return rv_obs_ms + barycorr_ms + rv_obs_ms * barycorr_ms / C_MS
