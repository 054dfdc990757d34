"""Run inside the hetdex_api virtual environment (numpy<2): open a staged release with the HETDEX
team's own reader and print what it returns as JSON.

    python hetdex_api_check.py STAGE_DIR RELEASE SHOTID RA DEC DETECTID
(STAGE_DIR holds {release}/reduction/data, {release}/survey, {release}/detect; run with cwd=STAGE_DIR)
"""

import json
import os
import sys

import numpy as np

stage, release, shotid, ra, dec, detectid = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
os.chdir(stage)

import astropy.units as u  # noqa: E402
from astropy.coordinates import SkyCoord  # noqa: E402
from hetdex_api.detections import Detections  # noqa: E402
from hetdex_api.shot import Fibers, get_fibers_table, get_image2D_amp, open_shot_file  # noqa: E402
from hetdex_api.survey import FiberIndex, Survey  # noqa: E402

out = {}
fh = open_shot_file(shotid, survey=release)
out["n_fibers"] = int(fh.root.Data.Fibers.nrows)
out["shot_fwhm"] = float(fh.root.Shot.cols.fwhm_virus[0])
multiframe = fh.root.Data.FiberIndex.cols.multiframe[0].decode()
fh.close()

coord = SkyCoord(ra * u.deg, dec * u.deg)
F = Fibers(shotid, survey=release)
sel = F.query_region(coord, radius=3.0 * u.arcsec)
out["query_region_n"] = int(len(sel))
tab = get_fibers_table(shotid, multiframe=multiframe, survey=release, F=F)
out["fibers_table_n"] = int(len(tab))
out["fibers_table_multiframe"] = sorted({m.decode() if isinstance(m, bytes) else m for m in tab["multiframe"]})
near = get_fibers_table(shotid, coords=coord, radius=3.0 * u.arcsec, survey=release, F=F)
out["near_calfib_peak"] = float(np.nanmax(np.asarray(near["calfib"]).sum(axis=0)))
F.close()

img = get_image2D_amp(shotid, multiframe=multiframe, imtype="clean_image", expnum=1, survey=release)
out["image_shape"] = list(img.shape)
out["image_median"] = float(np.median(img))

S = Survey(release)
out["survey_shotids"] = [int(s) for s in S.shotid]
out["survey_fluxlimit"] = [float(v) for v in S.fluxlimit_4600]
out["survey_fwhm"] = [float(v) for v in S.fwhm_virus]

FI = FiberIndex(release)
ft = FI.query_region(coord, radius=3.0 * u.arcsec, return_flags=False)
out["fiberindex_n"] = int(len(ft))
ft2 = FI.query_region(coord, radius=3.0 * u.arcsec)
out["fiberindex_flagged_n"] = int(len(ft2))
import healpy  # noqa: E402
hp_ref = healpy.ang2pix(2**15, FI.hdfile.root.FiberIndex.cols.ra[:].astype(float), FI.hdfile.root.FiberIndex.cols.dec[:].astype(float), lonlat=True)
out["healpix_matches_healpy"] = bool(np.all(hp_ref == FI.hdfile.root.FiberIndex.cols.healpix[:]))
FI.close()

D = Detections(release)
spec = D.get_spectrum(detectid)
out["spec_len"] = int(len(spec))
wave = np.asarray(spec["wave1d"])
flux = np.asarray(spec["spec1d"])
out["spec_peak_wave"] = float(wave[np.nanargmax(flux)])
dist = np.abs(wave - wave[np.nanargmax(flux)])
cont = np.nanmedian(flux[(dist > 15) & (dist < 60)])  # the line may sit on a continuum ([OII] hosts)
out["spec_line_flux"] = float(np.nansum(flux[dist < 10] - cont) * 2.0)
did = detectid
row = D.hdfile.root.Detections.read_where("detectid == did")
out["det_wave"] = float(row["wave"][0])
out["det_flux"] = float(row["flux"][0])
fibs = D.get_fiber_info(detectid)
out["det_fibers_n"] = int(len(fibs))
D2 = Detections(release, loadtable=True)
out["loadtable_n"] = int(len(D2.detectid))
C = Detections(release, catalog_type="continuum")
out["continuum_rows"] = int(C.hdfile.root.Detections.nrows)
print("RESULT " + json.dumps(out))
