"""Discovery of the SPOC products one TEC run reads.

Replaces the hard-coded paths and globs of the TEC scripts (`tec_make_params.py`
derives `lcpre`/`lcnum`/`dvpre`/`dvnum` from existing file names; every script
then globs `/pdo/spoc-data/sector-NNN/<kind>/...`) and the FTL edits of
`tec_run_parameters.py` (`lc_file_prefix`, `lc_file_postfix`, `dv_file_prefix`,
`dv_file_postfix`).  Nothing here is edited per run: a file-name family is a
`Naming` value and the folder layout is found by walking the data root once.

File names (see ../shared/reference/spoc-formats.md section 7)::

    SPOC 2-min  tess{stamp}-s{SSSS}-{TIC:016d}-{scid:04d}-{cr}_lc.fits[.gz]      (_tp)
                tess{stamp}-s{SSSS}-s{EEEE}-{TIC:016d}-{pin:05d}_dvr.xml[.gz]   (_dvr.pdf _dvt.fits _dvm.pdf)
                tess{stamp}-s{SSSS}-s{EEEE}-{TIC:016d}-{PN:02d}-{pin:05d}_dvs.pdf
    HLSP / FTL  hlsp_tess-spoc_tess_phot_{TIC:016d}-s{SSSS}_tess_v1_lc.fits[.gz]  (_tp)
                hlsp_tess-spoc_tess_phot_{TIC:016d}-s{SSSS}-s{EEEE}_tess_v1_dvr.xml[.gz] (...)
                hlsp_tess-spoc_tess_phot_{TIC:016d}-s{SSSS}-s{EEEE}_tess_v1_dvs-{PN:02d}.pdf

Folder layouts: MIT ``sector-NNN[-variant]/{light-curve,target-pixel,dv-results,
dv-reports,dv-time-series}``; NAS ``exports/.../sector-N/{ftl-,}<kind>``; MAST
``tid/sNNNN/t1/t2/t3/t4/`` and ``HLSP/tess-spoc/sNNNN[-sEEEE]/target/t1/t2/t3/t4/``.
The walk prunes sector folders of other sectors and kind folders of other kinds;
everything else is decided by a regular expression on the file name.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ProductError",
    "Naming",
    "SPOC_2MIN",
    "HLSP",
    "KINDS",
    "find_products",
]


class ProductError(Exception):
    """A product file (or data root) that cannot be used, with the reason.

    `path` names the file or folder, `message` says what is wrong with it.
    """

    def __init__(self, path, message: str):
        self.path = Path(path) if path is not None else None
        self.message = message
        super().__init__(f"{path}: {message}")


# kind -> (file-name suffix regex, folder name that holds it in MIT/NAS layouts)
_SUFFIX = {
    "lc": (r"_lc\.fits(?:\.gz)?", "light-curve"),
    "tp": (r"_tp\.fits(?:\.gz)?", "target-pixel"),
    "dvr_xml": (r"_dvr\.xml(?:\.gz)?", "dv-results"),
    "dvt": (r"_dvt\.fits(?:\.gz)?", "dv-time-series"),
    "dvr_pdf": (r"_dvr\.pdf(?:\.gz)?", "dv-reports"),
    "dvm": (r"_dvm\.pdf(?:\.gz)?", "dv-reports"),
    "dvs": (r"_dvs\.pdf", "dv-reports"),
}
KINDS = tuple(_SUFFIX)
_KIND_FOLDERS = {folder for _, folder in _SUFFIX.values()}
_LC_KINDS = ("lc", "tp")

_TIC = r"(?P<tic>\d{16})"
_PN = r"(?P<pn>\d{2})"
_SPOC_LC = r"tess(?P<stamp>\d{13})-s(?P<s1>\d{4})-" + _TIC + r"-(?P<scid>\d{4})-(?P<cr>[a-z])"
_SPOC_DV = r"tess(?P<stamp>\d{13})-s(?P<s1>\d{4})-s(?P<s2>\d{4})-" + _TIC
_HLSP_LC = r"hlsp_tess-spoc_tess_phot_" + _TIC + r"-s(?P<s1>\d{4})_tess_v\d+"
_HLSP_DV = r"hlsp_tess-spoc_tess_phot_" + _TIC + r"-s(?P<s1>\d{4})-s(?P<s2>\d{4})_tess_v\d+"


@dataclass(frozen=True)
class Naming:
    """A file-name family: ``{prefix}{TIC:016d}{postfix}{suffix}``.

    family: "spoc" (2-min, MAST/MIT names) or "hlsp" (FTL / tess-spoc HLSP).
    lc_prefix/lc_postfix and dv_prefix/dv_postfix are the FTL runbook's
    `lc_file_prefix`, ... settings.  A None prefix/postfix means "any stamp,
    sector, pipeline instance" (the family's generic pattern), which is what
    discovery normally wants; set them to pin one export exactly.

    Examples (SPOC): lc_prefix "tess2020353052510-s0033-", lc_postfix "-0203-s",
    dv_prefix "tess2020354001541-s0033-s0033-", dv_postfix "-00421".
    (HLSP): lc_prefix "hlsp_tess-spoc_tess_phot_", lc_postfix "-s0040_tess_v1",
    dv_postfix "-s0040-s0040_tess_v1".
    """

    family: str = "spoc"
    lc_prefix: str | None = None
    lc_postfix: str | None = None
    dv_prefix: str | None = None
    dv_postfix: str | None = None

    def __post_init__(self):
        if self.family not in ("spoc", "hlsp"):
            raise ValueError(f"Naming.family must be 'spoc' or 'hlsp', not {self.family!r}")

    # ---- presets -------------------------------------------------------
    @classmethod
    def spoc(cls) -> "Naming":
        """SPOC 2-min names, any stamp / sector / pipeline instance."""
        return cls("spoc")

    @classmethod
    def hlsp(cls, sector: int | None = None, last_sector: int | None = None) -> "Naming":
        """HLSP tess-spoc (FTL) names; pin the sector(s) when given."""
        if sector is None:
            return cls("hlsp")
        last = sector if last_sector is None else last_sector
        pre = "hlsp_tess-spoc_tess_phot_"
        return cls("hlsp", pre, f"-s{sector:04d}_tess_v1", pre, f"-s{sector:04d}-s{last:04d}_tess_v1")

    @classmethod
    def from_examples(cls, lc_name: str | None = None, dv_name: str | None = None) -> "Naming":
        """Derive a family from existing file names, as tec_make_params.py does
        (it splits on '-'; here the split is at the 16-digit TIC, which works
        for both families).  `dv_name` should be a dvr.xml / dvr.pdf / dvt name."""
        fam = None
        parts: dict[str, str | None] = {}
        for key, name, suffixes in (
            ("lc", lc_name, ("_lc.", "_tp.")),
            ("dv", dv_name, ("_dvr.", "_dvt.", "_dvm.")),
        ):
            if name is None:
                parts[f"{key}_prefix"] = parts[f"{key}_postfix"] = None
                continue
            base = os.path.basename(name)
            m = re.search(r"(?<!\d)\d{16}(?!\d)", base)
            cut = min((base.find(s) for s in suffixes if s in base), default=-1)
            if m is None or cut < m.end():
                raise ValueError(f"cannot derive a naming from {base!r}: no 16-digit TIC before {suffixes}")
            parts[f"{key}_prefix"] = base[: m.start()]
            parts[f"{key}_postfix"] = base[m.end(): cut]
            fam = "hlsp" if base.startswith("hlsp_") else "spoc"
        if fam is None:
            raise ValueError("Naming.from_examples needs at least one file name")
        return cls(fam, **parts)

    # ---- patterns ------------------------------------------------------
    def pattern(self, kind: str) -> re.Pattern:
        """The compiled file-name regex of one product kind (named groups:
        tic, and where the family has them s1, s2, stamp, pn)."""
        if kind not in _SUFFIX:
            raise ValueError(f"unknown product kind {kind!r}; expected one of {KINDS}")
        suffix = _SUFFIX[kind][0]
        is_lc = kind in _LC_KINDS
        pre = self.lc_prefix if is_lc else self.dv_prefix
        post = self.lc_postfix if is_lc else self.dv_postfix
        if pre is not None or post is not None:
            core = (re.escape(pre) if pre is not None else r".*?") + _TIC
            tail = re.escape(post) if post is not None else r"[^/]*?"
            # sector numbers are recovered from the pinned text when present
            if kind == "dvs":
                body = core + (r"-" + _PN + tail + r"_dvs\.pdf" if self.family == "spoc"
                               else tail + r"_dvs-" + _PN + r"\.pdf")
            else:
                body = core + tail + suffix
            return re.compile("^" + body + "$")
        if self.family == "spoc":
            if is_lc:
                body = _SPOC_LC + suffix
            elif kind == "dvs":
                # real form ...-{TIC}-{PN:02d}-{pin}_dvs.pdf; tec.md also names _dvs-{PN}.pdf
                body = _SPOC_DV + r"(?:-" + _PN + r"-(?P<pin>\d{5})_dvs|-(?P<pin2>\d{5})_dvs-(?P<pn2>\d{2}))\.pdf"
            else:
                body = _SPOC_DV + r"-(?P<pin>\d{5})" + suffix
        else:
            if is_lc:
                body = _HLSP_LC + suffix
            elif kind == "dvs":
                body = _HLSP_DV + r"_dvs-" + _PN + r"\.pdf"
            else:
                body = _HLSP_DV + suffix
        return re.compile("^" + body + "$")


SPOC_2MIN = Naming.spoc()
HLSP = Naming.hlsp()

# Folder names that carry a sector number (pruning only).
_SECTOR_DIR = re.compile(r"^sector-(\d{1,3})(?:-(\d{3})((?:\+\d{3}-\d{3})*))?(?![\d])")
_MAST_DIR = re.compile(r"^s(\d{4})(?:-s(\d{4}))?$")


def _folder_sectors(name: str) -> set[int] | None:
    """Sectors a folder name stands for, or None when it names no sector."""
    m = _MAST_DIR.match(name)
    if m:
        a = int(m.group(1))
        b = int(m.group(2) or a)
        return set(range(a, b + 1))
    m = _SECTOR_DIR.match(name)
    if not m:
        return None
    a = int(m.group(1))
    if m.group(2) is None:
        return {a}  # sector-014, sector-014-reprocessed, sector-001-20210219, sector-48
    out = set(range(a, int(m.group(2)) + 1))
    for lo, hi in re.findall(r"\+(\d{3})-(\d{3})", m.group(3) or ""):
        out |= set(range(int(lo), int(hi) + 1))
    return out


def _query_sectors(sector) -> tuple[set[int] | None, tuple[int, int] | None]:
    if sector is None or sector == -1:
        return None, None
    if isinstance(sector, (tuple, list)):
        s1, s2 = int(sector[0]), int(sector[1])
        return set(range(s1, s2 + 1)), (s1, s2)
    s = int(sector)
    return {s}, (s, s)


def find_products(data_root, sector, kind: str, naming: Naming | None = None) -> dict:
    """Find one sector's products of one kind under `data_root`, keyed by TIC.

    sector: an int (single-sector run), a (first, last) pair (multi-sector DV
    products), or None / -1 (any sector).  kind: one of `KINDS` = lc, tp,
    dvr_xml, dvt, dvr_pdf, dvm, dvs.  naming: a `Naming`; None accepts both the
    SPOC and the HLSP family.

    Returns {tic: Path}; for kind "dvs" the key is (tic, planet_number).
    Light-curve and target-pixel files match on their own sector; DV products
    match on their (first, last) sector pair.  When one key is found more than
    once (gzip and plain copies, a reprocessed export beside the first one),
    the newest DV/LC stamp wins, then the plain file, then the later path.

    One os.walk over the tree (symlinks followed, loops skipped); folders of
    other sectors and of other product kinds are not entered.  Raises
    ProductError naming the root, the folders searched and the expected
    patterns when nothing is found.  Replaces the globs of gather_tce_fromdvxml,
    dvts_bulk_resamp, grab_flxwcent, tpf_bulk_resamp, get_dv_report_page,
    rank_tces and merge4tev.
    """
    if kind not in _SUFFIX:
        raise ValueError(f"unknown product kind {kind!r}; expected one of {KINDS}")
    root = Path(data_root)
    if not root.is_dir():
        raise ProductError(root, f"data root is not a folder (looking for {kind} products of sector {sector})")
    want, pair = _query_sectors(sector)
    if kind in _LC_KINDS and pair is not None and pair[0] != pair[1]:
        raise ValueError(f"{kind} files belong to one sector each; call find_products per sector, not {sector}")
    namings = [naming] if naming is not None else [SPOC_2MIN, HLSP]
    patterns = [n.pattern(kind) for n in namings]
    own_folder = _SUFFIX[kind][1]

    found: dict = {}
    rank: dict = {}
    searched: list[str] = []
    seen_dirs: set = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen_dirs:
            dirnames[:] = []
            continue
        seen_dirs.add(real)
        searched.append(dirpath)
        keep = []
        for d in dirnames:
            secs = _folder_sectors(d)
            if want is not None and secs is not None and not (secs & want):
                continue
            base = d[4:] if d.startswith("ftl-") else d
            if base in _KIND_FOLDERS and base != own_folder:
                continue
            keep.append(d)
        dirnames[:] = sorted(keep)
        for fn in filenames:
            for pat in patterns:
                m = pat.match(fn)
                if m is None:
                    continue
                g = m.groupdict()
                s1 = g.get("s1")
                s2 = g.get("s2")
                if pair is not None and s1 is not None:
                    if kind in _LC_KINDS:
                        if int(s1) != pair[0]:
                            break
                    elif (int(s1), int(s2 if s2 is not None else s1)) != pair:
                        break
                tic = int(g["tic"])
                key = tic
                if kind == "dvs":
                    key = (tic, int(g.get("pn") or g.get("pn2")))
                r = (g.get("stamp") or "", not fn.endswith(".gz"), os.path.join(dirpath, fn))
                if key not in rank or r > rank[key]:
                    rank[key] = r
                    found[key] = Path(dirpath) / fn
                break
    if not found:
        shown = ", ".join(searched[:8]) + (f" ... ({len(searched)} folders)" if len(searched) > 8 else "")
        raise ProductError(
            root,
            f"no {kind} products for sector {sector} found. Searched folders: {shown}. "
            f"Expected file names matching {' or '.join(p.pattern for p in patterns)} "
            f"(folders such as sector-NNN/{own_folder}, sector-N/ftl-{own_folder}, "
            f"tid/sNNNN/t1/t2/t3/t4, HLSP/tess-spoc/sNNNN/target/t1/t2/t3/t4)",
        )
    return dict(sorted(found.items()))
