"""The family-independent part of a pretraining objective, and the model config it starts from."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn
from transformers import AutoConfig, PretrainedConfig, PreTrainedModel

from voc2vec.pretraining.stabilizers import FeatureEncoderStabilizer


COMPILED_PREFIX = "_orig_mod."  # what torch.compile's wrapper puts before the weight names of the model it wraps


class PretrainingObjective:
    """The family-independent part of an objective; subclasses fill in the family's model and losses.

    `args` carries the model options of `run_pretraining.py` (`ModelArguments`): the source, stabilizers,
    freezing and the family's own settings.
    """

    model_type: ClassVar[str]
    # Where the encoder sits in the pretraining model's state dict ("" = the whole model is what is exported).
    encoder_prefix: ClassVar[str] = ""

    def __init__(self, args, config: PretrainedConfig):
        self.args = args
        self.config = config
        self.stabilizer: FeatureEncoderStabilizer | None = None

    # ---- building ----
    def build_model(self) -> nn.Module:
        """The pretraining model, with the CNN frozen or stabilized as the options say."""
        model = self._build()
        feature_encoder = self.encoder(model).feature_extractor
        if self.args.freeze_feature_encoder:
            feature_encoder._freeze_parameters()
        elif hasattr(feature_encoder, "_requires_grad"):
            # transformers marks the waveform as needing a gradient (for gradient checkpointing of the CNN, which
            # pretraining does not use): a transposed convolution over the waveform in every backward pass for
            # nothing (12% of a tiny model's step on the CPU). The CNN's weights still get their gradients.
            feature_encoder._requires_grad = False
        if self.args.feature_grad_mult != 1.0 or self.args.feature_penalty_weight > 0:
            self.stabilizer = FeatureEncoderStabilizer(
                feature_encoder, self.args.feature_grad_mult, record_penalty=self.args.feature_penalty_weight > 0
            )
        return model

    def _build(self) -> nn.Module:
        raise NotImplementedError

    def encoder(self, model: nn.Module) -> PreTrainedModel:
        """The encoder inside the (unwrapped) pretraining model."""
        raise NotImplementedError

    def exported_model(self, model: nn.Module) -> PreTrainedModel:
        """What `export` saves: the part of the pretraining model at `encoder_prefix`."""
        return self.encoder(model)

    @property
    def num_negatives(self) -> int:
        """Distractors per masked frame that the collator draws (0: the objective uses none)."""
        return 0

    @property
    def codebook_size(self) -> int | None:
        """Codevectors of a quantizer (the ceiling of its perplexity), None without one."""
        return None

    def frame_targets(self, model, dataset, decode, normalized_audio: bool, accelerator, seed: int):
        """Per-clip frame targets at 50 Hz (HuBERT's k-means labels), or None when the objective needs none.

        `decode(i)` gives clip i as decoded; `normalized_audio`: the model sees clips normalized per clip."""
        return

    # ---- one update ----
    def before_update(self, model: nn.Module, update: int) -> dict[str, float]:
        """Set what depends on the update count; returns the values to log."""
        return {}

    def losses(self, model: nn.Module, batch: dict, attention_mask: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """The micro-batch's terms, summed over its masked frames; "loss" is the weighted sum that is minimized."""
        raise NotImplementedError

    def add_feature_penalty(self, terms: dict[str, torch.Tensor], masked_frames: torch.Tensor) -> None:
        """fairseq's feature penalty as its own term, counted once per masked frame like the others."""
        if self.stabilizer is None or not self.stabilizer.record_penalty:
            return
        penalty = self.stabilizer.penalty() * masked_frames
        terms["feature_penalty"] = penalty
        terms["loss"] = terms["loss"] + self.args.feature_penalty_weight * penalty

    # ---- logging ----
    def log_row(self, sums: dict[str, torch.Tensor], masked_frames: torch.Tensor, micro_batches: int) -> dict[str, torch.Tensor]:
        """Interval sums (over updates, micro-batches and processes) to the row's per-masked-frame values."""
        row = {"loss": sums["loss"] / masked_frames}
        if "feature_penalty" in sums:
            row["feature_penalty"] = sums["feature_penalty"] / masked_frames
        return row

    def describe(self) -> dict:
        """What a reader of the run's files needs to interpret them (written to pretraining_run.json)."""
        description = {
            "objective": self.model_type,
            "feature_grad_mult": self.args.feature_grad_mult,
            "feature_penalty_weight": self.args.feature_penalty_weight,
        }
        if self.codebook_size:
            description["codebook_size"] = self.codebook_size
        return description

    # ---- export ----
    def export(self, accelerator, model: nn.Module, feature_extractor, path) -> None:
        """`save_pretrained` weights (safetensors, float32) and the feature extractor, loadable by the fine-tuning
        scripts. Called on every process: under DeepSpeed the weights are gathered from all of them."""
        state_dict = accelerator.get_state_dict(model)
        if accelerator.is_main_process:
            # a torch.compile'd model names its weights "_orig_mod.<name>": the export keeps the model's own names
            state_dict = {name.removeprefix(COMPILED_PREFIX): tensor for name, tensor in state_dict.items()}
            state_dict = {
                name.removeprefix(self.encoder_prefix): tensor.float() if tensor.is_floating_point() else tensor
                for name, tensor in state_dict.items()
                if name.startswith(self.encoder_prefix)
            }
            exported = self.exported_model(accelerator.unwrap_model(model, keep_torch_compile=False))
            exported.save_pretrained(path, state_dict=state_dict)
            feature_extractor.save_pretrained(path)
        accelerator.wait_for_everyone()


def load_model_config(args) -> PretrainedConfig:
    """The model config of `args.model_name_or_path` (continued pretraining) or `args.config_name` (from scratch),
    with the options that change the architecture's behaviour applied."""
    source = args.model_name_or_path or args.config_name
    config = AutoConfig.from_pretrained(source, cache_dir=args.cache_dir)
    # Masks come from the collator; the model must apply them (masked_spec_embed) rather than skip masking.
    config.apply_spec_augment = True
    if args.layerdrop is not None:
        config.layerdrop = args.layerdrop
    config._attn_implementation = args.attn_implementation
    return config
