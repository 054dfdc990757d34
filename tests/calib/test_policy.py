"""The selection rules on plain values (no database): policy declarations, the words of a
choice, and a NoCalibration that survives a trip between processes."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta

import pytest

from astroflow.calib import Calibration, CalibType, NoCalibration, Provenance, choose
from astroflow.calib.policy import canonical, span

T0 = datetime(2019, 1, 5, 3, 0, tzinfo=UTC)


def cal(id: int, days: float, **kw) -> Calibration:
    fields = dict(type="arc", path=f"/lib/arc{id}.fits", dateobs=T0 + timedelta(days=days), attributes={"fiber": 1},
                  created=T0, checksum="0" * 64, is_master=True, is_bad=False, bad_reason=None, good_after=None,
                  good_until=None, frames=(), provenance=Provenance())
    fields.update(kw)
    return Calibration(id=id, **fields)


def test_policies_are_checked_when_declared():
    with pytest.raises(ValueError, match="select"):
        CalibType("arc", select="latest")
    with pytest.raises(ValueError, match="lookback_days"):
        CalibType("arc", lookback_days=0)
    with pytest.raises(ValueError, match="fallback needs"):
        CalibType("arc", fallback=True)
    arc = CalibType("arc", match=["fiber"], select="before", lookback_days=2.5, fallback=True, masters_only=False)
    assert arc.match == ("fiber",) and CalibType.from_record(arc.as_record()) == arc
    assert arc.describe() == "only before the observation, look-back 2.5 d, fallback, single frames too"


def test_words():
    assert span(timedelta(days=1.25)) == "1.2 d" and span(timedelta(hours=-3.5)) == "3.5 h"
    assert span(timedelta(minutes=12)) == "12 min"
    assert canonical("086") == "086" and canonical(86) == "86" and canonical(True) == "true"


def test_choose_is_pure_and_orders_its_rejections():
    arc = CalibType("arc", match=("fiber",), lookback_days=1)
    choice = choose(arc, T0, {"fiber": 1, "extra": "ignored"}, [cal(1, -0.5), cal(2, 0.25), cal(3, -3)])
    assert choice.record.id == 2 and choice.reason == "nearest in time, 6.0 h after; matching fiber=1"
    assert [(c.id, why) for c, why in choice.rejected] == [
        (1, "farther in time: 12.0 h before (chosen: 6.0 h after)"),
        (3, "older than the look-back of 1 d (3.0 d before)")]
    assert choice.attributes == {"fiber": 1} and choice.as_record()["at"] == "2019-01-05T03:00:00+00:00"


def test_no_calibration_crosses_processes():
    with pytest.raises(NoCalibration) as caught:
        choose(CalibType("arc", match=("fiber",)), T0, {"fiber": 2}, [cal(1, -1)])
    copy = pickle.loads(pickle.dumps(caught.value))
    assert str(copy) == str(caught.value) and "wrong fiber=1 (wanted 2)" in str(copy)
    assert [(c.id, why) for c, why in copy.rejected] == [(1, "wrong fiber=1 (wanted 2)")]
