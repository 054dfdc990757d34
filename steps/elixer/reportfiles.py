"""Which report files exist and are whole (runbook 18.4, ``find . -name "*[0-9].pdf" | wc``)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from steps.elixer.settings import REPORT_TYPES

NAME = re.compile(r"^(\d+)(_nei|_mini)?\.(png|pdf)$")
PNG_END = b"IEND\xaeB`\x82"


def kind_of(name: str) -> tuple[int, str] | None:
    """``(detectid, kind)`` of a report file name, kind in png / pdf / nei / mini; None otherwise."""
    m = NAME.match(name)
    if not m:
        return None
    suffix, ext = m.group(2), m.group(3)
    if suffix:
        return (int(m.group(1)), suffix[1:]) if ext == "png" else None
    return int(m.group(1)), ext


def is_whole(path: Path) -> bool:
    """A PNG that ends with its IEND chunk, a PDF with %%EOF in its last kilobyte."""
    try:
        size = path.stat().st_size
        if size < 64:
            return False
        with open(path, "rb") as fh:
            fh.seek(max(0, size - 1024))
            tail = fh.read()
    except OSError:
        return False
    return tail.endswith(PNG_END) if path.suffix == ".png" else b"%%EOF" in tail


def scan(folder: Path) -> dict[str, dict[int, Path]]:
    """Report files under ``folder`` (any depth), by kind then detectid."""
    out: dict[str, dict[int, Path]] = {k: {} for k in REPORT_TYPES}
    for root, _dirs, files in os.walk(folder):
        for name in files:
            k = kind_of(name)
            if k is not None:
                out[k[1]][k[0]] = Path(root) / name
    return out


def counts(expected: list[int], folder: Path, kinds: list[str]) -> list[dict]:
    """Expected versus present (and whole) reports per kind, plus the detectids missing."""
    found = scan(folder) if folder.is_dir() else {k: {} for k in REPORT_TYPES}
    rows = []
    for kind in kinds:
        have = found[kind]
        present = [d for d in expected if d in have]
        whole = [d for d in present if is_whole(have[d])]
        missing = sorted(set(expected) - set(whole))
        rows.append({"type": kind, "expected": len(expected), "present": len(present), "whole": len(whole),
                     "missing": len(missing), "missing_ids": missing[:1000]})
    return rows
