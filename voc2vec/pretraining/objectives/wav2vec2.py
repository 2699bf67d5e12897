"""wav2vec 2.0: `Wav2Vec2ForPreTraining`'s contrastive + diversity loss and the Gumbel temperature schedule.

The model (Baevski et al., 2020, as in fairseq and transformers) predicts, at each masked frame, the
quantized CNN feature among `num_negatives` distractors drawn from other masked frames of the same clip
(contrastive loss), while a diversity loss keeps the quantizer's codebook in use. Both come back summed over
masked frames; the Gumbel softmax temperature of the quantizer anneals from 2 to 0.5 over training.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import Wav2Vec2ForPreTraining

from voc2vec.pretraining.objectives.base import PretrainingObjective


def gumbel_temperature(update: int, max_temperature: float = 2.0, min_temperature: float = 0.5, decay: float = 0.999995) -> float:
    """Temperature of the quantizer's Gumbel softmax after `update` updates: exponential decay to a floor."""
    return max(max_temperature * decay**update, min_temperature)


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
        output = model(
            batch["input_values"],
            attention_mask=attention_mask,
            mask_time_indices=batch["mask_time_indices"],
            sampled_negative_indices=batch["sampled_negative_indices"],
        )
        # output.loss = contrastive_loss + diversity_loss_weight * diversity_loss, each summed over masked frames
        terms = {
            "loss": output.loss,
            "contrastive_loss": output.contrastive_loss,
            "diversity_loss": output.diversity_loss,
            "codevector_perplexity": output.codevector_perplexity,  # of this micro-batch: averaged, not summed
        }
        self.add_feature_penalty(terms, batch["mask_time_indices"].sum())
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
