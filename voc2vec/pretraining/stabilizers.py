"""fairseq's two stabilizers of the convolutional feature encoder for pretraining from scratch.

wav2vec 2.0 base and HuBERT base (fairseq configs `wav2vec2_base_librispeech.yaml`, `hubert_base_librispeech.yaml`)
train the CNN that turns the waveform into 20 ms features with

- `feature_grad_mult: 0.1`: the gradient that flows back into the CNN is scaled by 0.1 (fairseq's
  `GradMultiply` on the CNN output), so the large, early gradients of the transformer and quantizer do not
  wreck the freshly initialized convolutions;
- a feature penalty (`loss_weights: [.., 10]`): the mean of the squared CNN outputs, weighted by 10 and
  counted once per masked frame like the other loss terms, which keeps the features from growing without
  bound before the layer norm that follows them.

transformers' models have neither, so a forward hook on the feature encoder adds them without changing the
model's modules or weight names (the export stays a plain `Wav2Vec2ForPreTraining` / `HubertModel`).
"""

from __future__ import annotations

import torch
from torch import nn


class GradMultiply(torch.autograd.Function):
    """Identity forward; the gradient is multiplied by `scale` on the way back."""

    @staticmethod
    def forward(ctx, features: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return features.view_as(features)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad * ctx.scale, None


class FeatureEncoderStabilizer:
    """Hooks the CNN feature encoder: scales its gradient by `grad_mult` and records the feature penalty.

    `penalty()` returns the mean squared CNN output of the last forward pass (fairseq's `features_pen`,
    computed after the gradient scaling as there, so its gradient into the CNN is scaled too).
    """

    def __init__(self, feature_encoder: nn.Module, grad_mult: float = 1.0, record_penalty: bool = False):
        self.grad_mult = grad_mult
        self.record_penalty = record_penalty
        self._penalty: torch.Tensor | None = None
        self.handle = feature_encoder.register_forward_hook(self._hook)

    def _hook(self, module: nn.Module, inputs, features: torch.Tensor) -> torch.Tensor:
        if self.grad_mult != 1.0 and features.requires_grad:
            features = GradMultiply.apply(features, self.grad_mult)
        if self.record_penalty:
            self._penalty = features.float().pow(2).mean()
        return features

    def penalty(self) -> torch.Tensor:
        if self._penalty is None:
            raise RuntimeError("no feature penalty recorded: the model has not run forward since the last call")
        penalty, self._penalty = self._penalty, None
        return penalty

    def remove(self) -> None:
        self.handle.remove()
