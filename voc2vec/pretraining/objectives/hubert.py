"""HuBERT masked prediction: the pretraining head transformers does not ship, the model wrapper, the objective.

The recipe of Hsu et al. (2021) as in fairseq: frame states of the masked positions are projected to
256-d and compared by cosine similarity, over a temperature of 0.1, to a learned embedding of every k-means
cluster; the loss is the cross-entropy against each frame's cluster, on masked frames only. Targets are
k-means clusters of Kaldi MFCCs for a fresh model, of a middle layer of the initial model when continuing
one (`voc2vec.pretraining.kmeans_targets`). The wrapper keeps the encoder a plain `HubertModel`, so the
export is what `AutoModelForAudioClassification` and the fine-tuning scripts load; the head is needed only
for pretraining and lives in checkpoints.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn
from transformers import HubertModel

from voc2vec.pretraining.kmeans_targets import KMeansTargetSpec, kmeans_frame_targets
from voc2vec.pretraining.objectives.base import PretrainingObjective

logger = logging.getLogger(__name__)


@dataclass
class HubertPretrainingOutput:
    loss: torch.Tensor  # cross-entropy summed over masked frames (normalized by the training loop)
    num_correct: torch.Tensor  # masked frames whose most similar cluster is the target
    num_masked: torch.Tensor


class HubertPretrainingHead(nn.Module):
    """Projection to `projection_dim`, cosine similarity to cluster embeddings over `temperature`, cross-entropy."""

    def __init__(self, hidden_size: int, num_clusters: int, projection_dim: int = 256, temperature: float = 0.1):
        super().__init__()
        self.projection = nn.Linear(hidden_size, projection_dim)
        self.cluster_embeddings = nn.Parameter(torch.empty(num_clusters, projection_dim))
        nn.init.uniform_(self.cluster_embeddings)  # as fairseq's label_embs_concat
        self.temperature = temperature

    def logits(self, frame_states: torch.Tensor) -> torch.Tensor:
        """(..., hidden) frame states to (..., num_clusters) cosine similarities over the temperature, in float32."""
        projected = self.projection(frame_states)  # in the autocast dtype, as the encoder
        # autocast would run the product in bf16/fp16 whatever its inputs' dtype: similarities / 0.1 span [-10, 10],
        # where bf16 keeps steps of 0.06
        with torch.autocast(device_type=projected.device.type, enabled=False):
            projected = nn.functional.normalize(projected.float(), dim=-1, eps=1e-8)
            clusters = nn.functional.normalize(self.cluster_embeddings.float(), dim=-1, eps=1e-8)
            return projected @ clusters.T / self.temperature

    def forward(self, hidden_states: torch.Tensor, labels: torch.Tensor, mask_time_indices: torch.Tensor) -> HubertPretrainingOutput:
        predict = mask_time_indices.bool() & (labels >= 0)  # masked frames that hold audio
        # Every frame is scored and the unmasked ones weighted 0, rather than selecting the masked ones: boolean
        # indexing would make the host wait for the device on every step (most frames are masked anyway).
        logits = self.logits(hidden_states)
        targets = labels.clamp(min=0)
        cross_entropy = nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
        loss = (cross_entropy * predict.flatten()).sum()
        num_correct = ((logits.argmax(dim=-1) == targets) & predict).sum()
        return HubertPretrainingOutput(loss=loss, num_correct=num_correct, num_masked=predict.sum())


class HubertForMaskedPretraining(nn.Module):
    """A `HubertModel` encoder plus the masked-prediction head over `num_clusters` k-means targets."""

    def __init__(self, hubert: HubertModel, num_clusters: int, projection_dim: int = 256, temperature: float = 0.1):
        super().__init__()
        self.hubert = hubert
        self.head = HubertPretrainingHead(hubert.config.hidden_size, num_clusters, projection_dim, temperature)

    @property
    def config(self):
        return self.hubert.config

    def forward(
        self,
        input_values: torch.Tensor,
        labels: torch.Tensor,
        mask_time_indices: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
    ) -> HubertPretrainingOutput:
        # HubertModel replaces the masked frames' features by its learned mask embedding itself.
        hidden_states = self.hubert(
            input_values, attention_mask=attention_mask, mask_time_indices=mask_time_indices.bool()
        ).last_hidden_state
        return self.head(hidden_states, labels, mask_time_indices)


class HubertObjective(PretrainingObjective):
    model_type = "hubert"
    encoder_prefix = "hubert."

    def _build(self) -> nn.Module:
        if self.args.model_name_or_path:
            encoder = HubertModel.from_pretrained(self.args.model_name_or_path, config=self.config, cache_dir=self.args.cache_dir)
        else:
            encoder = HubertModel(self.config)
        return HubertForMaskedPretraining(
            encoder, self.args.num_clusters, self.args.hubert_projection_dim, self.args.hubert_logit_temperature
        )

    def encoder(self, model: nn.Module):
        return model.hubert

    @property
    def target_features(self) -> str:
        """'layer' when continuing a checkpoint, 'mfcc' for a fresh model, unless the options name one."""
        if self.args.kmeans_features != "auto":
            return self.args.kmeans_features
        return "layer" if self.args.model_name_or_path else "mfcc"

    def frame_targets(self, model, dataset, decode, normalized_audio: bool, accelerator, seed: int):
        """Per-clip k-means labels: computed once by the main process, cached, read by the others.

        `decode(i)` gives clip i as decoded ([-1, 1] samples, not normalized); `normalized_audio` says whether the
        model sees it normalized per clip (the feature extractor's do_normalize), which a teacher layer must too.
        """
        spec = KMeansTargetSpec(
            features=self.target_features,
            model_name_or_path=self.args.model_name_or_path,
            layer=self.args.kmeans_layer,
            num_clusters=self.args.num_clusters,
            max_fit_clips=self.args.kmeans_max_fit_clips,
            data_fingerprint=dataset._fingerprint,
            seed=seed,
            normalized_audio=normalized_audio,
        )
        with accelerator.main_process_first():
            teacher = None
            if spec.features == "layer" and accelerator.is_main_process:
                teacher = self.encoder(model).to(accelerator.device)
            labels, cache_file = kmeans_frame_targets(
                dataset, decode, spec, self.args.kmeans_cache_dir, teacher=teacher, fit=accelerator.is_main_process
            )
        logger.info("HuBERT targets: %s (k=%d, %s)", cache_file, spec.num_clusters, spec.features)
        return labels

    def losses(self, model: nn.Module, batch: dict, attention_mask: torch.Tensor | None) -> dict[str, torch.Tensor]:
        output = model(
            batch["input_values"], labels=batch["labels"], mask_time_indices=batch["mask_time_indices"], attention_mask=attention_mask
        )
        # output.loss: cross-entropy summed over masked frames; the feature penalty may add to "loss"
        terms = {"loss": output.loss, "masked_prediction_loss": output.loss, "num_correct": output.num_correct.float()}
        self.add_feature_penalty(terms, batch["mask_time_indices"].sum())
        return terms

    def log_row(self, sums, masked_frames, micro_batches):
        row = super().log_row(sums, masked_frames, micro_batches)
        row["masked_prediction_loss"] = sums["masked_prediction_loss"] / masked_frames
        row["masked_accuracy"] = sums["num_correct"] / masked_frames
        return row

    def describe(self) -> dict:
        return super().describe() | {"num_clusters": self.args.num_clusters, "target_features": self.target_features}
