"""Raw VIRUS data as the observatory writes it: tars of amplifier FITS files.

Tars are found under ``{data_root}/{date}/virus/virus{obs:07d}*.tar`` (one per exposure or one
per observation); members ``.../virus{obs:07d}/exp{NN}/virus/{stamp}_{ifuslot}{amp}_{kind}.fits``.
Nothing here writes under the data root.
"""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path

import numpy as np
from astropy.io import fits

from astroflow.errors import ItemError

MEMBER = re.compile(r"virus(\d{7})/exp(\d{2})/virus/([^/]*)_(\d{3})(LL|LU|RL|RU)_(zro|flt|twi|cmp|sci)\.fits$")
KINDS = ("zro", "flt", "twi", "cmp", "sci")


def find_tars(data_root: Path) -> list[Path]:
    return sorted(Path(data_root).glob("[0-9]" * 8 + "/virus/virus*.tar"))


def tar_members(path: Path) -> list[dict]:
    """One dict per amplifier FITS in a tar: its member name and header values (runbook 1-2)."""
    rows = []
    try:
        with tarfile.open(path) as tar:
            for m in tar.getmembers():
                hit = MEMBER.search(m.name)
                if not hit or not m.isfile():
                    continue
                obs, exp, stamp, slot, amp, kind = hit.groups()
                head = fits.Header.fromfile(tar.extractfile(m))  # the primary header only, not the data
                rows.append({
                    "tar": str(path), "member": m.name, "date": path.parent.parent.name, "obs": int(obs),
                    "exp": int(exp), "stamp": stamp, "ifuslot": slot, "amp": amp, "kind": kind,
                    "specid": str(head.get("SPECID", "")).zfill(3), "ifuid": str(head.get("IFUID", "")).zfill(3),
                    "contid": str(head.get("CONTID", "")), "gain": float(head.get("GAIN", 1.0)),
                    "exptime": float(head.get("EXPTIME", 0.0)), "darktime": float(head.get("DARKTIME", 0.0)),
                    "mjd": float(head.get("MJD", 0.0)), "object": str(head.get("OBJECT", "")),
                    "ra": float(head.get("TRAJCRA", np.nan)), "dec": float(head.get("TRAJCDEC", np.nan)),
                    "pa": float(head.get("PARANGLE", np.nan)), "ut": str(head.get("UT", "")),
                    "structaz": float(head.get("STRUCTAZ", np.nan)), "ambtemp": float(head.get("AMBTEMP", np.nan)),
                    "humidity": float(head.get("HUMIDITY", np.nan)), "dewpoint": float(head.get("DEWPT", np.nan)),
                    "pressure": float(head.get("BAROMPRE", np.nan)),
                })
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ItemError(f"cannot read tar {path}: {exc}", path=str(path)) from exc
    if not rows:
        raise ItemError(f"no VIRUS amplifier FITS in {path}", path=str(path))
    return rows


def read_frame(tar_path: str, member: str) -> np.ndarray:
    """The raw frame (float32, 1032 x 1064) of one tar member; a bad file is an ItemError naming it."""
    try:
        with tarfile.open(tar_path) as tar:
            data = fits.getdata(io.BytesIO(tar.extractfile(member).read()))
    except Exception as exc:
        raise ItemError(f"cannot read {member} in {tar_path}: {exc}", path=f"{tar_path}:{member}") from exc
    if data is None or data.ndim != 2 or data.shape[0] < 1032 or data.shape[1] < 1060:
        raise ItemError(f"{member} in {tar_path}: unexpected shape {getattr(data, 'shape', None)}",
                        path=f"{tar_path}:{member}")
    return data.astype(np.float32)


def read_fplane(path: Path | None) -> dict[str, dict]:
    """fplane table by ifuslot: fpx, fpy (arcsec), specid, specslot, ifuid, ifurot, platesc."""
    out = {}
    if path is None or not Path(path).exists():
        return out
    for line in Path(path).read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        p = line.split()
        out[p[0]] = {"ifuslot": p[0], "fpx": float(p[1]), "fpy": float(p[2]), "specid": p[3], "specslot": p[4],
                     "ifuid": p[5], "ifurot": float(p[6]), "platesc": float(p[7])}
    return out


def read_star_catalog(path: Path | None) -> list[dict]:
    import csv

    if path is None or not Path(path).exists():
        return []
    with open(path) as fh:
        return [{k: (v if k == "star_ID" else float(v)) for k, v in row.items()} for row in csv.DictReader(fh)]
