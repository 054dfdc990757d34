"""Profile, blaze and optimal extraction (Horne 1986) of steps/nres/science/extract.py on
synthetic frames with a known spectrum."""

import numpy as np
from scipy.special import erf

from steps.nres.science import extract, trace

NX, NY, SIGMA = 400, 160, 1.5


def centres():
    x = np.arange(NX)
    u = (x - NX / 2) / NX
    return [(o, f, 30 + 60 * o + 10 * u + 25 * u ** 2 + (1 - f) * 12.0) for o in range(2) for f in range(3)]


def image_of(spectra, rng, read_noise=5.0, lit=(0, 1, 2)):
    """spectra: {(order, fiber): flux per column (e-)} -> a frame with pixel-integrated profiles."""
    y = np.arange(NY)[:, None]
    img = np.zeros((NY, NX))
    for o, f, yc in centres():
        if f not in lit or (o, f) not in spectra:
            continue
        a = (y - 0.5 - yc[None, :]) / (np.sqrt(2) * SIGMA)
        b = (y + 0.5 - yc[None, :]) / (np.sqrt(2) * SIGMA)
        img += spectra[(o, f)][None, :] * 0.5 * (erf(b) - erf(a))
    return rng.poisson(np.clip(img, 0, None)).astype(float) + rng.normal(0, read_noise, img.shape)


def traces():
    rows = centres()
    return trace.TraceSet.from_centres(np.arange(NX), np.array([r[2] for r in rows]),
                                       [r[0] for r in rows], [r[1] for r in rows], NX, NY)


def test_profile_blaze_and_optimal_extraction_with_cosmic_rays():
    rng = np.random.default_rng(0)
    ts = traces()
    blaze_true = 0.6 + 0.4 * np.cos(np.linspace(-1.3, 1.3, NX))
    flat = image_of({(o, f): 2e5 * blaze_true for o, f, _ in centres()}, rng)
    prof = extract.profile_from_flat(flat, ts)
    assert prof.k == extract.half_height(ts) == 5
    assert np.allclose(prof.profile.sum(axis=1), 1.0, atol=1e-6)
    blaze, berr = extract.blaze_from_flat(flat, prof)
    ratio = blaze / blaze_true[None, :]
    assert np.all(np.abs(ratio / np.median(ratio, axis=1, keepdims=True) - 1) < 0.02)
    assert np.all(berr > 0)

    # a faint flat (the blue end of NRES): its column sums scatter by 2 %; the blaze does not, or
    # that scatter would be a pattern fixed to the pixels in every spectrum the flat normalises
    faint = image_of({(o, f): 2.5e3 * blaze_true for o, f, _ in centres()}, rng)
    sums = extract.cut(faint, prof.rows).sum(axis=1)
    smooth, _ = extract.blaze_from_flat(faint, prof)
    col = np.s_[:, 50:-50]
    assert np.std(np.diff(sums / blaze_true, axis=1)[col]) / np.sqrt(2) / np.median(sums / blaze_true) > 0.015
    ratio = smooth / blaze_true[None, :]
    assert np.std(np.diff(ratio, axis=1)[col]) / np.sqrt(2) < 0.003
    assert np.all(np.abs(ratio / np.median(ratio, axis=1, keepdims=True) - 1)[col] < 0.02)

    # a star in fiber 0, an arc-like comb in fiber 1, nothing in fiber 2
    x = np.arange(NX)
    star = 3000 * blaze_true * (1 - 0.5 * np.exp(-0.5 * ((x - 200) / 2.0) ** 2))
    comb = 50 + sum(2e4 * np.exp(-0.5 * ((x - c) / 1.3) ** 2) for c in (60, 150, 260, 330))
    spec = {}
    for o in range(2):
        spec[(o, 0)] = star
        spec[(o, 1)] = comb
    rn = 5.0
    img = image_of(spec, rng, read_noise=rn)
    cosmic = [(round(centres()[0][2][120]), 120), (round(centres()[3][2][300]), 300)]
    for yy, xx in cosmic:
        img[yy, xx] += 5e4
    mask = np.zeros(img.shape, np.uint8)
    yb = round(centres()[0][2][250])
    mask[yb, 250] = 1
    img[yb, 250] = -1e5                                # a dead pixel, masked
    var = extract.variance_image(img, rn)
    out = extract.optimal_extract(img, var, prof, mask=mask, read_noise=rn)
    assert out["flux"].shape == (6, NX)
    assert out["n_rejected"].sum() >= 2
    for i in range(6):
        o, f = int(out["order"][i]), int(out["fiber"][i])
        truth = spec.get((o, f))
        if truth is None:
            assert abs(np.median(out["flux"][i])) < 5
            continue
        z = (out["flux"][i] - truth) / np.sqrt(out["variance"][i])
        assert abs(np.mean(z)) < 0.15 and 0.8 < np.std(z) < 1.2, (o, f, np.mean(z), np.std(z))
        assert np.max(np.abs(z)) < 6
    assert out["mask"][0, 120] & extract.MASK_COSMIC
    box = extract.box_extract(img, var, prof, mask=mask)
    good = out["mask"] == 0
    assert np.allclose(np.median((box["flux"] / out["flux"])[good & (out["flux"] > 1000)]), 1.0, atol=0.01)
    assert np.all(out["variance"][good] <= box["variance"][good] * 1.05)   # optimal beats box
