"""Tiny saved models and audio files for the inference, card, hub and CLI tests.

`save_classifier` writes a model folder as the scripts leave one (config with label names, safetensors weights,
feature extractor), with random weights from `configs/models/tiny-*.json`; its output layer is scaled up so that the
probabilities differ from uniform and a wrong clip or class order shows. `write_clips` writes files of several
lengths, rates and channel counts, with some lengths repeated so that clips share batches.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile
import torch
from transformers import AutoConfig, AutoModelForAudioClassification, Wav2Vec2FeatureExtractor

ROOT = Path(__file__).resolve().parent.parent
TINY_WAV2VEC2 = ROOT / "configs" / "models" / "tiny-wav2vec2.json"
LABELS = ["laugh", "cry", "scream"]


def encoder_config(layer_norm: bool = False):
    config = AutoConfig.from_pretrained(TINY_WAV2VEC2)
    if layer_norm:  # like wav2vec 2.0 large-lv60 / WavLM: trained with attention masks, so batches may be padded
        config.update({"feat_extract_norm": "layer", "do_stable_layer_norm": True, "conv_bias": True})
    return config


def feature_extractor_for(layer_norm: bool = False, normalize: bool = True) -> Wav2Vec2FeatureExtractor:
    return Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=normalize,
                                    return_attention_mask=layer_norm)


def save_classifier(folder: Path, labels=LABELS, head: str = "standard", layer_norm: bool = False, regression: bool = False,
                    seed: int = 0) -> Path:
    """A classifier folder: `head` "standard" (Wav2Vec2ForSequenceClassification) or "lstm" (voc2vec.heads)."""
    from voc2vec.heads import AudioLSTMHeadConfig, AudioModelWithLSTMHead

    torch.manual_seed(seed)
    id2label = dict(enumerate(labels))
    label2id = {name: index for index, name in id2label.items()}
    config = encoder_config(layer_norm)
    if head == "lstm" or regression:
        model = AudioModelWithLSTMHead(AudioLSTMHeadConfig(
            encoder_config=config, lstm_hidden_size=16, lstm_num_layers=1 if head == "lstm" else 0, num_labels=len(labels),
            id2label=id2label, label2id=label2id, problem_type="regression" if regression else "single_label_classification",
        ))
        output = model.output
    else:
        config.update({"num_labels": len(labels), "id2label": id2label, "label2id": label2id})
        model = AutoModelForAudioClassification.from_config(config)
        output = model.classifier
    with torch.no_grad():
        output.weight.mul_(40.0)  # clearly non-uniform probabilities
    model.eval()
    model.save_pretrained(folder)
    feature_extractor_for(layer_norm).save_pretrained(folder)
    return Path(folder)


def write_audio(path: Path, seconds: float, sampling_rate: int = 16000, channels: int = 1, seed: int = 0, frequency: float = 440.0) -> Path:
    rng = np.random.default_rng(seed)
    time = np.arange(int(round(seconds * sampling_rate))) / sampling_rate
    tone = 0.3 * np.sin(2 * np.pi * frequency * time) + 0.05 * rng.standard_normal(len(time))
    samples = np.stack([tone] * channels, axis=1) if channels > 1 else tone
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, samples.astype(np.float32), sampling_rate, subtype="PCM_16")
    return path


# (name, seconds, sampling rate, channels): repeated lengths share batches; 8 kHz, 44.1 kHz stereo, flac and a
# subfolder come the way users' folders do.
CLIP_SPECS = [
    ("a.wav", 0.8, 16000, 1), ("b.wav", 1.2, 16000, 1), ("c.wav", 0.8, 16000, 1), ("d.flac", 1.0, 8000, 1),
    ("sub/e.wav", 0.8, 16000, 1), ("sub/f.wav", 0.65, 44100, 2), ("g.wav", 1.2, 16000, 1),
]


def write_clips(folder: Path, specs=CLIP_SPECS) -> list[Path]:
    return [write_audio(folder / name, seconds, rate, channels, seed=index, frequency=200 + 150 * index)
            for index, (name, seconds, rate, channels) in enumerate(specs)]


def write_summary(run_dir: Path, **overrides) -> dict:
    """A run_cv.py `summary.json` (the keys it documents), with values that differ per metric."""
    summary = {
        "dataset": "demo", "dataset_config": None, "model_name_or_path": "facebook/wav2vec2-base", "protocol": "speaker-cv",
        "protocol_note": "leak-free: best epoch chosen on a validation split carved from the training folds; test fold scored once.",
        "num_folds": 5, "fold_kind": "stratified, speaker-disjoint (12 speakers)", "seed": 42, "std_kind": "population",
        "std_type": "population standard deviation over folds (ddof=0)", "task": "classification",
        "head": "mean-pool + linear (Wav2Vec2ForSequenceClassification)", "label_names": LABELS,
        "mean": {"uar": 0.61234, "accuracy": 0.70125, "macro_f1": 0.58761},
        "std": {"uar": 0.0512, "accuracy": 0.0433, "macro_f1": 0.0602},
        "pooled": {"uar": 0.605, "accuracy": 0.7, "macro_f1": 0.581},
        "per_fold": [{"fold": fold, "uar": 0.6 + 0.01 * fold} for fold in range(5)],
        "complete": True,
        "confusion_matrix_summed_over_folds": [[30, 5, 5], [4, 50, 6], [3, 2, 15]],
    }
    summary.update(overrides)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
