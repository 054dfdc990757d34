"""Runbook step 16, gen_twexo.py (+ twexo.py, wkhtmltopdf): one page of target facts and links per TIC.

Fans out over the TICs of the vetted TCEs and writes ``S{ss}/{tic//1000:04d}/twexo_{TIC}.pdf``
offline, from what the run already holds: the star (DV XML stellar parameters), every TCE of the
TIC with its triage result, the TOI and known-planet matches (steps 5 and 10), and clickable
links to ExoFOP, SIMBAD, VizieR, the MAST portal and the Gaia archive.  The original queried
MAST, Gaia and ExoFOP live for every target (and needed a separate Python 3 install); here a
Gaia DR3 cone search is optional (``[steps.twexo] online = true``) with a timeout, cached in the
run directory, and a failed lookup is noted on the page, never an error.
"""

from __future__ import annotations

import json
import math
import urllib.parse
import urllib.request

import pyarrow as pa

from astroflow.atomic import write_bytes, write_text
from astroflow.step import FanOut, Resources, StepParams
from steps.tec.vetted import triage_rows, vetted_tces

GAIA_TAP = "https://gea.esac.esa.int/tap-server/tap/sync"
SCHEMA = pa.schema([("tic", pa.int64()), ("path", pa.string()), ("n_tces", pa.int32()),
                    ("online", pa.string())])
STAR = ["ra", "dec", "tmag", "teff", "logg", "rstar", "feh", "pmra", "pmdec"]
TCE = ["planet_number", "eph_period", "eph_epoch", "eph_duration_h", "eph_depth_ppm", "mes", "at_snr", "at_rp"]


class TwexoParams(StepParams):
    online: bool = False          # also query Gaia DR3 for neighbours (needs network)
    timeout_s: float = 10.0       # per online request
    radius_arcsec: float = 60.0   # Gaia cone radius


def links(tic: int, ra: float, dec: float) -> list[tuple[str, str]]:
    pos = f"{ra:.6f} {dec:+.6f}"
    q = urllib.parse.quote
    return [
        ("ExoFOP-TESS", f"https://exofop.ipac.caltech.edu/tess/target.php?id={tic}"),
        ("SIMBAD", "https://simbad.cds.unistra.fr/simbad/sim-coo?" + urllib.parse.urlencode(
            {"Coord": pos, "Radius": "2", "Radius.unit": "arcmin"})),
        ("VizieR", "https://vizier.cds.unistra.fr/viz-bin/VizieR-4?" + urllib.parse.urlencode(
            {"-c": pos, "-c.rs": "60", "-out.max": "50"})),
        ("MAST portal", f"https://mast.stsci.edu/portal/Mashup/Clients/Mast/Portal.html?searchQuery={q(pos)}"),
        ("Gaia archive", f"https://gea.esac.esa.int/archive/?ra={ra:.6f}&dec={dec:.6f}"),
        ("TESScut", f"https://mast.stsci.edu/tesscut/api/v0.1/astrocut?ra={ra:.6f}&dec={dec:.6f}&y=21&x=21"),
    ]


def sexagesimal(ra: float, dec: float) -> str:
    """``01h01m00.00s +05d30m00.0s`` for RA, Dec in degrees, by ``astropy.coordinates.Angle`` (the
    rounding carries into the minutes and hours: 15.25 deg is 01h01m00.00s, never 01h00m60.00s)."""
    if not (math.isfinite(ra) and math.isfinite(dec)):
        return "-"
    import astropy.units as u
    from astropy.coordinates import Angle

    hours = round(Angle(ra, u.deg).hour * 360000) / 360000 % 24  # 23h59m59.999s prints as 00h00m00.00s
    return (Angle(hours, u.hourangle).to_string(unit=u.hourangle, sep="hms", precision=2, pad=True)
            + " " + Angle(dec, u.deg).to_string(unit=u.deg, sep="dms", precision=1, pad=True, alwayssign=True))


def gaia_neighbours(ra: float, dec: float, radius_arcsec: float, timeout_s: float) -> list[dict]:
    query = (f"SELECT TOP 30 source_id, ra, dec, phot_g_mean_mag, parallax, "
             f"DISTANCE(POINT(ra, dec), POINT({ra}, {dec})) * 3600 AS sep "
             f"FROM gaiadr3.gaia_source WHERE 1 = CONTAINS(POINT(ra, dec), CIRCLE({ra}, {dec}, "
             f"{radius_arcsec / 3600.0})) ORDER BY sep")
    data = urllib.parse.urlencode({"REQUEST": "doQuery", "LANG": "ADQL", "FORMAT": "json", "QUERY": query}).encode()
    with urllib.request.urlopen(GAIA_TAP, data=data, timeout=timeout_s) as resp:
        out = json.loads(resp.read())
    names = [c["name"] for c in out["metadata"]]
    return [dict(zip(names, row)) for row in out["data"]]


def targets(ctx) -> list[dict]:
    return [{"tic": tic} for tic in sorted({r["tic"] for r in vetted_tces(ctx)})]


def load(ctx, items) -> dict:
    from steps.tec.vetted import tic_where

    flt = tic_where(items)
    by_tic: dict = {}
    for r in ctx.rows("gather", columns=["tic"] + STAR + TCE, where=flt):
        by_tic.setdefault(r["tic"], []).append(r)
    toi = {(r["tic"], r["planet_number"]): r for r in ctx.rows("federate_toi", where=flt)}
    known = {(r["tic"], r["planet_number"]): r for r in ctx.rows("federate_known", where=flt)}
    return {"tces": by_tic, "toi": toi, "known": known, "triage": triage_rows(ctx)}


def _fmt(v, spec=".3f") -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)


def one_tic(ctx, item) -> dict:
    tic = item["tic"]
    tces = sorted(ctx.state["tces"].get(tic, []), key=lambda r: r["planet_number"])
    star = tces[0] if tces else {k: float("nan") for k in STAR}
    online = "off"
    neighbours: list[dict] = []
    if ctx.params.online:
        cache = ctx.product(ctx.settings.tce_dir(tic) / f".twexo_gaia_{tic:016d}.json")
        try:
            if cache.exists():
                neighbours = json.loads(cache.read_text())
            else:
                neighbours = gaia_neighbours(star["ra"], star["dec"], ctx.params.radius_arcsec, ctx.params.timeout_s)
                write_text(cache, json.dumps(neighbours))
            online = f"gaia: {len(neighbours)} sources"
        except (OSError, ValueError, KeyError) as exc:
            online = f"gaia lookup failed: {exc}"
    rel = ctx.settings.tce_dir(tic) / f"twexo_{tic:016d}.pdf"
    render_page(ctx.product(rel), tic, star, tces, ctx.state, neighbours, online)
    return {"tic": tic, "path": str(rel), "n_tces": len(tces), "online": online}


def render_page(path, tic: int, star: dict, tces: list[dict], state: dict, neighbours: list[dict], online: str) -> None:
    """The page, with the project's PDF writer (``steps.tec.pdfpage``; matplotlib took 0.1-0.3 s)."""
    from steps.tec.pdfpage import PAGE_H, PAGE_W, Page, build_pdf, text_width

    page = Page()
    x, y = 0.06 * PAGE_W, 0.95 * PAGE_H

    def line(text, size=9, url=None, mono=True, dy=0.018, rgb=None):
        nonlocal y
        base = y - size * 0.8   # matplotlib's va="top": the line hangs below y
        font = "F3" if mono else "F1"
        page.text(x, base, text, size, font=font, rgb=rgb)
        if url:
            page.link(x, base - size * 0.25, text_width(text, size, font), size * 1.1, url)
        y -= dy * PAGE_H

    line(f"TIC {tic}", size=16, mono=False, dy=0.035)
    line(f"RA, Dec  {_fmt(star['ra'], '.6f')} {_fmt(star['dec'], '+.6f')}   {sexagesimal(star['ra'], star['dec'])}")
    line(f"Tmag {_fmt(star['tmag'], '.2f')}   Teff {_fmt(star['teff'], '.0f')} K   logg {_fmt(star['logg'], '.2f')}"
         f"   R* {_fmt(star['rstar'], '.2f')} Rsun   [Fe/H] {_fmt(star['feh'], '.2f')}")
    line(f"proper motion  {_fmt(star['pmra'], '.2f')} {_fmt(star['pmdec'], '.2f')} mas/yr", dy=0.03)
    line("TCEs", size=12, mono=False, dy=0.025)
    line(f"{'PN':>3} {'period d':>10} {'epoch BTJD':>12} {'dur h':>6} {'depth ppm':>10} {'MES':>6} {'SNR':>6}"
         f" {'Rp Re':>6}  triage / TOI / known")
    for r in tces:
        key = (tic, r["planet_number"])
        tri = state["triage"].get(key)
        toi = state["toi"].get(key, {})
        kn = state["known"].get(key, {})
        notes = [("pass" if tri["passed"] else tri["reason"]) if tri else "-"]
        if toi.get("toi_matched"):
            notes.append(f"TOI {toi['toi']:.2f} {toi.get('toi_disposition') or ''}"
                         + ("" if toi.get("toi_federated") else " (not federated)"))
        if kn.get("known_matched"):
            notes.append(f"known {kn.get('known_name')}")
        line(f"{r['planet_number']:>3} {_fmt(r['eph_period'], '10.5f')} {_fmt(r['eph_epoch'], '12.5f')}"
             f" {_fmt(r['eph_duration_h'], '6.2f')} {_fmt(r['eph_depth_ppm'], '10.0f')} {_fmt(r['mes'], '6.1f')}"
             f" {_fmt(r['at_snr'], '6.1f')} {_fmt(r['at_rp'], '6.2f')}  " + "; ".join(notes))
    y -= 0.015 * PAGE_H
    line("Links", size=12, mono=False, dy=0.025)
    blue = (0, 0, 1)
    if math.isfinite(star["ra"]) and math.isfinite(star["dec"]):
        for name, url in links(tic, star["ra"], star["dec"]):
            line(name, size=10, url=url, mono=False, rgb=blue)
    else:
        line("ExoFOP-TESS", size=10, url=f"https://exofop.ipac.caltech.edu/tess/target.php?id={tic}", mono=False,
             rgb=blue)
    y -= 0.015 * PAGE_H
    line(f"Online lookups: {online}", size=8, mono=False)
    for n in neighbours[:30]:
        line(f"  Gaia DR3 {n.get('source_id')}  sep {_fmt(n.get('sep'), '5.1f')}\"  G {_fmt(n.get('phot_g_mean_mag'), '.2f')}"
             f"  plx {_fmt(n.get('parallax'), '.2f')}", size=7)
    write_bytes(path, build_pdf([page], title=f"TIC {tic}", creator="astroflow TEC twexo", fonts=("F1", "F3")))


twexo = FanOut(
    "twexo",
    inputs=("gather", "flux_triage", "federate_toi", "federate_known"),
    items=targets,
    setup=load,
    process=one_tic,
    key=("tic",),
    params=TwexoParams,
    schema=SCHEMA,
    shard_size=100,
    resources=Resources(cpu="1", memory="1Gi"),
    doc=__doc__,
)
