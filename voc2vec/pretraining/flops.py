"""Training FLOPs of a wav2vec 2.0 / HuBERT step, counted from the model config: the numerator of model FLOPs
utilization (MFU = these FLOPs per second / the device's peak).

Counted like GPU peak figures and PyTorch's FlopCounterMode: 2 FLOPs per multiply-add of the matrix products and
convolutions. Normalizations, activations, dropout, softmax, Gumbel sampling, the elementwise cosine similarities
of the contrastive loss and the loss itself are left out (they are memory-bound and a few percent of the work in
a base model). For one clip of S samples, with T_l the frames after CNN layer l, T = T_last, H the hidden size, I
the feed-forward size:

- CNN feature encoder, layer l (kernel k_l, channels C_{l-1} -> C_l, C_0 = 1):   2 k_l C_{l-1} C_l T_l
- feature projection:                                                          2 C_last H T
- convolutional positional embedding (kernel K, G groups):                     2 K (H / G) H T
- each transformer layer: q, k, v, output projections and the two feed-forward layers, 2 T (4 H^2 + 2 H I);
  attention scores and their weighted sum, 4 T^2 H
- wav2vec 2.0 head: quantizer logits 2 C_last (G V) T, project_q 2 D_cv D_p T, project_hid 2 H D_p T
  (G V codevectors, D_cv = codevector_dim, D_p = proj_codevector_dim)
- HuBERT head (every frame is scored, the unmasked ones weighted 0): projection 2 H P T, cluster similarities 2 P C T
- classification head (fine-tuning): projector 2 H P_cls T

A training step costs 3 forward passes (the backward pass computes gradients for both inputs and weights), except
a frozen CNN, which runs forward once: nothing before it needs a gradient.
"""

from __future__ import annotations

from transformers import PretrainedConfig

from voc2vec.pretraining.masking import conv_output_lengths


def conv_layer_frames(num_samples: int, config: PretrainedConfig) -> list[int]:
    """Output frames of each CNN layer for a clip of `num_samples` samples."""
    frames, lengths = num_samples, []
    for kernel, stride in zip(config.conv_kernel, config.conv_stride):
        frames = int(conv_output_lengths(frames, [kernel], [stride]))
        lengths.append(frames)
    return lengths


def feature_encoder_flops(config: PretrainedConfig, num_samples: int) -> float:
    """Forward FLOPs of the CNN for one clip."""
    channels_in, total = 1, 0.0
    for kernel, channels_out, frames in zip(config.conv_kernel, config.conv_dim, conv_layer_frames(num_samples, config)):
        total += 2 * kernel * channels_in * channels_out * frames
        channels_in = channels_out
    return total


def transformer_flops(config: PretrainedConfig, num_frames: int) -> float:
    """Forward FLOPs of feature projection, positional convolution and transformer layers for one clip."""
    hidden, frames = config.hidden_size, num_frames
    projection = 2 * config.conv_dim[-1] * hidden * frames
    positional = 2 * config.num_conv_pos_embeddings * (hidden // config.num_conv_pos_embedding_groups) * hidden * frames
    per_layer = 2 * frames * (4 * hidden**2 + 2 * hidden * config.intermediate_size) + 4 * frames**2 * hidden
    return projection + positional + config.num_hidden_layers * per_layer


def head_flops(config: PretrainedConfig, head: str, num_frames: int, num_clusters: int = 500, hubert_projection_dim: int = 256) -> float:
    """Forward FLOPs of the objective's head for one clip: 'wav2vec2', 'hubert' or 'classification'."""
    if head == "wav2vec2":
        codevectors = config.num_codevector_groups * config.num_codevectors_per_group
        return 2 * num_frames * (
            config.conv_dim[-1] * codevectors
            + config.codevector_dim * config.proj_codevector_dim
            + config.hidden_size * config.proj_codevector_dim
        )
    if head == "hubert":
        return 2 * num_frames * hubert_projection_dim * (config.hidden_size + num_clusters)
    if head == "classification":
        return 2 * num_frames * config.hidden_size * config.classifier_proj_size
    raise ValueError(f"head must be wav2vec2, hubert or classification, not {head!r}")


def forward_flops(config: PretrainedConfig, num_samples: int, head: str, num_clusters: int = 500,
                  hubert_projection_dim: int = 256) -> tuple[float, float]:
    """Forward FLOPs of one clip: (CNN feature encoder, everything after it)."""
    frames = int(conv_output_lengths(num_samples, config.conv_kernel, config.conv_stride))
    after = transformer_flops(config, frames) + head_flops(config, head, frames, num_clusters, hubert_projection_dim)
    return feature_encoder_flops(config, num_samples), after


def training_step_flops(
    config: PretrainedConfig,
    batch_size: int,
    num_samples: int,
    head: str,
    frozen_feature_encoder: bool = False,
    num_clusters: int = 500,
    hubert_projection_dim: int = 256,
) -> float:
    """FLOPs of one forward + backward pass over `batch_size` clips of `num_samples` samples each."""
    cnn, rest = forward_flops(config, num_samples, head, num_clusters, hubert_projection_dim)
    return batch_size * ((1 if frozen_feature_encoder else 3) * cnn + 3 * rest)
