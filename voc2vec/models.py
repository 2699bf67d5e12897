"""Building and loading the model a run fine-tunes: the encoder (Hub id, local folder, `run_pretraining.py`
export, or a model config JSON for random initialization) with its head and its feature extractor.

`check_model_source` loads the config and feature extractor only (seconds, no weights), so a wrong name fails
before any audio is decoded; `build_model` makes the model for one run, labelled with the corpus's class names
so that `pipeline("audio-classification", model=dir)` reports them.
"""

from __future__ import annotations

import copy
import json
import logging
import os

from transformers import AutoConfig, AutoFeatureExtractor, AutoModelForAudioClassification, Wav2Vec2FeatureExtractor

from voc2vec.errors import UserError
from voc2vec.heads import AudioLSTMHeadConfig, AudioModelWithLSTMHead
from voc2vec.tasks import REGRESSION, TaskCorpus

logger = logging.getLogger(__name__)


class ModelLoadError(UserError):
    """The model named by --model_name_or_path cannot be loaded."""


def is_config_file(model_name_or_path: str) -> bool:
    return model_name_or_path.endswith(".json") and os.path.isfile(model_name_or_path)


def check_model_source(model_args):
    """Load the model's config and feature extractor (seconds, no weights) so a wrong name fails before training."""
    source = model_args.model_name_or_path
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
        if not is_config_file(source):
            raise ModelLoadError("--config_overrides applies to random initialization from a model config file only",
                                 where="--config_overrides", fix="drop it, or pass a config file as --model_name_or_path")
        try:
            overrides = json.loads(model_args.config_overrides)
        except json.JSONDecodeError as error:
            raise ModelLoadError(f"not a JSON object: {error.msg}", where="--config_overrides",
                                 fix="write it as '{\"field\": value}'") from error
        if not isinstance(overrides, dict):
            raise ModelLoadError("not a JSON object", where="--config_overrides", fix="write it as '{\"field\": value}'")
        unknown = [key for key in overrides if not hasattr(config, key)]
        if unknown:
            raise ModelLoadError(f"{type(config).__name__} has no field(s) {unknown}", where="--config_overrides",
                                 fix="use fields of the model config")
        config.update(overrides)
    return config, load_feature_extractor(source, config, model_args.model_cache_dir)


def load_feature_extractor(source: str, config, cache_dir: str | None = None):
    """The model's own feature extractor; for a config file (or a directory without one), wav2vec 2.0's defaults,
    with an attention mask only for models whose conv encoder uses layer norm (the ones trained with masks)."""
    if not is_config_file(source):
        try:
            return AutoFeatureExtractor.from_pretrained(source, cache_dir=cache_dir)
        except (OSError, ValueError):
            logger.info("No feature extractor saved with %s: using wav2vec 2.0 defaults.", source)
    encoder_config = getattr(config, "encoder_config", None) or config
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
    model's: `voc2vec.losses.TaskLoss` computes it for every head alike."""
    source = model_args.model_name_or_path
    id2label = dict(enumerate(corpus.label_names))
    label2id = {name: class_id for class_id, name in id2label.items()}
    labels = {"num_labels": len(id2label), "id2label": id2label, "label2id": label2id}

    if uses_voc2vec_head(model_args, corpus, config):
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
