"""Prediction heads on top of self-supervised audio encoders.

`AudioModelWithLSTMHead` is the head of the A-VB vocal-burst paper as a regular transformers model: any audio
encoder (built with `AutoModel` from `config.encoder_config`: wav2vec 2.0, HuBERT, WavLM, ...) -> a 2-layer LSTM
over the encoder frames -> pooling over time (first | last | max | mean) -> a linear output layer. It serves
classification (cross-entropy, optional class weights) and multi-output regression (loss "ccc" = 1 - mean CCC
over the targets, or "mse"). With `lstm_num_layers=0` the LSTM is skipped, giving the plain "pool the encoder
frames + linear" head, which is the regression variant the built-in `Wav2Vec2ForSequenceClassification` lacks
(it always applies cross-entropy).

`import voc2vec.heads` registers the config and model with the Auto classes, so a saved model loads with
`AutoModelForAudioClassification.from_pretrained(directory)`.

For the built-in `*ForSequenceClassification` models, `ccc_loss_func` and `make_weighted_cross_entropy_loss_func`
plug into `Trainer(compute_loss_func=...)`: the Trainer then takes the labels out of the batch, the model only
produces logits, and the loss comes from here.
"""

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn
from transformers import AutoConfig, AutoModel, AutoModelForAudioClassification, PreTrainedConfig, PreTrainedModel
from transformers.configuration_utils import SubConfigSpec
from transformers.modeling_outputs import SequenceClassifierOutput

from .metrics import ccc_loss

POOLING_MODES = ("first", "last", "max", "mean")
REGRESSION_LOSSES = ("ccc", "mse")
PROBLEM_TYPES = ("single_label_classification", "regression")


class AudioLSTMHeadConfig(PreTrainedConfig):
    r"""Configuration of `AudioModelWithLSTMHead`.

    Args:
        encoder_config (`dict` or `PreTrainedConfig`): config of the audio encoder (any model type `AutoModel`
            knows; a dict needs a `model_type`, default "wav2vec2").
        lstm_hidden_size (`int`, defaults to 512): hidden size of the LSTM (per direction).
        lstm_num_layers (`int`, defaults to 2): LSTM depth; 0 pools the encoder frames directly.
        lstm_bidirectional (`bool`, defaults to `False`): run the LSTM in both directions.
        lstm_dropout (`float`, defaults to 0.0): dropout between LSTM layers.
        pooling (`str`, defaults to "mean"): how frames become one vector: "first", "last", "max" or "mean";
            all of them ignore padded frames.
        head_dropout (`float`, defaults to 0.1): dropout before the output layer.
        problem_type (`str`): "single_label_classification" (default) or "regression".
        regression_loss (`str`, defaults to "ccc"): "ccc" (1 - mean CCC over targets) or "mse".
        class_weights (`list[float]`, *optional*): per-class weights of the cross-entropy (classification only),
            e.g. from `balanced_class_weights`.
        num_labels / id2label: number and names of the classes, or of the regression targets.
    """

    model_type = "audio-lstm-head"
    sub_configs_defaults = {"encoder_config": SubConfigSpec(config_class=AutoConfig, model_type="wav2vec2")}

    encoder_config: dict | PreTrainedConfig | None = None
    lstm_hidden_size: int = 512
    lstm_num_layers: int = 2
    lstm_bidirectional: bool = False
    lstm_dropout: float = 0.0
    pooling: str = "mean"
    head_dropout: float = 0.1
    regression_loss: str = "ccc"
    class_weights: list[float] | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.problem_type is None:
            self.problem_type = "single_label_classification"
        if self.problem_type not in PROBLEM_TYPES:
            raise ValueError(f"problem_type must be one of {PROBLEM_TYPES}, got {self.problem_type!r}.")
        if self.pooling not in POOLING_MODES:
            raise ValueError(f"pooling must be one of {POOLING_MODES}, got {self.pooling!r}.")
        if self.regression_loss not in REGRESSION_LOSSES:
            raise ValueError(f"regression_loss must be one of {REGRESSION_LOSSES}, got {self.regression_loss!r}.")
        if self.class_weights is not None and len(self.class_weights) != self.num_labels:
            raise ValueError(f"{len(self.class_weights)} class weights for {self.num_labels} labels.")


class AudioModelWithLSTMHead(PreTrainedModel):
    """Audio encoder + LSTM over its frames + pooling over valid frames + linear output (see module docstring)."""

    config_class = AudioLSTMHeadConfig
    base_model_prefix = "audio_head"
    main_input_name = "input_values"
    input_modalities = ("audio",)
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True

    def __init__(self, config: AudioLSTMHeadConfig):
        super().__init__(config)
        self.encoder = AutoModel.from_config(config.encoder_config)
        encoder_size = config.encoder_config.hidden_size
        if config.lstm_num_layers > 0:
            self.lstm = nn.LSTM(
                input_size=encoder_size,
                hidden_size=config.lstm_hidden_size,
                num_layers=config.lstm_num_layers,
                batch_first=True,
                bidirectional=config.lstm_bidirectional,
                dropout=config.lstm_dropout if config.lstm_num_layers > 1 else 0.0,
            )
            pooled_size = config.lstm_hidden_size * (2 if config.lstm_bidirectional else 1)
        else:
            self.lstm = None
            pooled_size = encoder_size
        self.dropout = nn.Dropout(config.head_dropout)
        self.output = nn.Linear(pooled_size, config.num_labels)
        self.post_init()

    @classmethod
    def from_encoder_pretrained(cls, encoder_name_or_path: str, **config_kwargs) -> "AudioModelWithLSTMHead":
        """Build the head around a pretrained encoder (e.g. "alkiskoudounas/voc2vec"); the head starts random.

        `config_kwargs` go to `AudioLSTMHeadConfig` (num_labels, id2label, pooling, problem_type, ...).
        """
        encoder = AutoModel.from_pretrained(encoder_name_or_path)
        model = cls(AudioLSTMHeadConfig(encoder_config=encoder.config, **config_kwargs))
        model.encoder.load_state_dict(encoder.state_dict())
        return model

    def freeze_feature_encoder(self):
        """Stop training the convolutional feature encoder (standard practice when fine-tuning wav2vec 2.0)."""
        self.encoder.feature_extractor._freeze_parameters()

    def freeze_base_model(self):
        """Train only the LSTM and the output layer."""
        for parameter in self.encoder.parameters():
            parameter.requires_grad = False

    def frame_lengths(
        self, input_lengths: torch.Tensor | None, attention_mask: torch.Tensor | None, batch_size: int, num_frames: int
    ) -> torch.Tensor:
        """Valid encoder frames per clip: the conv feature encoder's output length of each clip's true length.

        The true length comes from `input_lengths` (samples, given by `voc2vec.collate.AudioCollator` whatever the
        encoder gets), else from the attention mask; without either, every frame counts (a clip scored alone).
        Group-norm encoders get no attention mask, so the mask alone would count padded frames as valid.
        """
        if input_lengths is None and attention_mask is not None:
            input_lengths = attention_mask.sum(dim=-1)
        if input_lengths is None:
            return torch.full((batch_size,), num_frames, dtype=torch.long)
        lengths = self.encoder._get_feat_extract_output_lengths(input_lengths.cpu()).to(torch.long)
        return lengths.clamp(min=1, max=num_frames)

    def run_lstm(self, frames: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """LSTM over the valid frames only (packed), so padding never feeds into the recurrent state."""
        packed = nn.utils.rnn.pack_padded_sequence(frames, lengths, batch_first=True, enforce_sorted=False)
        packed_outputs, _ = self.lstm(packed)
        outputs, _ = nn.utils.rnn.pad_packed_sequence(packed_outputs, batch_first=True, total_length=frames.shape[1])
        return outputs

    def pool(self, frames: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """`(batch, time, dim)` -> `(batch, dim)` over the first `lengths[i]` frames of each clip."""
        batch_indices = torch.arange(frames.shape[0], device=frames.device)
        lengths = lengths.to(frames.device)
        if self.config.pooling == "first":
            return frames[:, 0]
        if self.config.pooling == "last":
            return frames[batch_indices, lengths - 1]
        valid = torch.arange(frames.shape[1], device=frames.device)[None, :] < lengths[:, None]
        valid = valid.unsqueeze(-1)
        if self.config.pooling == "max":
            return frames.masked_fill(~valid, torch.finfo(frames.dtype).min).amax(dim=1)
        return (frames * valid).sum(dim=1) / lengths[:, None].to(frames.dtype)

    def compute_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.config.problem_type == "regression":
            targets = labels.to(logits.dtype).view_as(logits)
            if self.config.regression_loss == "ccc":
                return ccc_loss(logits, targets)
            return nn.functional.mse_loss(logits, targets)
        weight = None
        if self.config.class_weights is not None:
            weight = torch.tensor(self.config.class_weights, dtype=logits.dtype, device=logits.device)
        return nn.functional.cross_entropy(logits.view(-1, self.config.num_labels), labels.view(-1), weight=weight)

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        input_lengths: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput | tuple:
        r"""
        Args:
            input_values: raw 16 kHz waveforms, `(batch, samples)`, zero-padded to the longest clip.
            attention_mask: 1 for real samples, 0 for padding, for encoders trained with masks.
            input_lengths: true samples per clip; padded frames are excluded from LSTM and pooling (falls back to
                the attention mask, then to all frames).
            labels: class ids `(batch,)` for classification, or float targets `(batch, num_labels)` for regression.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        encoder_outputs = self.encoder(
            input_values,
            attention_mask=attention_mask,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        frames = encoder_outputs.last_hidden_state
        lengths = self.frame_lengths(input_lengths, attention_mask, frames.shape[0], frames.shape[1])
        if self.lstm is not None:
            frames = self.run_lstm(frames, lengths)
        logits = self.output(self.dropout(self.pool(frames, lengths)))

        loss = self.compute_loss(logits, labels) if labels is not None else None
        if not return_dict:
            output = (logits, encoder_outputs.hidden_states, encoder_outputs.attentions)
            output = tuple(value for value in output if value is not None)
            return ((loss,) + output) if loss is not None else output
        return SequenceClassifierOutput(
            loss=loss,
            logits=logits,
            hidden_states=encoder_outputs.hidden_states,
            attentions=encoder_outputs.attentions,
        )


AutoConfig.register(AudioLSTMHeadConfig.model_type, AudioLSTMHeadConfig, exist_ok=True)
AutoModelForAudioClassification.register(AudioLSTMHeadConfig, AudioModelWithLSTMHead, exist_ok=True)


# ---------------------------------------------------------------------------------------------------------------------
# Losses for the built-in heads, through `Trainer(compute_loss_func=...)`
# ---------------------------------------------------------------------------------------------------------------------


def balanced_class_weights(labels: Sequence[int], num_labels: int) -> list[float]:
    """scikit-learn's "balanced" weights `n_clips / (num_labels * clips_of_class)`, as in the seed repo's weighted
    cross-entropy. A class absent from `labels` gets weight 0 (it cannot contribute to the loss anyway)."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_labels).astype(np.float64)
    weights = np.zeros(num_labels)
    present = counts > 0
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights.tolist()


def ccc_loss_func(outputs, labels: torch.Tensor, num_items_in_batch: int | None = None) -> torch.Tensor:
    """`Trainer(compute_loss_func=ccc_loss_func)`: 1 - mean CCC between logits and float targets.

    CCC is a batch statistic, so `num_items_in_batch` (gradient-accumulation token counting) does not apply.
    """
    logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
    return ccc_loss(logits, labels.to(logits.dtype).view_as(logits))


def make_weighted_cross_entropy_loss_func(
    class_weights: Sequence[float],
) -> Callable[..., torch.Tensor]:
    """`Trainer(compute_loss_func=make_weighted_cross_entropy_loss_func(weights))`: class-weighted cross-entropy
    for models whose built-in loss is unweighted (e.g. `Wav2Vec2ForSequenceClassification`)."""
    weights = torch.tensor(list(class_weights), dtype=torch.float32)

    def weighted_cross_entropy(outputs, labels: torch.Tensor, num_items_in_batch: int | None = None) -> torch.Tensor:
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        weight = weights.to(device=logits.device, dtype=logits.dtype)
        return nn.functional.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1), weight=weight)

    return weighted_cross_entropy

