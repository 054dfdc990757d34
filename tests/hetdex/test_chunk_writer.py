"""The shot file's threaded chunk writer stores what h5py's own shuffle + deflate pipeline would."""

from __future__ import annotations

import zlib

import h5py
import numpy as np
import pytest

from steps.hetdex import h5files as L

ROW = np.dtype([("name", "S12"), ("n", "<i4"), ("spec", "<f4", (50,))])


def _rows(n, seed):
    rng = np.random.default_rng(seed)
    a = np.zeros(n, ROW)
    a["name"] = [f"fiber{i:03d}".encode() for i in range(n)]
    a["n"] = np.arange(n)
    a["spec"] = rng.normal(size=(n, 50)).astype(np.float32)
    return a


@pytest.mark.parametrize("threads", [1, 3])
def test_rows_appended_in_uneven_pieces_read_back_exactly(tmp_path, threads):
    pieces = [_rows(n, seed) for seed, n in enumerate([7, 30, 1, 23, 12])]  # 73 rows, chunks of 16
    expect = np.concatenate(pieces)
    with h5py.File(tmp_path / "direct.h5", "w") as h:
        dset = L.empty_table(h, "Fibers", ROW, 80, 16)
        with L.ChunkWriter(dset, threads=threads) as out:
            for p in pieces:
                out.append(p)
        dset.resize((len(expect),))
    with h5py.File(tmp_path / "h5py.h5", "w") as h:  # the same table through h5py's filters
        dset = L.empty_table(h, "Fibers", ROW, 80, 16)
        dset[:len(expect)] = expect
        dset.resize((len(expect),))
    with h5py.File(tmp_path / "direct.h5") as a, h5py.File(tmp_path / "h5py.h5") as b:
        got = a["Fibers"][()]
        assert a["Fibers"].compression == "gzip" and a["Fibers"].shuffle
        assert np.array_equal(got, expect) and np.array_equal(b["Fibers"][()], expect)
        # the stored chunk is the shuffled rows in a zlib stream, as h5py's filters store them
        # (ISA-L's deflate writes other bytes than zlib's: compare what they inflate to)
        mine, theirs = a["Fibers"].id.read_direct_chunk((16,))[1], b["Fibers"].id.read_direct_chunk((16,))[1]
        assert zlib.decompress(mine) == zlib.decompress(theirs)
        assert 0.8 < len(mine) / len(theirs) < 1.25


def test_a_table_without_the_filters_is_refused(tmp_path):
    with h5py.File(tmp_path / "plain.h5", "w") as h:
        dset = L.empty_table(h, "Images", ROW, 4, 1, compress=False)
        with pytest.raises(ValueError, match="shuffle and gzip"):
            L.ChunkWriter(dset)
