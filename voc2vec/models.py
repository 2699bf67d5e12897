"""Building and loading the model a run fine-tunes or probes: the encoder (Hub id, local folder,
`run_pretraining.py` export, or a model config JSON for random initialization) with its head and its feature
extractor, or a feature baseline (`opensmile:<set>`, `emotion2vec:<id>`) in the model's place.

`check_model_source` loads the config and feature extractor only (seconds, no weights), so a wrong name fails
before any audio is decoded; `build_model` makes the model for one fine-tuning run, labelled with the corpus's
class names so that `pipeline("audio-classification", model=dir)` reports them; `load_encoder` gives probing the
bare encoder whose hidden states it pools.

Waveform encoders (wav2vec 2.0, HuBERT, WavLM, data2vec-audio) and spectrogram encoders (Whisper's encoder through
`WhisperForAudioClassification`, AST) are built the same way; a model config file of a spectrogram model gets
the feature extractor its config implies (mel bins, fixed input length).
"""

from __future__ import annotations

import copy
import json
import logging
import os

from huggingface_hub.errors import StrictDataclassError
from transformers import (
    ASTFeatureExtractor,
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForAudioClassification,
    Wav2Vec2FeatureExtractor,
    WhisperFeatureExtractor,
    set_seed,
)

from voc2vec.baselines.sources import (
    check_feature_baseline,
    feature_baseline_kind,
    feature_baseline_name,
)
from voc2vec.errors import UserError
from voc2vec.heads import AudioLSTMHeadConfig, AudioModelWithLSTMHead
from voc2vec.tasks import REGRESSION, TaskCorpus

logger = logging.getLogger(__name__)


class ModelLoadError(UserError):
    """The model named by --model_name_or_path cannot be loaded."""


def is_config_file(model_name_or_path: str) -> bool:
    return model_name_or_path.endswith(".json") and os.path.isfile(model_name_or_path)


def check_model_source(model_args):
    """Load the model's config and feature extractor (seconds, no weights) so a wrong name fails before training.

    A feature baseline (`opensmile:<set>`, `emotion2vec:<id>`) has no config: `(None, stand-in)`, whose
    `sampling_rate` (16 kHz) is the rate clips are decoded at. With `--method probe`, `--probe_layer` is checked
    against the encoder's layers here too."""
    source = model_args.model_name_or_path
    if feature_baseline_kind(source):
        return None, check_feature_baseline(source, model_args.probe_layer)
    try:
        config = AutoConfig.from_pretrained(source, cache_dir=model_args.model_cache_dir)
    except (OSError, ValueError, KeyError) as error:
        raise ModelLoadError(
            f"cannot load model '{source}': {str(error).splitlines()[0]}",
            where="--model_name_or_path",
            fix="give a Hub id (with network access, or already in the local cache), a local model directory with a "
            "config.json, or a model config file such as configs/models/tiny-wav2vec2.json",
        ) from error
    if model_args.config_overrides:
        apply_config_overrides(config, source, model_args.config_overrides)
    if model_args.head == "lstm" and model_args.method == "finetune" and is_spectrogram_model(config):
        raise UserError(f"the LSTM head takes waveform encoders, and {config.model_type} takes spectrograms",
                        where="--head lstm", fix="use --head standard, or --method probe")
    if model_args.method == "probe":
        probe_layer_index(model_args.probe_layer, num_hidden_states(config))
        if model_args.probe_head == "logreg" and model_args.probe_layer == "weighted":
            raise UserError("logistic regression fits one layer; the weighted sum of layers is learnt by the torch heads",
                            where="--probe_head logreg", fix="pass --probe_layer last (or an index), or --probe_head linear")
    return config, load_feature_extractor(source, config, model_args.model_cache_dir)


def apply_config_overrides(config, source: str, overrides_text: str) -> None:
    """`--config_overrides` (a JSON object) applied to `config`, every mistake a `ModelLoadError` naming the option: not
    a config file, not JSON, an unknown field, a value of the wrong type (named by its key), fields that disagree."""
    if not is_config_file(source):
        raise ModelLoadError("--config_overrides applies to random initialization from a model config file only",
                             where="--config_overrides", fix="drop it, or pass a config file as --model_name_or_path")
    try:
        overrides = json.loads(overrides_text)
    except json.JSONDecodeError as error:
        raise ModelLoadError(f"not a JSON object: {error.msg}", where="--config_overrides",
                             fix="write it as '{\"field\": value}'") from error
    if not isinstance(overrides, dict):
        raise ModelLoadError("not a JSON object", where="--config_overrides", fix="write it as '{\"field\": value}'")
    unknown = [key for key in overrides if not hasattr(config, key)]
    if unknown:
        raise ModelLoadError(f"{type(config).__name__} has no field(s) {unknown}", where="--config_overrides",
                             fix="use fields of the model config")
    for key, value in overrides.items():  # one at a time, so a refused value is named by its key
        try:
            config.update({key: value})
        except (StrictDataclassError, TypeError, ValueError) as error:  # a value of the wrong type (strict configs)
            cause = error.__cause__ or error
            raise ModelLoadError(f"{key}: {value!r} refused ({cause})", where="--config_overrides",
                                 fix=f"give {key} a value of the type {type(config).__name__} takes") from error
    try:  # fields that must agree (conv_dim, conv_stride, conv_kernel, num_feat_extract_layers): here, not in every fold
        getattr(config, "validate", lambda: None)()
    except (StrictDataclassError, ValueError) as error:
        cause = error.__cause__ or error
        raise ModelLoadError(f"the config with these overrides is inconsistent: {str(cause).splitlines()[0]}",
                             where="--config_overrides", fix="change the fields that must agree together") from error


def num_hidden_states(config) -> int:
    """Hidden states the encoder returns: the input to its first transformer layer, then one per layer."""
    encoder_config = getattr(config, "encoder_config", None) or config
    return int(encoder_config.num_hidden_layers) + 1


def probe_layer_index(probe_layer: str, count: int) -> int | None:
    """`--probe_layer` as a hidden-state index (0: the input to the first layer; negative counts from the last), or
    None for the learned weighted sum of all of them."""
    if probe_layer == "weighted":
        return None
    index = count - 1 if probe_layer == "last" else int(probe_layer)
    if not -count <= index < count:
        raise UserError(f"layer {index} does not exist: this encoder has hidden states 0..{count - 1} (0 is the input "
                        "to the first transformer layer)", where="--probe_layer", fix=f"pass an index from 0 to {count - 1}, last or weighted")
    return index % count


def method_description(model_args) -> str:
    """What a row of a result table is: 'fine-tuned', 'probed layer 6 (linear, mean)', 'probed weighted layers
    (mlp, mean_std)', 'openSMILE eGeMAPSv02 (mlp)', ... (metrics.json's "method")."""
    source = model_args.model_name_or_path
    if feature_baseline_kind(source):
        return f"{feature_baseline_name(source)} ({model_args.probe_head})"
    if model_args.method == "finetune":
        return "fine-tuned"
    layer = {"weighted": "weighted layers", "last": "last layer"}.get(model_args.probe_layer, f"layer {model_args.probe_layer}")
    return f"probed {layer} ({model_args.probe_head}, {model_args.probe_pooling})"


def is_spectrogram_model(config) -> bool:
    """Encoders that take spectrogram frames (Whisper's encoder, AST) rather than the waveform."""
    encoder_config = getattr(config, "encoder_config", None) or config
    return encoder_config.model_type in SPECTROGRAM_MODEL_TYPES


SPECTROGRAM_MODEL_TYPES = ("whisper", "audio-spectrogram-transformer")


def load_feature_extractor(source: str, config, cache_dir: str | None = None):
    """The model's own feature extractor; for a config file (or a directory without one), wav2vec 2.0's defaults,
    with an attention mask only for models whose conv encoder uses layer norm (the ones trained with masks)."""
    if not is_config_file(source):
        try:
            return AutoFeatureExtractor.from_pretrained(source, cache_dir=cache_dir)
        except (OSError, ValueError):
            logger.info("No feature extractor saved with %s: using wav2vec 2.0 defaults.", source)
    encoder_config = getattr(config, "encoder_config", None) or config
    if encoder_config.model_type in SPECTROGRAM_MODEL_TYPES:
        return spectrogram_feature_extractor(encoder_config)
    return Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=16000,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=getattr(encoder_config, "feat_extract_norm", "group") == "layer",
    )


def uses_voc2vec_head(model_args, corpus: TaskCorpus, config) -> bool:
    """The voc2vec head (LSTM or pooled + linear) for --head lstm, for regression (the built-in heads always apply
    cross-entropy), and for a model fine-tuned with it before."""
    return model_args.head == "lstm" or corpus.task == REGRESSION or isinstance(config, AudioLSTMHeadConfig)


def head_description(model) -> str:
    """What the reports call the head."""
    config = model.config
    if isinstance(config, AudioLSTMHeadConfig):
        if config.lstm_num_layers == 0:
            return f"{config.pooling}-pool + linear (voc2vec.heads, {config.problem_type})"
        return (
            f"{config.lstm_num_layers}-layer LSTM (hidden {config.lstm_hidden_size}) + {config.pooling} pooling "
            f"+ linear (voc2vec.heads, {config.problem_type})"
        )
    return f"mean-pool + linear ({type(model).__name__})"


def build_model(model_args, corpus: TaskCorpus, config):
    """The encoder with its head, labels named after the corpus's classes (or targets). The loss is not the
    model's: `voc2vec.losses.TaskLoss` computes it for every head alike.

    Whisper fine-tunes as the stock `WhisperForAudioClassification`, so a saved model loads with
    `AutoModelForAudioClassification` and gives the Hub's scores: like transformers, it mean-pools its whole fixed
    window (30 s for real checkpoints), padding included. Each clip is padded to that window on its own (the
    feature extractor, per clip), so its scores do not depend on its batch mates; probing and `voc2vec embed` pool
    the clip's true frames only."""
    source = model_args.model_name_or_path
    id2label = dict(enumerate(corpus.label_names))
    label2id = {name: class_id for class_id, name in id2label.items()}
    labels = {"num_labels": len(id2label), "id2label": id2label, "label2id": label2id}

    if uses_voc2vec_head(model_args, corpus, config):
        if is_spectrogram_model(config):
            raise UserError(
                f"the voc2vec heads (--head lstm, and every regression task) take waveform encoders, and "
                f"{config.model_type} takes spectrograms", where="--model_name_or_path",
                fix="use --head standard for classification, or --method probe (probing handles regression too)",
            )
        head_options = {
            "lstm_hidden_size": model_args.lstm_hidden_size,
            "lstm_num_layers": model_args.lstm_num_layers if model_args.head == "lstm" else 0,
            "pooling": model_args.pooling,
            "problem_type": "regression" if corpus.task == REGRESSION else "single_label_classification",
            "regression_loss": model_args.regression_loss,
            **labels,
        }
        if isinstance(config, AudioLSTMHeadConfig):  # a voc2vec head model fine-tuned before: keep its head
            model = AudioModelWithLSTMHead.from_pretrained(
                source, cache_dir=model_args.model_cache_dir, ignore_mismatched_sizes=True, **head_options
            )
        elif is_config_file(source):
            model = AudioModelWithLSTMHead(AudioLSTMHeadConfig(encoder_config=config, **head_options))
        else:
            model = AudioModelWithLSTMHead.from_encoder_pretrained(source, **head_options)
    elif is_config_file(source):
        config = copy.deepcopy(config)  # shared by every fold: label it on a copy
        for key, value in labels.items():
            setattr(config, key, value)
        model = AutoModelForAudioClassification.from_config(config)
    else:
        model = AutoModelForAudioClassification.from_pretrained(
            source, cache_dir=model_args.model_cache_dir, ignore_mismatched_sizes=True, **labels
        )
    if model_args.freeze_feature_encoder and hasattr(model, "freeze_feature_encoder"):
        model.freeze_feature_encoder()
    return model


def spectrogram_feature_extractor(config):
    """The feature extractor a spectrogram model's config implies: its mel bins and its fixed input length
    (Whisper: `max_source_positions` encoder frames = twice as many 10 ms mel frames; AST: `max_length` frames)."""
    if config.model_type == "whisper":
        mel_frames = 2 * config.max_source_positions  # the encoder's second convolution has stride 2
        if mel_frames % 100:
            raise ModelLoadError(f"max_source_positions {config.max_source_positions} is not a whole number of half "
                                 "seconds, which WhisperFeatureExtractor needs", where="--model_name_or_path",
                                 fix="use a multiple of 50 (1500: Whisper's 30 s)")
        return WhisperFeatureExtractor(feature_size=config.num_mel_bins, chunk_length=mel_frames // 100)
    return ASTFeatureExtractor(num_mel_bins=config.num_mel_bins, max_length=config.max_length)


def load_encoder(model_args, config, seed: int):
    """The bare encoder whose hidden states probing pools, in evaluation mode: a Hub or local encoder, the encoder
    of a fine-tuned model (its head dropped), Whisper's encoder without its decoder, or a randomly initialized
    encoder from a config file (weights drawn from `seed`, so every fold and rerun probes the same ones)."""
    source = model_args.model_name_or_path
    if is_config_file(source):
        set_seed(seed)
        if isinstance(config, AudioLSTMHeadConfig):
            model = AudioModelWithLSTMHead(config).encoder
        else:
            model = AutoModel.from_config(config)
    elif isinstance(config, AudioLSTMHeadConfig):
        model = AudioModelWithLSTMHead.from_pretrained(source, cache_dir=model_args.model_cache_dir).encoder
    else:
        model = AutoModel.from_pretrained(source, cache_dir=model_args.model_cache_dir)
    if getattr(model.config, "is_encoder_decoder", False):
        model = model.get_encoder()  # Whisper: the encoder is the audio model; the decoder writes text
    return model.eval()
