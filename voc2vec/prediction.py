"""Scoring clips so that every clip gets exactly the scores it gets alone.

A model without an attention mask (wav2vec 2.0 base, HuBERT base, every voc2vec checkpoint: group-norm feature
encoders) sees the zeros that pad a batch: group norm normalizes each channel over time, padding included, and
self-attention attends to the padded frames. Its outputs for a clip therefore change with the length of the
longest clip in the batch. Evaluation and prediction avoid padding for such models altogether: a batch only
holds clips of exactly equal length (`evaluation_batches`); every other clip runs alone. Models with a layer-norm
feature encoder and an attention mask (wav2vec 2.0 large-lv60, WavLM, ...) pad exactly (the mask keeps padded
frames out of attention and pooling), so their batches are simply sorted by length. Spectrogram models whose
feature extractor pads every clip to a fixed size itself (Whisper's 30 s, AST's 1024 frames) batch freely.

`predict_logits` is the one place that runs a classifier over clips for scoring: the test fold of every run,
`predictions.csv`, and inference on new recordings all go through it, in the clips' own order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from voc2vec.collate import uses_attention_mask


def pads_exactly(model_config, feature_extractor) -> bool:
    """True when padding a batch leaves each clip's outputs as they are alone (see the module docstring)."""
    if fixed_size_features(feature_extractor):
        return True
    encoder_config = getattr(model_config, "encoder_config", None) or model_config
    layer_norm_encoder = getattr(encoder_config, "feat_extract_norm", "group") == "layer"
    return uses_attention_mask(feature_extractor) and layer_norm_encoder


def fixed_size_features(feature_extractor) -> bool:
    """Feature extractors that pad or cut every clip to one fixed size on their own (Whisper, AST)."""
    name = type(feature_extractor).__name__
    return name.startswith(("Whisper", "ASTFeatureExtractor"))


def evaluation_batches(lengths: Sequence[int], batch_size: int, may_pad: bool) -> list[list[int]]:
    """Positions grouped into batches of at most `batch_size`.

    `may_pad=False`: only clips of exactly equal length share a batch (no padding at all). `may_pad=True`: clips
    sorted by length and cut into batches (least padding). Positions keep their order within a length, so the
    plan is deterministic.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(lengths, kind="stable")
    if may_pad:
        return [order[start : start + batch_size].tolist() for start in range(0, len(order), batch_size)]
    batches = []
    for length in np.unique(lengths):
        positions = order[lengths[order] == length]
        batches += [positions[start : start + batch_size].tolist() for start in range(0, len(positions), batch_size)]
    return batches


@torch.no_grad()
def predict_logits(
    model: torch.nn.Module,
    items: Sequence[dict] | torch.utils.data.Dataset,
    collator: Callable[[list[dict]], dict],
    lengths: Sequence[int],
    batch_size: int,
    may_pad: bool,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """The model's outputs (`logits`) for every item, in the items' order, each as if scored alone.

    `items[i]` is what the collator takes (`{"input_values": ...}`, labels are ignored); `lengths[i]` its length in
    samples; `progress(n)` is called after each batch with the number of items it held.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    outputs: list[np.ndarray | None] = [None] * len(lengths)
    try:
        for positions in evaluation_batches(lengths, batch_size, may_pad):
            batch = collator([items[position] for position in positions])
            batch.pop("labels", None)
            batch = {name: value.to(device) for name, value in batch.items()}
            logits = model(**batch).logits.float().cpu().numpy()
            for position, row in zip(positions, logits):
                outputs[position] = row
            if progress is not None:
                progress(len(positions))
    finally:
        model.train(was_training)
    return np.stack(outputs) if outputs else np.zeros((0, model.config.num_labels), dtype=np.float32)
