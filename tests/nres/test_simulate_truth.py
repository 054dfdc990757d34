"""The simulator's truth agrees with its frames and with astropy: barycentric corrections and
BJD_TDB recomputed from the headers, traces on the flats' bright rows, ThAr lines where the true
wavelength solution puts them, the stars' Doppler shifts and the drift, the CCD's numbers."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from scipy.ndimage import maximum_filter1d, uniform_filter1d

from steps.nres.simulate_spectra import thar_lines

C = 299792458.0


class Night:
    """A simulation's truth indexed for look-ups, and box extraction along the true traces."""

    def __init__(self, sim):
        self.sim = sim
        self.frames = {r["filename"]: r for r in sim.table("frames")}
        self.traces = {(r["site"], r["day_obs"], r["order"], r["fiber"]): r for r in sim.table("traces")}
        self.waves = {(r["site"], r["day_obs"], r["order"], r["fiber"]): r for r in sim.table("wavelengths")}

    def image(self, frame: dict) -> np.ndarray:
        data = fits.getdata(self.sim.root / frame["path"]).astype(float)
        return data[:, :1024] - np.median(data[:, 1024:])

    def key(self, frame, order, fiber):
        return frame["site"], frame["day_obs"], order, fiber

    def extract(self, frame: dict, image: np.ndarray, order: int, fiber: int, half: int = 4) -> np.ndarray:
        y = np.rint(self.traces[self.key(frame, order, fiber)]["y"]).astype(int)
        x = np.arange(image.shape[1])
        return sum(image[y + k, x] for k in range(-half, half + 1))

    def wavelength(self, frame: dict, order: int, fiber: int) -> np.ndarray:
        return np.array(self.waves[self.key(frame, order, fiber)]["wavelength"])

    def first(self, **match) -> dict:
        return next(r for r in self.frames.values() if all(r[k] == v for k, v in match.items()))


@pytest.fixture(scope="module")
def night(nres_sim):
    return Night(nres_sim)


def _targets(night):
    return [r for r in night.frames.values() if r["obstype"] == "TARGET"]


def test_barycorr_and_bjd_recomputed_from_the_headers(night):
    import astropy.units as u
    from astropy.coordinates import EarthLocation, SkyCoord
    from astropy.time import Time

    for r in _targets(night):
        h = fits.getheader(night.sim.root / r["path"], 0)
        loc = EarthLocation.from_geodetic(h["LONGITUD"] * u.deg, h["LATITUDE"] * u.deg, h["HEIGHT"] * u.m)
        mid = Time(h["DATE-OBS"], scale="utc", location=loc) + h["EXPTIME"] / 2 * u.s
        star = SkyCoord(h["RA"], h["DEC"], unit=(u.hourangle, u.deg))
        assert star.radial_velocity_correction(obstime=mid).to_value(u.m / u.s) == pytest.approx(r["barycorr_m_s"], abs=1e-3)
        bjd = mid.tdb + mid.light_travel_time(star)
        assert (bjd.jd1 - r["bjd_tdb"]) + bjd.jd2 == pytest.approx(0.0, abs=1e-8)
        # the catalogue position moved to the date: the correction the Doppler shift used
        cat = SkyCoord(h["CAT-RA"], h["CAT-DEC"], unit=(u.hourangle, u.deg), pm_ra_cosdec=h["PM-RA"] * u.arcsec / u.yr,
                       pm_dec=h["PM-DEC"] * u.arcsec / u.yr, distance=(h["PARALLAX"] * u.arcsec).to(u.pc, u.parallax()),
                       obstime=Time("J2000.0", scale="tt")).apply_space_motion(new_obstime=mid)
        true = cat.radial_velocity_correction(location=loc).to_value(u.m / u.s)
        assert true == pytest.approx(r["barycorr_true_m_s"], abs=0.05)  # CAT-RA/DEC are rounded to 0.001 s, 0.01"
        assert abs(r["barycorr_true_m_s"] - r["barycorr_m_s"]) < 0.2


def test_rv_snr_and_drift_truth(night, nres_sim):
    stars = {s["name"]: s for s in nres_sim.table("stars")}
    for r in _targets(night):
        assert r["rv_m_s"] == stars[r["object"]]["rv_m_s"]
        if r["object"] == "HD38858":
            assert r["snr"] == pytest.approx(200.0 if r["day_obs"] == "20240122" else 50.0, rel=0.1)
        else:
            assert r["snr"] == pytest.approx(100.0, rel=0.15)
    drifts = np.array([abs(r["drift_m_s"]) for r in _targets(night)])
    assert drifts.max() > 10.0 and drifts.max() < 100.0
    assert all(r["drift_m_s"] == 0.0 for r in night.frames.values() if r["obstype"] == "DOUBLE")


def test_traces_lie_on_the_flats_bright_rows(night):
    for objects, lit in (("tung&tung&none", (0, 1)), ("none&tung&tung", (1, 2))):
        flat = night.first(site="lsc", day_obs="20240123", obstype="LAMPFLAT", objects=objects)
        image = night.image(flat)
        errors = []
        for order in range(12):
            for fiber in lit:
                y = np.array(night.traces[night.key(flat, order, fiber)]["y"])
                for x in range(16, 1010, 31):
                    rows = int(np.rint(y[x])) + np.arange(-4, 5)
                    w = image[rows, x]
                    errors.append((rows * w).sum() / w.sum() - y[x])
        errors = np.array(errors)
        assert abs(errors.mean()) < 0.02 and errors.std() < 0.05 and np.abs(errors).max() < 0.15


def _isolated_lines(lam, amp, w, min_amp):
    """ThAr lines inside the order, no neighbour above 2 % of their amplitude within 12 pixels."""
    step = w[1] - w[0]
    for l, a in zip(lam, amp):
        if a < min_amp or not w[10] < l < w[-10]:
            continue
        near = (np.abs(lam - l) < 12 * step) & (lam != l)
        if not (amp[near] > 0.02 * a).any():
            yield l


def _centroid(spectrum, x0):
    win = int(np.rint(x0)) + np.arange(-4, 5)
    return (win * spectrum[win]).sum() / spectrum[win].sum(), spectrum[win].max()


def test_arc_lines_appear_at_the_true_wavelength_solution(night):
    lam, amp = thar_lines()
    arc = night.first(site="cpt", day_obs="20240122", obstype="DOUBLE", objects="none&thar&thar")
    image = night.image(arc)
    offsets = []
    for order in range(12):
        for fiber in (1, 2):
            w = night.wavelength(arc, order, fiber)
            spectrum = night.extract(arc, image, order, fiber, half=5)
            for line in _isolated_lines(lam, amp, w, 300):
                x0 = np.interp(line, w, np.arange(w.size))
                centre, peak = _centroid(spectrum, x0)
                if peak < 40000:  # no saturated pixel in the line
                    offsets.append(centre - x0)
    offsets = np.array(offsets)
    assert offsets.size > 40
    assert abs(offsets.mean()) < 0.01 and offsets.std() < 0.05


def test_the_drift_moves_the_simultaneous_thar(night):
    lam, amp = thar_lines()
    target = max(_targets(night), key=lambda r: abs(r["drift_m_s"]))
    arc = night.first(site=target["site"], day_obs=target["day_obs"], obstype="DOUBLE", objects="thar&thar&none")
    a_img, t_img = night.image(arc), night.image(target)
    velocities = []
    for order in range(12):
        w = night.wavelength(arc, order, 1)
        a, t = night.extract(arc, a_img, order, 1), night.extract(target, t_img, order, 1)
        for line in _isolated_lines(lam, amp, w, 500):
            x0 = np.interp(line, w, np.arange(w.size))
            (ca, peak), (ct, _) = _centroid(a, x0), _centroid(t, x0)
            if peak < 40000:
                velocities.append((ct - ca) * np.interp(ca, np.arange(w.size - 1) + 0.5, np.diff(w)) / line * C)
    velocities = np.array(velocities)
    error = velocities.std() / np.sqrt(velocities.size)
    assert abs(np.mean(velocities) - target["drift_m_s"]) < max(4 * error, 10.0)


def _normalised(night, frame, image, order):
    fiber = frame["science_fiber"]
    flux = night.extract(frame, image, order, fiber)
    lam = night.wavelength(frame, order, fiber) / (1 + frame["drift_m_s"] / C)  # what reached each column
    return lam, flux / uniform_filter1d(maximum_filter1d(flux, 61), 61)


def _shift(night, a, b, expected):
    """Median over orders of the velocity taking frame a's spectrum onto frame b's."""
    out = []
    image_a, image_b = night.image(a), night.image(b)
    for order in range(12):
        la, fa = _normalised(night, a, image_a, order)
        lb, fb = _normalised(night, b, image_b, order)
        vs = expected + np.arange(-800.0, 801.0, 20.0)
        chi = [np.sum((np.interp(la[60:-60] * (1 + v / C), lb, fb) - fa[60:-60]) ** 2) for v in vs]
        k = int(np.argmin(chi))
        assert 3 <= k < vs.size - 3, "the shift is more than 800 m/s from the expected one"
        p = np.polyfit(vs[k - 3:k + 4], chi[k - 3:k + 4], 2)
        out.append(-p[1] / (2 * p[0]))
    return float(np.median(out))


def test_stars_are_doppler_shifted_by_rv_and_true_barycentric_motion(night):
    def factor(r):  # 1 + z of the light reaching the telescope
        return (1 + r["rv_m_s"] / C) / (1 + r["barycorr_true_m_s"] / C)

    template = night.first(site="cpt", day_obs="20240122", object="HD38858")
    for other, tolerance in ((night.first(site="lsc", day_obs="20240122", object="HD38858"), 25.0),
                             (night.first(site="lsc", day_obs="20240123", object="HD26965"), 40.0)):
        expected = (factor(other) / factor(template) - 1) * C
        assert _shift(night, template, other, expected) == pytest.approx(expected, abs=tolerance)


def test_ccd_truth(night, nres_sim):
    ccd = next(c for c in nres_sim.table("ccds") if c["site"] == "cpt")
    biases = [r for r in night.frames.values() if r["site"] == "cpt" and r["obstype"] == "BIAS"]
    raws = [fits.getdata(nres_sim.root / r["path"]).astype(float) for r in biases]
    for r, raw in zip(biases, raws):
        assert np.median(raw[:, 1024:]) == pytest.approx(r["overscan_adu"], abs=0.5)
    read_noise = np.std(raws[0][:, :1024] - raws[1][:, :1024]) / np.sqrt(2) * ccd["gain"]
    assert read_noise == pytest.approx(ccd["read_noise_e"], rel=0.02)
    master = np.median([raw[:, :1024] - np.median(raw[:, 1024:]) for raw in raws], axis=0)
    assert np.mean(master) + ccd["overscan_adu"] == pytest.approx(ccd["bias_level_adu"], abs=0.2)
    darks = [night.image(r) for r in night.frames.values() if r["site"] == "cpt" and r["obstype"] == "DARK"]
    dark = (np.median(darks, axis=0) - master) * ccd["gain"] / 900.0
    hot = np.array(ccd["hot_e_s"])
    measured = dark[ccd["hot_y"], ccd["hot_x"]]
    bright = hot > 2.0
    assert np.allclose(measured[bright], hot[bright], rtol=0.15)
    cold = np.ones(dark.shape, bool)
    cold[ccd["hot_y"], ccd["hot_x"]] = False
    assert np.mean(dark[cold]) == pytest.approx(ccd["dark_e_s"], rel=0.1)
