"""An on-disk cache of per-clip feature arrays: computed once per identity, read by every fold, head and layer.

The identity is a JSON-able dict naming everything the features depend on (the feature source and its revision,
the corpus's fingerprint, the crop, the pooling, the storage format); its hash names the folder. Rows are computed
in shards, each written through a temporary name and renamed, so an interrupted pass keeps its finished shards
and the next one computes only the rest. `meta.json` (written last) says what the folder holds.

    <cache root>/features/<hash>/meta.json
    <cache root>/features/<hash>/rows-000000-000256.npy   (rows, layers, dim) float32
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from voc2vec.cache import DEFAULT_CACHE_DIR
from voc2vec.errors import check_writable_dir, os_error_to_user_error

FEATURE_CACHE_FORMAT = "1"  # bump when the stored layout changes
ROWS_PER_SHARD = 256


def feature_cache_root(corpus_cache_dir: str | os.PathLike | None) -> Path:
    """`<--corpus_cache_dir>/features`, or `$VOC2VEC_CACHE/features` (beside the decoded audio)."""
    if corpus_cache_dir:
        return check_writable_dir(Path(corpus_cache_dir) / "features", "--corpus_cache_dir")
    return check_writable_dir(DEFAULT_CACHE_DIR.parent / "features", "VOC2VEC_CACHE")


class FeatureCache:
    """The features of one identity (see the module docstring)."""

    def __init__(self, root: str | os.PathLike, identity: dict):
        self.identity = {**identity, "format": FEATURE_CACHE_FORMAT}
        text = json.dumps(self.identity, sort_keys=True, default=str)
        self.key = hashlib.sha256(text.encode()).hexdigest()[:16]
        self.folder = Path(root) / self.key

    def shard_path(self, start: int, end: int) -> Path:
        return self.folder / f"rows-{start:06d}-{end:06d}.npy"

    def is_complete(self, num_rows: int) -> bool:
        return all(self.shard_path(start, end).is_file() for start, end in shard_bounds(num_rows))

    def load_or_compute(
        self,
        num_rows: int,
        compute: Callable[[np.ndarray], np.ndarray],
        progress: Callable[[int], None] | None = None,
    ) -> tuple[np.ndarray, int]:
        """`(features of rows 0..num_rows-1, rows computed now)`: shards on disk are read, missing ones computed by
        `compute(rows) -> (len(rows), layers, dim)` and written."""
        computed = 0
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            shards = []
            for start, end in shard_bounds(num_rows):
                path = self.shard_path(start, end)
                if not path.is_file():
                    values = np.ascontiguousarray(compute(np.arange(start, end)), dtype=np.float32)
                    if values.ndim != 3 or len(values) != end - start:
                        raise ValueError(f"features of rows {start}..{end} have shape {values.shape}, expected ({end - start}, layers, dim).")
                    write_array(path, values)
                    computed += end - start
                    if progress is not None:
                        progress(end - start)
                shards.append(np.load(path, mmap_mode="r"))
            features = np.concatenate(shards) if shards else np.zeros((0, 1, 1), dtype=np.float32)
            if computed:
                meta = {**self.identity, "num_rows": num_rows, "shape": list(features.shape)}
                temporary = self.folder / "meta.json.tmp"
                temporary.write_text(json.dumps(meta, indent=2, default=str))
                temporary.replace(self.folder / "meta.json")
        except OSError as error:
            converted = os_error_to_user_error(error, self.folder)
            if converted is None:
                raise
            raise converted from error  # finished shards stay: a rerun after freeing space computes the rest
        return features, computed


def shard_bounds(num_rows: int) -> list[tuple[int, int]]:
    return [(start, min(start + ROWS_PER_SHARD, num_rows)) for start in range(0, num_rows, ROWS_PER_SHARD)]


def write_array(path: Path, values: np.ndarray) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as file:
        np.save(file, values)
    temporary.replace(path)
