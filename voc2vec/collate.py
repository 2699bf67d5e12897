"""Clips of a decoded corpus as model inputs, and batches in which no clip depends on its batch mates.

`AudioClips` reads the memory-mapped `audio` column written once by `voc2vec.cache.decode_corpus`, so no epoch
ever opens the original files. Training takes a random window of `max_duration` seconds from longer clips (a
new window every epoch: cheap augmentation); evaluation takes the start, so scores are deterministic.

`AudioCollator` runs the model's feature extractor on **each clip alone** (as fairseq normalizes each clip, and as
a user calls a Hub model on one recording), and only then pads the batch to its longest clip. Padding a batch first
and normalizing after (what `feature_extractor(list_of_clips, padding=True)` does for models without an attention
mask) lets the zeros enter every clip's mean and variance: a 1 s clip batched with a 7 s clip came out with
std 2.65 instead of 1. The attention mask is passed only to models trained with one
(`feature_extractor.return_attention_mask`: wav2vec 2.0 base and HuBERT base were trained on zero-padded batches
without a mask and get worse with one); the heads of voc2vec get each clip's true length (`input_lengths`)
separately, so they pool over true frames whatever the encoder is given.

Training batches need not pad at all: with `crop_to_shortest` every clip of a batch becomes a random window as long
as the batch's shortest clip, and `LengthGroupedBatchSampler` puts clips of similar length together so that little
audio is dropped (fine-tuning does this for models that cannot pad exactly: see `voc2vec.finetune`).

Spectrogram feature extractors (Whisper's log-mel, AST's filter banks, wav2vec 2.0-BERT's stacked filter banks)
work the same way: each clip is turned into its features alone, then the batch is padded along the time axis (a
no-op for Whisper and AST, whose extractors already pad every clip to the model's fixed input). `input_lengths`
then counts each clip's true feature frames (from the extractor's frame mask where it gives one), so heads and
pooled embeddings can leave Whisper's padding to 30 s out of their means.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import datasets
import numpy as np
import torch

from voc2vec.cache import crop_or_pad


class AudioClips(torch.utils.data.Dataset):
    """Rows `indices` of a decoded corpus: `{"input_values": float32 array, "labels": class id or float targets}`.

    Args:
        decoded: a dataset with an `audio` column (from `decode_corpus`).
        targets: one label per row of `decoded` (class ids, or a `(rows, targets)` float array); None for
            unlabelled clips (inference).
        indices: the rows this split uses.
        max_samples: crop clips to this many samples (None: whole clips).
        random_crop: a random window (training) instead of the start (evaluation).
        pad_to_max: zero-pad short clips to `max_samples` too (the seed's fixed-length clips, padded *before*
            normalization as the seed did).
    """

    def __init__(
        self,
        decoded: datasets.Dataset,
        targets: np.ndarray | None,
        indices: Sequence[int],
        max_samples: int | None = None,
        random_crop: bool = False,
        pad_to_max: bool = False,
    ):
        self.audio = decoded.select_columns(["audio"]).with_format("numpy")
        self.targets = targets
        self.indices = np.asarray(indices, dtype=np.int64)
        self.max_samples = max_samples
        self.random_crop = random_crop
        self.pad_to_max = pad_to_max and max_samples is not None

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int) -> dict:
        row = int(self.indices[position])
        audio = self.audio[row]["audio"]
        if self.max_samples is not None and len(audio) > self.max_samples:
            # torch's generator, which Trainer seeds: the same seed gives the same windows. randint's upper bound
            # is exclusive, so `+ 1` lets the window end at the clip's last sample.
            start = int(torch.randint(0, len(audio) - self.max_samples + 1, ())) if self.random_crop else 0
            audio = audio[start : start + self.max_samples]
        if self.pad_to_max:
            audio = crop_or_pad(audio, self.max_samples)
        item = {"input_values": audio}
        if self.targets is not None:
            item["labels"] = self.targets[row]
        return item

    def lengths(self) -> np.ndarray:
        """Samples of each item as `__getitem__` returns it at evaluation (start crop, optional padding)."""
        lengths = np.asarray([len(self.audio[int(row)]["audio"]) for row in self.indices], dtype=np.int64)
        if self.max_samples is not None:
            lengths = np.full_like(lengths, self.max_samples) if self.pad_to_max else np.minimum(lengths, self.max_samples)
        return lengths


@dataclass
class ClipFeatures:
    """One clip's model input: `name` ("input_values" or "input_features"), the array, the axis of `array` that is
    time, and the clip's true length along it (samples, or feature frames for spectrograms)."""

    name: str
    array: np.ndarray
    time_axis: int
    length: int


def is_spectrogram_extractor(feature_extractor) -> bool:
    """Feature extractors that turn audio into frames of features (Whisper, AST, wav2vec 2.0-BERT, ...) rather than
    normalizing the waveform."""
    return feature_extractor.model_input_names[0] == "input_features" or hasattr(feature_extractor, "num_mel_bins")


def clip_features(feature_extractor, audio: np.ndarray) -> ClipFeatures:
    """The model's input for one clip, computed alone (waveforms normalized on this clip's own statistics)."""
    audio = np.asarray(audio, dtype=np.float32)
    spectrogram = is_spectrogram_extractor(feature_extractor)
    options = {"return_attention_mask": True} if spectrogram else {}
    features = feature_extractor(audio, sampling_rate=feature_extractor.sampling_rate, return_tensors="np", **options)
    name = feature_extractor.model_input_names[0]
    array = np.asarray(features[name][0], dtype=np.float32)
    if array.ndim == 1:
        return ClipFeatures(name, array, 0, len(array))
    mask = features.get("attention_mask")
    if mask is not None:
        frames = np.asarray(mask[0])
        # The time axis is the one the frame mask runs along (Whisper: (mel, frames); others: (frames, features)).
        time_axis = array.ndim - 1 if array.shape[-1] == len(frames) else 0
        return ClipFeatures(name, array, time_axis, max(1, int(frames.sum())))
    time_axis = 0  # (frames, mel bins): AST and the Kaldi-style extractors
    return ClipFeatures(name, array, time_axis, min(array.shape[time_axis], kaldi_frames(feature_extractor, len(audio))))


def kaldi_frames(feature_extractor, num_samples: int) -> int:
    """Frames of a Kaldi filter bank (25 ms windows every 10 ms, no frame past the last sample) of `num_samples`: the
    true frames of a clip that AST's extractor zero-pads to its fixed `max_length` without returning a mask."""
    window, shift = int(0.025 * feature_extractor.sampling_rate), int(0.010 * feature_extractor.sampling_rate)
    return max(1, 1 + (num_samples - window) // shift)


def featurize_clip(feature_extractor, audio: np.ndarray) -> tuple[str, np.ndarray]:
    """The model's input for one clip, computed alone: `("input_values", waveform)` for waveform models
    (normalized on this clip's own statistics), `("input_features", spectrogram)` for Whisper-like models."""
    features = clip_features(feature_extractor, audio)
    return features.name, features.array


def pad_along(arrays: list[np.ndarray], axis: int, length: int, value: float) -> np.ndarray:
    """Stack `arrays`, each zero- (or `value`-) padded to `length` along `axis`."""
    shape = list(arrays[0].shape)
    shape[axis] = length
    padded = np.full((len(arrays), *shape), value, dtype=np.float32)
    for index, array in enumerate(arrays):
        window = [slice(None)] * array.ndim
        window[axis] = slice(0, array.shape[axis])
        padded[(index, *window)] = array
    return padded


def padding_counts(batch: dict, fixed_size: bool = False) -> tuple[int, int]:
    """`(true, padded)` samples (or feature frames) of a batch collated with `input_lengths`, for the padded share of
    the training audio. The collator pads to the longest clip; `fixed_size`: the extractor already padded every
    clip to the model's fixed input (Whisper, AST: `voc2vec.prediction.fixed_size_features`), whose time axis is
    then the longest one."""
    lengths = batch["input_lengths"]
    values = batch["input_values"] if "input_values" in batch else batch["input_features"]
    time_size = max(values.shape[1:]) if fixed_size else int(lengths.max())
    true = int(lengths.sum())
    return true, time_size * len(lengths) - true


def crop_to_shortest(items: list[dict], multiple: int = 1) -> tuple[list[dict], np.ndarray]:
    """Every clip cut to a random window as long as the batch's shortest clip, rounded down to a `multiple` of samples
    (torch's generator: the Trainer seeds it); returns the new items and the samples each clip lost."""
    shortest = min(len(item["input_values"]) for item in items)
    if shortest >= multiple:
        shortest -= shortest % multiple
    cropped, dropped = [], []
    for item in items:
        audio = item["input_values"]
        # Drawn only where there is a choice, so batches of equal-length clips leave the random stream as it was.
        start = int(torch.randint(0, len(audio) - shortest + 1, ())) if len(audio) > shortest else 0  # + 1: up to the last sample
        cropped.append({**item, "input_values": audio[start : start + shortest]})
        dropped.append(len(audio) - shortest)
    return cropped, np.asarray(dropped, dtype=np.int64)


def length_grouped_batches(
    lengths: np.ndarray, batch_size: int, group_batches: int, rng: np.random.Generator, accumulation: int = 1
) -> list[list[int]]:
    """One epoch of training batches of clips of similar length, whose membership still changes every epoch.

    The positions are shuffled and cut into groups of `group_batches` updates (`batch_size * accumulation` clips
    each); each group is sorted by length and cut into updates, the order of all updates is shuffled, and each
    update is cut into its `accumulation` batches. Padding (or cropping to a batch's shortest clip) then costs little,
    which clips meet is new each epoch, and an update holds the same clips however it is split into accumulation
    steps. `group_batches=0`: plain random batches.
    """
    order = rng.permutation(len(lengths))
    update = batch_size * accumulation
    if group_batches <= 0:
        updates = [order[start : start + update] for start in range(0, len(order), update)]
    else:
        updates = []
        for start in range(0, len(order), group_batches * update):
            members = order[start : start + group_batches * update]
            members = members[np.argsort(lengths[members], kind="stable")]
            updates += [members[offset : offset + update] for offset in range(0, len(members), update)]
        rng.shuffle(updates)
    return [members[offset : offset + batch_size].tolist() for members in updates for offset in range(0, len(members), batch_size)]


class LengthGroupedBatchSampler:
    """`length_grouped_batches` as a DataLoader batch sampler: a new draw every epoch, a function of (seed, epoch)."""

    def __init__(self, lengths: Sequence[int], batch_size: int, group_batches: int, seed: int, accumulation: int = 1):
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.group_batches = group_batches
        self.accumulation = accumulation
        self.seed = seed
        self.epoch = 0

    def batches(self) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        return length_grouped_batches(self.lengths, self.batch_size, self.group_batches, rng, self.accumulation)

    def __iter__(self):
        batches = self.batches()
        self.epoch += 1  # the next pass (epoch) draws anew
        return iter(batches)

    def __len__(self) -> int:
        return len(self.batches())  # cheap: one permutation and a sort per group


def uses_attention_mask(feature_extractor) -> bool:
    """Whether the model was trained with attention masks (its feature extractor returns them)."""
    return bool(getattr(feature_extractor, "return_attention_mask", False))


class AudioCollator:
    """Featurize each clip alone, then pad the batch to its longest clip (see the module docstring).

    Args:
        feature_extractor: the model's feature extractor.
        pass_attention_mask: give the model an `attention_mask` (default: only if its feature extractor returns
            one, i.e. the model was trained with masks).
        return_input_lengths: add `input_lengths` (true samples per clip; true feature frames for spectrogram
            models) for heads that pool over true frames (`voc2vec.heads.AudioModelWithLSTMHead`) and for pooled
            embeddings; the plain transformers heads do not take it.
        crop_to_shortest: training batches without padding: every clip of a batch becomes a random window as long as
            its shortest clip (torch's generator, which the Trainer seeds), rounded down to a multiple of 0.1 s, and
            the batch says how many samples that dropped (`cropped_samples`, per clip; `FineTuningTrainer` logs the
            share and takes it out of the inputs). The rounding keeps the batches to a few shapes: each new input
            shape costs the CPU's convolution kernels (oneDNN) a fresh setup, and a tiny model's training steps took
            72 ms on lengths drawn anew each step against 48 ms on lengths on a 0.1 s grid (59 ms at one fixed length).
    """

    def __init__(self, feature_extractor, pass_attention_mask: bool | None = None, return_input_lengths: bool = False,
                 crop_to_shortest: bool = False):
        self.feature_extractor = feature_extractor
        self.pass_attention_mask = uses_attention_mask(feature_extractor) if pass_attention_mask is None else pass_attention_mask
        self.return_input_lengths = return_input_lengths
        self.crop_to_shortest = crop_to_shortest
        self.crop_multiple = max(1, int(getattr(feature_extractor, "sampling_rate", 16000)) // 10)  # 0.1 s
        self.padding_value = float(getattr(feature_extractor, "padding_value", 0.0))
        # Audio actually seen vs padding added, summed until `reset_padding_counts`: training logs the padded share.
        self.true_samples = 0
        self.padded_samples = 0

    def __call__(self, items: list[dict]) -> dict[str, torch.Tensor]:
        cropped = None
        if self.crop_to_shortest:
            items, cropped = crop_to_shortest(items, self.crop_multiple)
        featurized = [clip_features(self.feature_extractor, item["input_values"]) for item in items]
        name, time_axis = featurized[0].name, featurized[0].time_axis
        lengths = np.asarray([features.length for features in featurized], dtype=np.int64)
        longest = max(features.array.shape[time_axis] for features in featurized)
        batch = {name: torch.from_numpy(pad_along([features.array for features in featurized], time_axis, longest, self.padding_value))}
        self.true_samples += int(lengths.sum())
        self.padded_samples += int(longest * len(lengths) - lengths.sum())
        if self.pass_attention_mask:
            batch["attention_mask"] = torch.from_numpy((np.arange(longest)[None, :] < lengths[:, None]).astype(np.int64))
        if self.return_input_lengths:
            batch["input_lengths"] = torch.from_numpy(lengths)
        if cropped is not None:
            batch["cropped_samples"] = torch.from_numpy(cropped)
        if "labels" in items[0]:
            labels = np.stack([np.asarray(item["labels"]) for item in items])
            batch["labels"] = torch.from_numpy(labels.astype(np.float32) if labels.dtype.kind == "f" else labels.astype(np.int64))
        return batch

    @property
    def padded_share(self) -> float:
        total = self.true_samples + self.padded_samples
        return self.padded_samples / total if total else 0.0

    def reset_padding_counts(self) -> None:
        self.true_samples = self.padded_samples = 0
