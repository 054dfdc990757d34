"""`astroflow step` in a pod leaves the unit's failed items and items per second where the
template's output parameters read them (the step's Prometheus metrics)."""

from __future__ import annotations

from astroflow import cli


def test_the_unit_summary_is_written_only_where_the_pod_asks(tmp_path, monkeypatch):
    manifest = {"ok": ["a", "b", "c"], "failed": ["d"], "skipped": [], "wall_s": 2.0}
    monkeypatch.delenv(cli.UNIT_SUMMARY_ENV, raising=False)
    cli._write_unit_summary(manifest)
    assert not any(tmp_path.iterdir())
    monkeypatch.setenv(cli.UNIT_SUMMARY_ENV, str(tmp_path / "unit"))
    cli._write_unit_summary(manifest)
    assert (tmp_path / "unit" / "items_failed").read_text().strip() == "1"
    assert float((tmp_path / "unit" / "items_per_second").read_text()) == 2.0
    cli._write_unit_summary({**manifest, "wall_s": 0.0})
    assert float((tmp_path / "unit" / "items_per_second").read_text()) == 0.0


def test_the_template_reads_the_files_the_cli_writes():
    argo = __import__("pytest").importorskip("astroflow.argo")
    assert argo.UNIT_SUMMARY_ENV == cli.UNIT_SUMMARY_ENV
    assert {f for f, *_ in argo.UNIT_FIGURES.values()} == {"items_failed", "items_per_second"}
