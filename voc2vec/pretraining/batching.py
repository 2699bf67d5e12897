"""Batches by total audio seconds from length-grouped buckets, and the collator that crops and masks them.

Random batches of clips from 0.5 s to 10 s spend much of their compute on padding. Here clips of similar
length go together (quantile buckets of duration, shuffled within a bucket), batches are filled up to a
budget of audio seconds, so a batch of short clips holds more of them, and the order of batches is
shuffled. By default no padding enters a batch at all, as in fairseq (`RawAudioDataset(pad=False)`): every
clip is cropped to the shortest clip of its batch, at a random offset on the 20 ms frame grid, so no zero
ever reaches group norm, attention, the masks or the negatives. Padding to the longest clip (with an attention
mask for the layer-norm models that take one) stays available.

Everything is a function of (seed, epoch), and a batch's position in the stream is its number: resuming at
batch N rebuilds exactly the batches that followed, crops and masks included.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from voc2vec.errors import UserError
from voc2vec.pretraining.data import normalize_audio
from voc2vec.pretraining.masking import (
    compute_span_mask,
    conv_output_lengths,
    sample_negatives,
)

# Frames of wav2vec 2.0 / HuBERT advance by 320 samples (20 ms); crops start on a frame boundary so that
# precomputed frame targets (HuBERT k-means labels) stay aligned with the cropped audio.
SAMPLES_PER_FRAME = 320
# Seconds a batch would hold cropped to its shortest clip, its clips' audio (each limited to the maximum crop), and
# the input it would hold padded to its longest: summed over a logging interval, `length_shares` of the batches.
LENGTH_TOTALS = ("cropped_seconds", "clip_seconds", "padded_seconds")


def bucketed_batches(
    durations: np.ndarray,
    max_batch_seconds: float,
    num_buckets: int,
    rng: np.random.Generator,
    crop_to_shortest: bool = True,
) -> list[np.ndarray]:
    """One epoch of batches: indices grouped by duration bucket, each batch at most `max_batch_seconds` of input.

    The input a batch costs is its number of clips times the length they take in it: the shortest clip's when
    clips are cropped to it, the longest's when they are padded to it. A clip longer than the budget forms a
    batch on its own (it is cropped later anyway).
    """
    edges = np.quantile(durations, np.linspace(0, 1, num_buckets + 1)[1:-1]) if num_buckets > 1 else []
    bucket = np.searchsorted(edges, durations, side="right")
    # Sort by bucket, then by duration inside the bucket with random tie-breaking: near-equal lengths share
    # a batch, and batch membership changes from epoch to epoch.
    jitter = rng.random(len(durations))
    order = np.lexsort((jitter, np.round(durations, 1), bucket))
    equalize = min if crop_to_shortest else max
    batches, current, length = [], [], 0.0
    for index in order:
        length_if_added = equalize(length, durations[index]) if current else durations[index]
        if current and length_if_added * (len(current) + 1) > max_batch_seconds:
            batches.append(np.array(current))
            current, length_if_added = [], durations[index]
        current.append(index)
        length = length_if_added
    if current:
        batches.append(np.array(current))
    rng.shuffle(batches)
    return batches


def length_shares(cropped_seconds, clip_seconds, padded_seconds) -> dict:
    """What equalizing clip lengths costs, either way, from totals over batches: the share of the clips' audio
    (`clip_seconds`) that cropping every clip to its batch's shortest drops (`cropped_seconds` kept), and the share
    of the input that padding to the longest fills with zeros (`padded_seconds` of input). Floats or tensors."""
    return {"dropped_by_cropping": 1 - cropped_seconds / clip_seconds, "padding_share": 1 - clip_seconds / padded_seconds}


def batch_length_shares(durations: np.ndarray, batches: Sequence[np.ndarray]) -> dict[str, float]:
    """`length_shares` of these batches of clips of `durations` seconds (before training: the epoch's plan)."""
    cropped = sum(len(batch) * durations[batch].min() for batch in batches)
    padded = sum(len(batch) * durations[batch].max() for batch in batches)
    audio = float(sum(durations[batch].sum() for batch in batches))
    return length_shares(cropped, audio, padded)


class DurationBucketBatchSampler:
    """An endless, resumable stream of this process's batches, as lists of `(clip_index, batch_number)` keys.

    Every process builds the same global epoch and takes every `num_processes`-th batch, truncated so that
    all processes see the same number of batches per epoch. `start_batch` is how many batches this process
    has already consumed (the data position saved in checkpoints). The batch number travels with each key
    so the dataset and collator can seed their crops and masks from it.
    """

    def __init__(
        self,
        durations: Sequence[float],
        max_batch_seconds: float,
        num_buckets: int = 20,
        seed: int = 0,
        num_processes: int = 1,
        process_index: int = 0,
        start_batch: int = 0,
        crop_to_shortest: bool = True,
    ):
        self.durations = np.asarray(durations, dtype=np.float64)
        self.max_batch_seconds = max_batch_seconds
        self.num_buckets = num_buckets
        self.seed = seed
        self.num_processes = num_processes
        self.process_index = process_index
        self.start_batch = start_batch
        self.crop_to_shortest = crop_to_shortest

    def epoch_batches(self, epoch: int) -> list[np.ndarray]:
        """This process's batches in `epoch`."""
        rng = np.random.default_rng([self.seed, epoch])
        batches = bucketed_batches(self.durations, self.max_batch_seconds, self.num_buckets, rng, self.crop_to_shortest)
        per_process = len(batches) // self.num_processes
        if per_process == 0:
            raise UserError(
                f"{len(batches)} batches per epoch cannot feed {self.num_processes} processes",
                where="--max_batch_seconds", fix="lower --max_batch_seconds or add data",
            )
        return batches[self.process_index :: self.num_processes][:per_process]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        position, epoch = 0, 0  # position: this process's batches since the stream began
        while True:
            for batch in self.epoch_batches(epoch):
                if position >= self.start_batch:
                    batch_number = position * self.num_processes + self.process_index
                    yield [(int(index), batch_number) for index in batch]
                position += 1
            epoch += 1


def crop_start_frame(num_samples: int, crop_samples: int, seed: int, batch_number: int, clip_index: int) -> int:
    """First frame of a random `crop_samples` window of a `num_samples` clip, on the 20 ms frame grid.

    Drawn from a generator seeded by (seed, batch_number, clip_index): the same crop in any DataLoader worker
    and after a resume.
    """
    if num_samples <= crop_samples:
        return 0
    rng = np.random.default_rng([seed, batch_number, clip_index])
    return int(rng.integers(0, (num_samples - crop_samples) // SAMPLES_PER_FRAME + 1))


@dataclass
class MaskedPretrainingCollator:
    """Crops a batch of decoded clips to one length (or pads them), normalizes each, draws the span mask and
    wav2vec 2.0's negatives.

    Examples are `AudioClipDataset` items: `audio` (the whole decoded clip), `clip_index`, `batch_number`, and
    `labels` (per-clip frame targets) when the objective needs them. Each clip is first limited to
    `max_crop_samples`; then, with `crop_to_shortest` (the default), every clip is cropped to the shortest of
    the batch, so the batch holds no padding; otherwise clips are padded with zeros to the longest.

    Returns tensors: `input_values` (batch, samples), `attention_mask` (samples; only when padding),
    `mask_time_indices`, `sampled_negative_indices` when `num_negatives` > 0, `labels` (frame targets of the
    crops, -100 on padding) when the examples carry them, `audio_seconds` (audio in the batch, padding
    excluded), and the `LENGTH_TOTALS` that `length_shares` turns into what cropping drops and padding fills.
    """

    conv_kernel: Sequence[int]
    conv_stride: Sequence[int]
    max_crop_samples: int = 160_000
    crop_to_shortest: bool = True
    do_normalize: bool = True
    mask_prob: float = 0.65
    mask_length: int = 10
    min_masks: int = 2
    num_negatives: int = 100
    seed: int = 0
    sampling_rate: int = 16000

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        clip_lengths = np.array([min(len(example["audio"]), self.max_crop_samples) for example in examples])
        lengths = np.full_like(clip_lengths, clip_lengths.min()) if self.crop_to_shortest else clip_lengths
        frame_lengths = conv_output_lengths(lengths, self.conv_kernel, self.conv_stride)
        num_frames = int(frame_lengths.max())
        input_values = np.zeros((len(examples), lengths.max()), dtype=np.float32)
        labels = np.full((len(examples), num_frames), -100, dtype=np.int64) if "labels" in examples[0] else None
        for row, example in enumerate(examples):
            start_frame = crop_start_frame(len(example["audio"]), lengths[row], self.seed, example["batch_number"], example["clip_index"])
            start = start_frame * SAMPLES_PER_FRAME
            clip = example["audio"][start : start + lengths[row]]
            input_values[row, : lengths[row]] = normalize_audio(clip) if self.do_normalize else clip
            if labels is not None:
                clip_labels = example["labels"][start_frame : start_frame + frame_lengths[row]]
                labels[row, : len(clip_labels)] = clip_labels

        batch_seed = int(np.random.SeedSequence([self.seed, examples[0]["batch_number"]]).generate_state(1)[0])
        mask_time_indices = compute_span_mask(
            frame_lengths, num_frames, self.mask_prob, self.mask_length, self.min_masks, seed=batch_seed
        )
        batch = {
            "input_values": torch.from_numpy(input_values),
            "mask_time_indices": torch.from_numpy(mask_time_indices),
            "audio_seconds": self._seconds(lengths.sum()),
            # both ways of equalizing the lengths, whichever this batch took (`length_shares` of the sums)
            "cropped_seconds": self._seconds(len(examples) * clip_lengths.min()),
            "clip_seconds": self._seconds(clip_lengths.sum()),
            "padded_seconds": self._seconds(len(examples) * clip_lengths.max()),
        }
        if not self.crop_to_shortest:
            batch["attention_mask"] = torch.from_numpy((np.arange(lengths.max())[None, :] < lengths[:, None]).astype(np.int64))
        if self.num_negatives > 0:
            negatives = sample_negatives(mask_time_indices, self.num_negatives, seed=batch_seed + 1)
            batch["sampled_negative_indices"] = torch.from_numpy(negatives.astype(np.int64))
        if labels is not None:
            batch["labels"] = torch.from_numpy(labels)
        return batch

    def _seconds(self, samples) -> torch.Tensor:
        return torch.tensor(samples / self.sampling_rate, dtype=torch.float64)
