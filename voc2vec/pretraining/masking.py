"""Span masking and negative sampling for masked-prediction pretraining.

Masks wrap the transformers helper that `Wav2Vec2ForPreTraining` was trained with, so they match the
published recipe (wav2vec 2.0: p = 0.65, spans of 10 frames; HuBERT: p = 0.8, spans of 10); negatives are
drawn as fairseq and that library draw them, for the whole batch at once. Both run in the collator, on the
CPU, in numpy, seeded by the batch's own number: masks and negatives are then the same whether the batch is
built in a DataLoader worker or in the main process, and the same after a resume.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from transformers.models.wav2vec2.modeling_wav2vec2 import _compute_mask_indices


def conv_output_lengths(num_samples: np.ndarray | int, conv_kernel: Sequence[int], conv_stride: Sequence[int]) -> np.ndarray:
    """Frames the convolutional feature encoder makes from `num_samples` samples (20 ms frames at 16 kHz).

    The same arithmetic as `model._get_feat_extract_output_lengths`, without needing the model, so the
    collator can run in DataLoader workers.
    """
    lengths = np.asarray(num_samples, dtype=np.int64)
    for kernel, stride in zip(conv_kernel, conv_stride):
        lengths = (lengths - kernel) // stride + 1
    return np.maximum(lengths, 0)


@contextlib.contextmanager
def numpy_seed(seed: int) -> Iterator[None]:
    """Seed numpy's global generator inside the block and put the caller's state back afterwards."""
    state = np.random.get_state()
    np.random.seed(seed % 2**32)
    try:
        yield
    finally:
        np.random.set_state(state)


def compute_span_mask(
    frame_lengths: np.ndarray,
    num_frames: int,
    mask_prob: float,
    mask_length: int,
    min_masks: int = 2,
    seed: int | None = None,
) -> np.ndarray:
    """Boolean (batch, num_frames) mask: spans of `mask_length` frames starting at about `mask_prob` of frames.

    Padded frames (at or past each clip's `frame_lengths`) are never masked. `min_masks` keeps at least
    that many spans in every clip, so every clip contributes to the loss.
    """
    frame_attention = np.arange(num_frames)[None, :] < np.asarray(frame_lengths)[:, None]
    with numpy_seed(seed) if seed is not None else contextlib.nullcontext():
        mask = _compute_mask_indices(
            (len(frame_lengths), num_frames),
            mask_prob=mask_prob,
            mask_length=mask_length,
            # the helper sums this mask with tensor methods, so it must be a tensor
            attention_mask=torch.from_numpy(frame_attention.astype(np.int64)),
            min_masks=min_masks,
        )
    return mask & frame_attention


def sample_negatives(mask_time_indices: np.ndarray, num_negatives: int, seed: int | None = None) -> np.ndarray:
    """(batch, num_frames, num_negatives) flat indices of distractors, drawn from the same clip's masked frames.

    As in fairseq's wav2vec 2.0 (and transformers' `_sample_negative_indices`): for each masked frame,
    `num_negatives` other masked frames of the same clip, uniformly with replacement, never the frame itself;
    unmasked frames get index 0 and are ignored by the loss. Drawn for the whole batch at once (the helper loops
    over clips in Python, a fifth of the data path's time on short clips). A clip with a single masked frame has
    no other: its frame is its own distractor, which the loss ignores (it drops negatives equal to the target).
    """
    batch_size, num_frames = mask_time_indices.shape
    rng = np.random.default_rng(seed)
    rows, frames = np.nonzero(mask_time_indices)  # row-major: each clip's masked frames in order
    counts = mask_time_indices.sum(axis=1)
    first = np.repeat(np.cumsum(counts) - counts, counts)  # position in `frames` of the clip's first masked frame
    rank = np.arange(len(rows)) - first  # each masked frame's rank among its clip's masked frames
    others = np.maximum(counts[rows] - 1, 0)[:, None]
    # uniform over the other frames' ranks (float32 draws: half the cost, and clips have far fewer than 2^24 frames)
    drawn = (rng.random((len(rows), num_negatives), dtype=np.float32) * others).astype(np.int64)
    drawn += (drawn >= rank[:, None]) & (others > 0)  # skip the frame's own rank
    negatives = np.zeros((batch_size, num_frames, num_negatives), dtype=np.int64)
    negatives[rows, frames] = rows[:, None] * num_frames + frames[first[:, None] + drawn]
    return negatives
