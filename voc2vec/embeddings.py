"""Pooled embeddings of an audio encoder: one vector per clip and layer, each clip's as if it were embedded alone.

The encoder's hidden states (`output_hidden_states=True`: the input to the first transformer layer, then every
layer's output) are averaged over the clip's **true frames** only, the frames the convolutional feature encoder
makes from the clip's own samples, never over padding. Batches follow `voc2vec.prediction.evaluation_batches`:
group-norm encoders (wav2vec 2.0 base, HuBERT base, voc2vec) only ever share a batch with clips of exactly equal
length, so nothing in a clip's vector depends on its batch mates; models that pad exactly (layer-norm encoder
with an attention mask) are batched by sorted length. `voc2vec embed` writes these vectors to files, and the
frozen-encoder probing baseline computes (and caches) its features with the same function.

    encoder, feature_extractor = load_encoder("alkiskoudounas/voc2vec")
    vectors = embed_clips(encoder, feature_extractor, [load_audio("a.wav"), load_audio("b.wav")], layers="all")
    vectors.shape  # (2 clips, 13 hidden states, 768)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np
import torch

from voc2vec.collate import AudioCollator
from voc2vec.prediction import evaluation_batches, pads_exactly

POOLING_MODES = ("mean", "mean+std")
# Which positions `true_frames` pools over, named in the probing feature cache's identity: change it with the rule.
TRUE_FRAMES_RULE = "conv frames of the true length; AST patches starting inside the clip"


def load_encoder(model_name_or_path: str | os.PathLike, device: str | torch.device = "cpu", cache_dir: str | None = None):
    """`(encoder, feature_extractor)` of any saved audio model: a bare encoder (`run_pretraining.py`'s `final/`, a Hub
    checkpoint) or a fine-tuned classifier, whose head is dropped (a voc2vec LSTM-head model gives its `encoder`,
    a transformers `*ForSequenceClassification` its base model). Raises `OSError`/`ValueError` as transformers does."""
    from transformers import AutoConfig, AutoFeatureExtractor, AutoModel

    from voc2vec.heads import AudioLSTMHeadConfig, AudioModelWithLSTMHead  # registers the voc2vec heads

    source = os.fspath(model_name_or_path)
    config = AutoConfig.from_pretrained(source, cache_dir=cache_dir)
    if isinstance(config, AudioLSTMHeadConfig):
        encoder = AudioModelWithLSTMHead.from_pretrained(source, cache_dir=cache_dir).encoder
    else:
        encoder = AutoModel.from_pretrained(source, cache_dir=cache_dir)
    if getattr(encoder.config, "is_encoder_decoder", False):
        encoder = encoder.get_encoder()  # Whisper: the encoder is the audio model; the decoder writes text
    feature_extractor = AutoFeatureExtractor.from_pretrained(source, cache_dir=cache_dir)
    return encoder.to(device).eval(), feature_extractor


def num_hidden_states(encoder) -> int:
    """How many hidden states `output_hidden_states=True` returns: the transformer's input plus one per layer."""
    return int(encoder.config.num_hidden_layers) + 1


def select_layers(layers: str | int | Sequence[int] | None, count: int) -> list[int]:
    """Hidden-state indices from a user's choice: "all", "last" (None), an index ("6", -1) or a list ("0,6,12").

    Index 0 is the transformer's input (the projected convolutional features), 1..L the layers' outputs.
    """
    if layers is None or layers == "last":
        return [count - 1]
    if layers == "all":
        return list(range(count))
    if isinstance(layers, str):
        try:
            layers = [int(item) for item in layers.split(",") if item.strip()]
        except ValueError:
            raise ValueError(f"layers must be 'all', 'last', an index or a comma-separated list of indices, got {layers!r}.") from None
    indices = [layers] if isinstance(layers, int) else list(layers)
    if not indices:
        raise ValueError("no layer given.")
    resolved = []
    for index in indices:
        if not -count <= index < count:
            raise ValueError(f"layer {index} does not exist: this encoder has hidden states 0..{count - 1} (0 = before the first layer).")
        resolved.append(index % count)
    return resolved


def pool_frames(hidden: torch.Tensor, valid: torch.Tensor, pooling: str) -> torch.Tensor:
    """`(batch, time, dim)` -> `(batch, dim)` (mean) or `(batch, 2 * dim)` (mean then population std) over the
    positions where `valid` (`(batch, time)`, boolean) is true."""
    if pooling not in POOLING_MODES:
        raise ValueError(f"pooling must be one of {POOLING_MODES}, got {pooling!r}.")
    hidden = hidden.float()
    weights = valid.to(hidden.device, torch.float32).unsqueeze(-1)
    counts = weights.sum(dim=1)
    mean = (hidden * weights).sum(dim=1) / counts
    if pooling == "mean":
        return mean
    variance = (((hidden - mean[:, None, :]) ** 2) * weights).sum(dim=1) / counts
    return torch.cat([mean, variance.sqrt()], dim=-1)


def true_frames(encoder, input_lengths: torch.Tensor | None, num_positions: int, batch_size: int) -> torch.Tensor:
    """`(batch, positions)` boolean: the encoder positions made from each clip's own samples, never from padding.

    Waveform encoders and Whisper: the first `_get_feat_extract_output_lengths(true length)` frames. AST: its
    sequence is a class and a distillation token, then frequency x time patches (frequency-major); the patches whose
    time window starts inside the clip's true feature frames count, the patches of the padding to its fixed input do
    not (every token still attends to them: AST takes no mask, which keeps a clip's vector its own, since its
    extractor pads every clip alone). Without input lengths every position counts.
    """
    everything = torch.ones(batch_size, num_positions, dtype=torch.bool)
    if input_lengths is None:
        return everything
    input_lengths = input_lengths.cpu().to(torch.long)
    if hasattr(encoder, "_get_feat_extract_output_lengths"):
        counts = encoder._get_feat_extract_output_lengths(input_lengths).to(torch.long).clamp(min=1, max=num_positions)
        return torch.arange(num_positions)[None, :] < counts[:, None]
    if getattr(encoder.config, "model_type", None) == "audio-spectrogram-transformer":
        return ast_true_patches(encoder.config, input_lengths, num_positions)
    return everything


def ast_true_patches(config, feature_frames: torch.Tensor, num_positions: int) -> torch.Tensor:
    """AST positions (class, distillation, then patch f * time_patches + t) whose time window starts in the clip."""
    time_patches = (config.max_length - config.patch_size) // config.time_stride + 1
    frequency_patches = (config.num_mel_bins - config.patch_size) // config.frequency_stride + 1
    if 2 + frequency_patches * time_patches != num_positions:
        raise ValueError(f"unexpected AST sequence length {num_positions} for its config ({frequency_patches} x {time_patches} patches).")
    starts_inside = torch.arange(time_patches)[None, :] * config.time_stride < feature_frames[:, None]  # (batch, t)
    starts_inside[:, 0] = True  # a clip shorter than one stride keeps its first patches
    patches = starts_inside.repeat(1, frequency_patches)  # frequency-major, like the patch embedding's flatten
    return torch.cat([torch.zeros(len(feature_frames), 2, dtype=torch.bool), patches], dim=1)


@torch.no_grad()
def pooled_hidden_states(
    encoder: torch.nn.Module,
    items: Sequence[dict] | torch.utils.data.Dataset,
    collator: AudioCollator,
    lengths: Sequence[int],
    batch_size: int,
    may_pad: bool,
    layers: Sequence[int],
    pooling: str = "mean",
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """`(clips, len(layers), dim)` float32 (`2 * dim` for "mean+std"), in the items' order, each clip as if alone.

    The arguments mirror `voc2vec.prediction.predict_logits`: `items[i]` is `{"input_values": samples}`, `lengths[i]`
    its length; `collator` must return input lengths (`AudioCollator(..., return_input_lengths=True)`).
    """
    if pooling not in POOLING_MODES:
        raise ValueError(f"pooling must be one of {POOLING_MODES}, got {pooling!r}.")
    was_training = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    outputs: list[np.ndarray | None] = [None] * len(lengths)
    try:
        for positions in evaluation_batches(lengths, batch_size, may_pad):
            batch = collator([items[position] for position in positions])
            batch.pop("labels", None)
            input_lengths = batch.pop("input_lengths", None)
            batch = {name: value.to(device) for name, value in batch.items()}
            hidden_states = encoder(**batch, output_hidden_states=True).hidden_states
            valid = true_frames(encoder, input_lengths, hidden_states[0].shape[1], len(positions))
            pooled = torch.stack([pool_frames(hidden_states[layer], valid, pooling) for layer in layers], dim=1)
            for position, row in zip(positions, pooled.cpu().numpy()):
                outputs[position] = row
            if progress is not None:
                progress(len(positions))
    finally:
        encoder.train(was_training)
    if not outputs:
        width = encoder.config.hidden_size * (2 if pooling == "mean+std" else 1)
        return np.zeros((0, len(layers), width), dtype=np.float32)
    return np.stack(outputs).astype(np.float32, copy=False)


def embed_clips(
    encoder: torch.nn.Module,
    feature_extractor,
    clips: Sequence[np.ndarray],
    layers: str | int | Sequence[int] | None = "last",
    pooling: str = "mean",
    batch_size: int = 8,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Pooled embeddings of 16 kHz clips (float arrays): `(clips, layers, dim)`; see `pooled_hidden_states`."""
    indices = select_layers(layers, num_hidden_states(encoder))
    collator = AudioCollator(feature_extractor, return_input_lengths=True)
    items = [{"input_values": np.asarray(clip, dtype=np.float32)} for clip in clips]
    lengths = [len(clip) for clip in clips]
    return pooled_hidden_states(
        encoder, items, collator, lengths, batch_size, pads_exactly(encoder.config, feature_extractor), indices, pooling, progress
    )
