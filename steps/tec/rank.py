"""Runbook step 19, rank_tces.py (the Tier files): RANK, KNOWN flag, every flag and the Tier.

Brings the results of steps 5-17 together for the vetted TCEs (triage pass, at_valid, trp_valid,
insolation > 0; ``steps.tec.science.ranking`` has the rules) and writes

* ``spoc_ranking_Tier{1,2,3}_{run}.txt`` in the original columns, best RANK first, no header:
  Tier 1 ``TIC PN RANK KNOWN``; Tier 2 ``TIC PN RANK KNOWN flagbits flagnames``; Tier 3
  ``TIC PN RANK KNOWN hasSec sweetFail``;
* ``ranking.parquet`` in the run directory (and the step's dataset), one row per TCE of the run:
  tic, planet_number, tier (null when not ranked), rank, known_flag, flags, triage_reason (the
  triage failure or why the TCE was not examined; ``pass`` for ranked TCEs).

KNOWN: 1 TOI federated, -1 TOI matched but not federated, 3 TOI on the TIC at another PN,
2 known planet, 4 known planet on the TIC at another PN, 0 none.  The report PDFs of the original
rank_tces.py (its worker mode) are the ``reports`` step.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from astroflow.atomic import write_table, write_text
from astroflow.step import Step
from astroflow.units import column, schema
from steps.tec.science.federation import known_flag
from steps.tec.science.ranking import TceEvidence, min_pdc_noise, rank_score, tce_flags
from steps.tec.vetted import not_vetted_reason, triage_rows

SCHEMA = schema(
    column("tic", pa.int64(), description="TESS Input Catalog id"),
    column("planet_number", pa.int32(), description="DV planet (TCE) number"),
    column("tier", pa.int8(), description="1: no flag; 2: flags but no secondary; 3: the rest; null: not ranked"),
    column("rank", pa.float64(), "", "1 + mean of seven log10 ramps (higher: more planet-like)"),
    column("known_flag", pa.int8(), description="1 TOI federated; -1 TOI not federated; 3 TOI other PN; "
                                                "2 known planet; 4 known planet other PN"),
    column("flags", pa.list_(pa.string()), description="the ranking flags raised"),
    column("triage_reason", pa.string(), description="why the TCE is not ranked (\"pass\": ranked)"),
)
GATHER = ["tic", "planet_number", "at_valid", "trp_valid", "at_effflux", "at_rp", "mes", "tmag", "at_dur",
          "rstar", "logg", "at_period", "at_snr", "at_depth", "trp_depth", "cent_oot_offset", "cent_oot_offset_e",
          "cent_tic_offset", "cent_tic_offset_e"]
MODSHIFT = ["tic", "planet_number", "modshift_valid", "primary_good", "secondary_good", "override", "sigma_oe"]


def _by_key(rows):
    return {(r["tic"], r["planet_number"]): r for r in rows}


def _modshift(ctx, step) -> dict:
    return {k: r for k, r in _by_key(ctx.rows(step, columns=MODSHIFT)).items() if r["modshift_valid"]}


def is_ftl(ctx) -> bool:
    """FTL (200-s / 10-min) data, where the big-radius limit is 25 Re instead of 20."""
    cadence = ctx.settings.cadence
    if cadence != "auto":
        return cadence != "2min"
    factors = ctx.table("resample", columns=["factor"]).column("factor").to_pylist()
    return bool(factors) and np.median(factors) < 5


def rank(ctx) -> list[dict]:
    s = ctx.settings
    tces = sorted(ctx.rows("gather", columns=GATHER), key=lambda r: (r["tic"], r["planet_number"]))
    triage = triage_rows(ctx)
    toi = _by_key(ctx.rows("federate_toi", columns=["tic", "planet_number", "toi_matched", "toi_federated", "toi_other_pn"]))
    known = _by_key(ctx.rows("federate_known", columns=["tic", "planet_number", "known_matched", "known_other_pn"]))
    selfm = _by_key(ctx.rows("self_match", columns=["tic", "planet_number", "flagged"]))
    ms_alt, ms_dv = _modshift(ctx, "modshift_alt"), _modshift(ctx, "modshift_med")
    sweet = _by_key(ctx.rows("sweet", columns=["tic", "planet_number", "sweet_ratio"]))
    modump = _by_key(ctx.rows("modump_check", columns=["tic", "planet_number", "modump_fraction"]))
    pdc: dict = {}
    for r in ctx.rows("flux_weighted_centroids", columns=["tic", "sector", "pdc_noi"]):
        pdc.setdefault(r["tic"], {})[r["sector"]] = r["pdc_noi"]
    ftl = is_ftl(ctx)

    keys = [(r["tic"], r["planet_number"]) for r in tces]
    fed = [(toi.get(k, {}), known.get(k, {})) for k in keys]
    kflag = known_flag([t.get("toi_matched", False) for t, _ in fed], [t.get("toi_federated", False) for t, _ in fed],
                       [t.get("toi_other_pn", False) for t, _ in fed], [k.get("known_matched", False) for _, k in fed],
                       [k.get("known_other_pn", False) for _, k in fed])
    col = {c: np.array([np.nan if r[c] is None else r[c] for r in tces], float) for c in GATHER[4:]}
    score = rank_score(col["at_rp"], col["mes"], col["tmag"], col["at_dur"], col["rstar"], col["logg"],
                       col["at_period"], col["at_effflux"], col["at_snr"], col["at_depth"], col["trp_depth"])

    out = []
    for i, (r, k) in enumerate(zip(tces, keys)):
        why = not_vetted_reason(r, triage.get(k))
        row = {"tic": r["tic"], "planet_number": r["planet_number"], "tier": None, "rank": None,
               "known_flag": int(kflag[i]), "flags": [], "triage_reason": why or "pass"}
        if why is None:
            sm = selfm.get(k)
            sw = sweet.get(k)
            md = modump.get(k)
            ev = TceEvidence(
                rp=col["at_rp"][i], snr=col["at_snr"][i],
                cent_oot_offset=col["cent_oot_offset"][i], cent_oot_offset_e=col["cent_oot_offset_e"][i],
                cent_tic_offset=col["cent_tic_offset"][i], cent_tic_offset_e=col["cent_tic_offset_e"][i],
                modshift_alt=ms_alt.get(k), modshift_dv=ms_dv.get(k),
                sweet_ratio=None if sw is None or sw["sweet_ratio"] is None else sw["sweet_ratio"],
                self_match=bool(sm and sm["flagged"]),
                min_pdc_noi=min_pdc_noise(pdc.get(r["tic"], {}), s.dv_sectors[0]),
                modump_fraction=None if md is None else md["modump_fraction"], ftl=ftl)
            f = tce_flags(ev)
            row.update(tier=f.tier, rank=float(score[i]), flags=f.flags, _f=f)
        out.append(row)

    write_tier_files(ctx, out)
    rows = [{k: v for k, v in r.items() if k != "_f"} for r in out]
    write_table(ctx.product("ranking.parquet"), pa.Table.from_pylist(rows, schema=SCHEMA))
    return rows


def write_tier_files(ctx, rows: list[dict]) -> None:
    ranked = sorted((r for r in rows if r["tier"] is not None), key=lambda r: -r["rank"])
    lines = {1: [], 2: [], 3: []}
    for r in ranked:
        head = f"{r['tic']:d} {r['planet_number']:d} {r['rank']:f} {r['known_flag']:d}"
        f = r["_f"]
        if r["tier"] == 1:
            lines[1].append(head)
        elif r["tier"] == 2:
            lines[2].append(f"{head} {f.bits()} {f.text() or '-'}")
        else:
            lines[3].append(f"{head} {f.has_sec} {f.sweet_fail}")
    for tier, text in lines.items():
        write_text(ctx.product(f"spoc_ranking_Tier{tier}_{ctx.settings.name}.txt"), "".join(t + "\n" for t in text))


rank_step = Step(
    "rank",
    inputs=("gather", "flux_triage", "federate_known", "self_match", "federate_toi", "modshift_med", "sweet",
            "flux_weighted_centroids", "modump_check", "modshift_alt", "resample"),
    run=rank,
    schema=SCHEMA,
    doc=__doc__,
)

