"""Work done in other processes by the concurrency tests (importable by spawned children)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from astroflow.calib import Library


def register_many(lib: Library, folder: str, tag: str, n: int) -> list[int]:
    """Register ``n`` new bias files named after ``tag``; returns their ids."""
    ids = []
    for i in range(n):
        path = Path(folder) / f"{tag}-{i:03d}.fits"
        path.write_text(f"{tag} {i}")
        ids.append(lib.register("bias", path, datetime(2019, 1, 1, tzinfo=UTC) + timedelta(hours=i),
                                {"writer": tag, "n": i}))
    return ids
