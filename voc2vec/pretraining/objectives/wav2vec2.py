"""wav2vec 2.0: `Wav2Vec2ForPreTraining`'s contrastive + diversity loss and the Gumbel temperature schedule.

The model (Baevski et al., 2020, as in fairseq and transformers) predicts, at each masked frame, the
quantized CNN feature among `num_negatives` distractors drawn from other masked frames of the same clip
(contrastive loss), while a diversity loss keeps the quantizer's codebook in use. Both come back summed over
masked frames; the Gumbel softmax temperature of the quantizer anneals from 2 to 0.5 over training.

The model runs without negatives (it then returns its projected states and stops) and the losses are computed
here, with transformers' formulas, because its own loss path asks `if neg_is_pos.any()` and indexes by that
mask: two host-device synchronizations per step, and a graph break under torch.compile.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import Wav2Vec2ForPreTraining

from voc2vec.pretraining.objectives.base import PretrainingObjective


def gumbel_temperature(update: int, max_temperature: float = 2.0, min_temperature: float = 0.5, decay: float = 0.999995) -> float:
    """Temperature of the quantizer's Gumbel softmax after `update` updates: exponential decay to a floor."""
    return max(max_temperature * decay**update, min_temperature)


def contrastive_loss(
    predicted: torch.Tensor,
    quantized: torch.Tensor,
    negative_indices: torch.Tensor,
    mask_time_indices: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    """`Wav2Vec2ForPreTraining`'s contrastive loss, summed over masked frames, without waiting for the device.

    `predicted` and `quantized` are (batch, frames, dim) projected transformer states and projected quantized
    features; `negative_indices` (batch, frames, K) index the distractors into the flattened (batch x frames)
    quantized features. Each masked frame scores its true quantized feature against the K distractors by
    cosine similarity over `temperature`. A distractor identical to the true one (which happens when few codes
    are in use) is no distractor and is ruled out with -inf, by `masked_fill` rather than a data-dependent
    branch. Logits stay in float32 (transformers rounds them back to the autocast dtype first).
    """
    batch_size, num_frames, dim = quantized.shape
    negatives = quantized.reshape(-1, dim)[negative_indices.reshape(-1)]
    negatives = negatives.view(batch_size, num_frames, -1, dim).permute(2, 0, 1, 3)  # (K, batch, frames, dim)
    candidates = torch.cat([quantized[None], negatives])  # the true feature first: the target class is 0
    logits = torch.cosine_similarity(predicted.float(), candidates.float(), dim=-1) / temperature
    negative_is_positive = (quantized[None] == negatives).all(-1)
    logits = torch.cat([logits[:1], logits[1:].masked_fill(negative_is_positive, float("-inf"))])
    logits = logits.permute(1, 2, 0).reshape(-1, logits.shape[0])  # (batch x frames, 1 + K)
    targets = torch.where(mask_time_indices.bool(), 0, -100).reshape(-1)  # unmasked frames are not scored
    return nn.functional.cross_entropy(logits, targets, reduction="sum")


class Wav2Vec2Objective(PretrainingObjective):
    model_type = "wav2vec2"

    def _build(self) -> nn.Module:
        if self.args.num_negatives is not None:
            self.config.num_negatives = self.args.num_negatives
        if self.args.diversity_loss_weight is not None:
            self.config.diversity_loss_weight = self.args.diversity_loss_weight
        if self.args.model_name_or_path:
            return Wav2Vec2ForPreTraining.from_pretrained(
                self.args.model_name_or_path, config=self.config, cache_dir=self.args.cache_dir
            )
        return Wav2Vec2ForPreTraining(self.config)

    def encoder(self, model: nn.Module):
        return model.wav2vec2

    def exported_model(self, model: nn.Module):
        # The whole Wav2Vec2ForPreTraining, as the Hub's wav2vec 2.0 checkpoints: fine-tuning loads its encoder,
        # and pretraining can continue from it (quantizer and projections included).
        return model

    @property
    def num_negatives(self) -> int:
        return self.config.num_negatives

    @property
    def codebook_size(self) -> int:
        return self.config.num_codevectors_per_group * self.config.num_codevector_groups

    def before_update(self, model: nn.Module, update: int) -> dict[str, float]:
        temperature = gumbel_temperature(
            update, self.args.max_gumbel_temperature, self.args.min_gumbel_temperature, self.args.gumbel_temperature_decay
        )
        model.set_gumbel_temperature(temperature)
        return {"gumbel_temperature": temperature}

    def losses(self, model: nn.Module, batch: dict, attention_mask: torch.Tensor | None) -> dict[str, torch.Tensor]:
        mask_time_indices = batch["mask_time_indices"]
        # without negatives the model stops before its own loss (see the module docstring)
        output = model(batch["input_values"], attention_mask=attention_mask, mask_time_indices=mask_time_indices)
        masked_frames = mask_time_indices.sum()
        contrastive = contrastive_loss(
            output.projected_states, output.projected_quantized_states, batch["sampled_negative_indices"],
            mask_time_indices, self.config.contrastive_logits_temperature,
        )
        # transformers' diversity loss: the share of the codebook left unused, counted once per masked frame
        diversity = (self.codebook_size - output.codevector_perplexity) / self.codebook_size * masked_frames
        terms = {
            "loss": contrastive + self.config.diversity_loss_weight * diversity,
            "contrastive_loss": contrastive,
            "diversity_loss": diversity,
            "codevector_perplexity": output.codevector_perplexity,  # of this micro-batch: averaged, not summed
        }
        self.add_feature_penalty(terms, masked_frames)
        return terms

    def log_row(self, sums, masked_frames, micro_batches):
        row = super().log_row(sums, masked_frames, micro_batches)
        row["contrastive_loss"] = sums["contrastive_loss"] / masked_frames
        row["diversity_loss"] = sums["diversity_loss"] / masked_frames
        row["codevector_perplexity"] = sums["codevector_perplexity"] / micro_batches
        return row

    def describe(self) -> dict:
        return super().describe() | {
            "num_negatives": self.num_negatives,
            "diversity_loss_weight": self.config.diversity_loss_weight,
        }
