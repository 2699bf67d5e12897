"""Decode once: a prepared corpus materialized as 16 kHz float32 arrays in memory-mapped Arrow.

Fine-tuning reads every clip once per epoch and cross-validation once per fold and epoch; decoding and
resampling the original files each time costs more than the model on CPU. `decode_corpus` decodes every
file once into an `audio` column and keeps the other columns. The result lives in Arrow files keyed by
the prepared corpus's fingerprint (which changes with the corpus on disk and its loader), the sampling
rate and the crop length, so a change to any of them builds a new cache and nothing else does.

The work is done in shards, each its own cache file: an interrupted run keeps the finished shards and
the next call decodes only the rest. A read-only cache folder is refused before decoding starts, and a
disk that fills while decoding stops with "no space left" and the folder, never a traceback.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import datasets
import numpy as np

from voc2vec.audio import TARGET_SAMPLING_RATE, load_audio
from voc2vec.errors import check_writable_dir, os_error_to_user_error

CACHE_FORMAT_VERSION = "1"  # bump when the stored layout changes
DEFAULT_CACHE_DIR = Path(os.environ.get("VOC2VEC_CACHE", Path.home() / ".cache" / "voc2vec")) / "decoded"
CLIPS_PER_SHARD = 1000


def _decode_batch(batch: dict, sampling_rate: int, max_duration: float | None) -> dict:
    batch["audio"] = [load_audio(path, sampling_rate, duration=max_duration) for path in batch["path"]]
    return batch


def cache_key(dataset: datasets.Dataset, sampling_rate: int, max_duration: float | None) -> str:
    """What the decoded arrays depend on: the prepared rows, the rate, the crop, the storage layout."""
    text = f"{dataset._fingerprint}|{sampling_rate}|{max_duration}|{CACHE_FORMAT_VERSION}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def decode_corpus(
    dataset: datasets.Dataset,
    sampling_rate: int = TARGET_SAMPLING_RATE,
    max_duration: float | None = None,
    cache_dir: str | os.PathLike | None = None,
    num_proc: int | None = None,
) -> datasets.Dataset:
    """Add an `audio` column (float32 mono at `sampling_rate`, the first `max_duration` seconds if given).

    Reads come back memory-mapped; with `.with_format("numpy")` each row's audio is a numpy array.
    `cache_dir` defaults to `$VOC2VEC_CACHE/decoded` (`~/.cache/voc2vec/decoded`).
    """
    key = cache_key(dataset, sampling_rate, max_duration)
    # Named as the user set it: the cache_dir argument, or the VOC2VEC_CACHE folder the default lives in.
    root = check_writable_dir(cache_dir or DEFAULT_CACHE_DIR, "cache_dir" if cache_dir else "VOC2VEC_CACHE")
    folder = root / key
    folder.mkdir(parents=True, exist_ok=True)
    features = datasets.Features({**dataset.features, "audio": datasets.Sequence(datasets.Value("float32"))})
    num_shards = max(1, -(-len(dataset) // CLIPS_PER_SHARD))
    shards = []
    for index in range(num_shards):
        shard = dataset.shard(num_shards, index, contiguous=True)
        # An explicit cache file and fingerprint per shard: finished shards are found again by name.
        try:
            decoded = shard.map(
                _decode_batch,
                batched=True,
                batch_size=16,
                fn_kwargs={"sampling_rate": sampling_rate, "max_duration": max_duration},
                features=features,
                cache_file_name=str(folder / f"shard-{index:05d}-of-{num_shards:05d}.arrow"),
                new_fingerprint=f"{key}-{index}-{num_shards}",
                num_proc=num_proc,
                desc=f"Decoding audio to {sampling_rate} Hz (shard {index + 1}/{num_shards})",
            )
        except OSError as error:
            converted = os_error_to_user_error(error, root)
            if converted is None:
                raise
            raise converted from error  # the finished shards stay: a rerun after freeing space decodes the rest
        shards.append(decoded)
    return datasets.concatenate_datasets(shards) if len(shards) > 1 else shards[0]


def crop_or_pad(audio: np.ndarray, length: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """Exactly `length` samples: a random window of a longer clip (`rng` given) or its start, zero-padded if short."""
    if len(audio) > length:
        start = int(rng.integers(0, len(audio) - length + 1)) if rng is not None else 0
        return audio[start : start + length]
    return np.pad(audio, (0, length - len(audio)))
