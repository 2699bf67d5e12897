"""Where pretraining audio comes from: a named corpus, a folder of files, or Parquet shards of a mixture.

All three become a `datasets.Dataset` with an audio column (a path, encoded bytes, or samples) and a
`duration` column in seconds, which is all the batch sampler needs. `decode_audio_value` is the one place
that turns a cell of the audio column into samples, so a new storage format plugs in there.
"""

from __future__ import annotations

import glob
import io
import os
from collections.abc import Sequence
from pathlib import Path

import datasets
import numpy as np
import soundfile
import torch

from voc2vec.audio import (
    TARGET_SAMPLING_RATE,
    audio_info,
    decode_audio_bytes,
    load_audio,
)
from voc2vec.errors import UserError


def decode_audio_value(value, sampling_rate: int = TARGET_SAMPLING_RATE) -> np.ndarray:
    """One cell of an audio column to float32 mono samples at `sampling_rate`.

    Accepts a file path, encoded bytes (FLAC, WAV, ...: anything libsndfile reads), a `{"bytes", "path"}`
    dict as written by datasets' `Audio` feature, or samples (float in [-1, 1], or int16 PCM) that are
    already at `sampling_rate`.
    """
    if isinstance(value, dict):
        value = value.get("bytes") or value.get("path") or value.get("array")
    if isinstance(value, (str, os.PathLike)):
        return load_audio(value, sampling_rate)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return decode_audio_bytes(value, sampling_rate)
    samples = np.asarray(value)
    if samples.dtype == np.int16:
        return samples.astype(np.float32) / 32768.0
    return samples.astype(np.float32, copy=False)


def audio_value_duration(value, sampling_rate: int = TARGET_SAMPLING_RATE) -> float:
    """Seconds of audio in one cell, read from the header where there is one."""
    if isinstance(value, dict):
        value = value.get("bytes") or value.get("path") or value.get("array")
    if isinstance(value, (str, os.PathLike)):
        return audio_info(value).duration
    if isinstance(value, (bytes, bytearray, memoryview)):
        info = soundfile.info(io.BytesIO(bytes(value)))
        return info.frames / info.samplerate
    return len(value) / sampling_rate


def normalize_audio(audio: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per clip: what `Wav2Vec2FeatureExtractor(do_normalize=True)` does."""
    return (audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)


def load_pretraining_dataset(
    dataset_name: str | None = None,
    data_dir: str | None = None,
    train_files: list[str] | None = None,
    audio_column: str | None = None,
    cache_dir: str | None = None,
) -> tuple[datasets.Dataset, str]:
    """The training audio as a Dataset with a `duration` column, and the name of its audio column.

    `dataset_name` is a corpus known to `voc2vec.corpora.load_corpus` (with `data_dir` as its files);
    `data_dir` alone is a folder searched recursively for audio files; `train_files` are Parquet shards
    with an `audio` column, or a Voc125 mixture folder (see `resolve_train_files`).
    """
    if dataset_name:
        from voc2vec.corpora import load_corpus

        dataset = load_corpus(dataset_name, data_dir=data_dir, cache_dir=cache_dir)
        if isinstance(dataset, datasets.DatasetDict):  # self-supervision uses every split's audio
            dataset = datasets.concatenate_datasets(list(dataset.values()))
        audio_column = audio_column or "path"
    elif train_files:
        files = resolve_train_files(train_files)
        dataset = datasets.load_dataset("parquet", data_files=files, split="train", cache_dir=cache_dir)
        audio_column = audio_column or "audio"
    elif data_dir:
        from voc2vec.builder import find_audio_files

        paths = [os.fspath(path) for path in find_audio_files(Path(data_dir))]
        if not paths:
            raise UserError("no audio files in the folder", where=f"--data_dir {data_dir}",
                            fix="point --data_dir at a folder of wav/flac/ogg/mp3 files")
        dataset = datasets.Dataset.from_dict({"path": paths})
        audio_column = audio_column or "path"
    else:
        raise UserError("no training audio given", fix="give --dataset_name, --data_dir or --train_files")
    if audio_column not in dataset.column_names:
        raise UserError(f"audio column {audio_column!r} is not one of the dataset's columns {dataset.column_names}",
                        where="--audio_column", fix="name the column that holds the audio")
    if "duration" not in dataset.column_names:
        dataset = dataset.map(
            lambda batch: {"duration": [audio_value_duration(value) for value in batch[audio_column]]},
            batched=True,
            desc="reading durations",
        )
    return dataset, audio_column


def resolve_train_files(train_files: Sequence[str]) -> list[str]:
    """The Parquet files that `train_files` names, in order.

    Each entry may use ~ and $VARIABLES (as configs/voc125.yaml does). A folder is a Voc125 mixture as
    `python -m voc2vec.mixture prepare` writes it: its shards are the ones its voc125.json lists, so an
    unfinished `prepare` is an error rather than part of a mixture. Anything else is a path or a glob.
    """
    from voc2vec.mixture import shard_files

    files = []
    for entry in train_files:
        pattern = os.path.expandvars(os.path.expanduser(entry))
        if "$" in pattern:
            raise UserError(f"train_files entry {entry!r} uses an environment variable that is not set ({pattern!r})",
                            where="--train_files", fix="set the variable (e.g. export VOC2VEC_DATA=...) or give the path")
        if os.path.isdir(pattern):
            try:
                files += shard_files(pattern)
            except FileNotFoundError as error:  # no manifest: `prepare` unfinished or never run there
                raise UserError(str(error).rstrip("."), where="--train_files",
                                fix=f"run `python -m voc2vec.mixture prepare` into {pattern} to completion") from error
            continue
        matches = sorted(glob.glob(pattern))
        if not matches:
            raise UserError(f"train_files entry {entry!r} matches no file ({pattern!r})", where="--train_files",
                            fix="check the path or glob")
        files += matches
    return files


class AudioClipDataset(torch.utils.data.Dataset):
    """Decodes one clip of the audio column, whole, with its per-clip frame targets when there are any.

    Keys are `(clip_index, batch_number)` from `DurationBucketBatchSampler`; both travel with the clip so that
    the collator can crop it at a position seeded by them (reproducible after a resume and in any worker).
    Cropping and normalization happen in the collator, once the batch's common length is known.
    """

    def __init__(self, dataset: datasets.Dataset, audio_column: str, frame_labels: Sequence[np.ndarray] | None = None):
        self.audio = dataset.select_columns([audio_column])
        self.audio_column = audio_column
        self.frame_labels = frame_labels

    def __len__(self) -> int:
        return len(self.audio)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        return self._example(self.audio[key[0]][self.audio_column], key)

    def __getitems__(self, keys: list[tuple[int, int]]) -> list[dict]:
        """A whole batch's clips from one Arrow read (the DataLoader calls this with the batch sampler's keys)."""
        cells = self.audio[[clip_index for clip_index, _ in keys]][self.audio_column]
        return [self._example(cell, key) for cell, key in zip(cells, keys)]

    def _example(self, cell, key: tuple[int, int]) -> dict:
        clip_index, batch_number = key
        example = {"audio": decode_audio_value(cell), "clip_index": clip_index, "batch_number": batch_number}
        if self.frame_labels is not None:
            example["labels"] = self.frame_labels[clip_index]
        return example
