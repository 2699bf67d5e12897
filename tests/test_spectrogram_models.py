"""Spectrogram-input encoders (Whisper's encoder, AST) in fine-tuning, probing and export, with tiny random models.

A clip's scores never depend on its batch mates (Whisper and AST extractors pad every clip to the model's fixed
input on their own); the collator counts each clip's true feature frames; probing pools Whisper's encoder over the
clip's true frames only, not over the padding to its fixed window, and so does `voc2vec embed` on a saved Whisper
classifier; a fine-tuned model folder reloads with `AutoModelForAudioClassification` and `pipeline` and gives the
scores written to predictions.csv (fine-tuned Whisper pools its padded window, as transformers' class does).
"""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from cv_fixtures import write_tone_corpus
from model_fixtures import write_clips
from transformers import AutoConfig, AutoModelForAudioClassification, pipeline

import run_cv
from voc2vec import cli
from voc2vec.arguments import DataArguments, ModelArguments
from voc2vec.audio import load_audio
from voc2vec.baselines.extractors import corpus_features
from voc2vec.cache import decode_corpus
from voc2vec.collate import AudioCollator, padding_counts
from voc2vec.corpora import load_corpus
from voc2vec.models import check_model_source, load_encoder, load_feature_extractor
from voc2vec.prediction import pads_exactly, predict_logits

CONFIGS = Path(__file__).resolve().parent.parent / "configs" / "models"
MODELS = {"whisper": str(CONFIGS / "tiny-whisper.json"), "ast": str(CONFIGS / "tiny-ast.json")}
LENGTHS = [16000, 4000, 16000, 9000, 2400]  # samples at 16 kHz; the tiny models' fixed inputs: 2 s (Whisper), 1 s (AST)
LABELS = {0: "laugh", 1: "cry", 2: "sigh"}


@pytest.fixture(scope="module")
def tone_csv(tmp_path_factory):
    return write_tone_corpus(tmp_path_factory.mktemp("tones"))


def classifier(kind: str):
    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(MODELS[kind])
    feature_extractor = load_feature_extractor(MODELS[kind], config)
    config.update({"id2label": LABELS, "label2id": {name: index for index, name in LABELS.items()}})
    return AutoModelForAudioClassification.from_config(config).eval(), feature_extractor


def clips():
    rng = np.random.default_rng(3)
    return [(gain * rng.standard_normal(length)).astype(np.float32) for gain, length in zip([0.1, 1.0, 0.5, 2.0, 0.05], LENGTHS)]


@pytest.mark.parametrize("kind", ["whisper", "ast"])
def test_scores_equal_each_clip_scored_alone(kind):
    model, feature_extractor = classifier(kind)
    assert pads_exactly(model.config, feature_extractor)  # fixed-size inputs: batches may mix lengths
    audio = clips()
    batched = predict_logits(model, [{"input_values": clip} for clip in audio], AudioCollator(feature_extractor), LENGTHS,
                             batch_size=8, may_pad=True)
    for index, clip in enumerate(audio):
        inputs = feature_extractor(clip, sampling_rate=16000, return_tensors="pt")
        with torch.no_grad():
            alone = model(**inputs).logits[0].numpy()
        np.testing.assert_allclose(batched[index], alone, atol=1e-4, rtol=0)


def test_collator_counts_true_feature_frames():
    _, whisper = classifier("whisper")
    batch = AudioCollator(whisper, return_input_lengths=True)([{"input_values": clip} for clip in clips()])
    assert batch["input_features"].shape == (5, 16, 200)  # (clips, mel bins, the fixed 2 s of 10 ms frames)
    assert batch["input_lengths"].tolist() == [min(200, math.ceil(length / 160)) for length in LENGTHS]
    assert "attention_mask" not in batch  # Whisper's encoder takes none
    assert padding_counts(batch, fixed_size=True) == (sum(batch["input_lengths"].tolist()), 5 * 200 - sum(batch["input_lengths"].tolist()))
    _, ast = classifier("ast")
    batch = AudioCollator(ast, return_input_lengths=True)([{"input_values": clip} for clip in clips()])
    assert batch["input_values"].shape == (5, 100, 16)  # (clips, the fixed 100 frames, mel bins)
    assert batch["input_lengths"].tolist() == [min(100, 1 + (length - 400) // 160) for length in LENGTHS]


def test_whisper_probe_pools_over_true_frames_only(tone_csv, tmp_path):
    model_args = ModelArguments(model_name_or_path=MODELS["whisper"], method="probe")
    config, feature_extractor = check_model_source(model_args)
    decoded = decode_corpus(load_corpus("csv", data_files=str(tone_csv), cache_dir=str(tmp_path)), cache_dir=tmp_path / "decoded")
    data_args = DataArguments(dataset_name="csv", max_duration=0, corpus_cache_dir=str(tmp_path))
    features = corpus_features(model_args, data_args, decoded, feature_extractor, config, seed=0, batch_size=8).values
    assert features.shape == (36, 3, 32)
    encoder = load_encoder(model_args, config, seed=0)
    for row in (0, 13, 35):
        audio = np.asarray(decoded[row]["audio"], dtype=np.float32)
        inputs = feature_extractor(audio, sampling_rate=16000, return_tensors="pt")
        with torch.no_grad():
            hidden_states = encoder(**inputs, output_hidden_states=True).hidden_states
        true_frames = (math.ceil(len(audio) / 160) - 1) // 2 + 1  # the encoder's stride-2 convolution
        assert true_frames < hidden_states[0].shape[1] / 2  # a 0.3-0.6 s clip fills under a third of the 2 s window
        alone = torch.stack([state[0, :true_frames].mean(dim=0) for state in hidden_states]).numpy()
        np.testing.assert_allclose(features[row], alone, atol=1e-4, rtol=0)
        whole_window = torch.stack([state[0].mean(dim=0) for state in hidden_states]).numpy()
        assert np.abs(features[row] - whole_window).max() > 1e-2  # the padding would have changed the embedding


def test_voc2vec_embed_of_a_whisper_classifier_pools_its_encoder_over_true_frames(tmp_path):
    """`voc2vec embed` on a saved Whisper classifier folder: its encoder's hidden states, each file alone, averaged
    over the file's own frames (not over the padding to the fixed window, which the classifier's head pools)."""
    model, feature_extractor = classifier("whisper")
    model.save_pretrained(tmp_path / "model")
    feature_extractor.save_pretrained(tmp_path / "model")
    paths = write_clips(tmp_path / "clips")
    output = tmp_path / "embeddings.npy"
    assert cli.main(["embed", str(tmp_path / "clips"), "--model", str(tmp_path / "model"), "--output", str(output),
                     "--layer", "all", "--batch_size", "4", "--quiet"]) == 0
    vectors = np.load(output)
    listed = (tmp_path / "embeddings.files.txt").read_text().splitlines()
    assert vectors.shape == (len(paths), 3, 32) and sorted(map(Path, listed)) == sorted(paths)
    for path, vector in zip(listed, vectors):
        audio = load_audio(path, 16000)
        inputs = feature_extractor(audio, sampling_rate=16000, return_tensors="pt")
        with torch.no_grad():
            hidden_states = model.encoder(**inputs, output_hidden_states=True).hidden_states
        true_frames = (math.ceil(len(audio) / 160) - 1) // 2 + 1  # the encoder's stride-2 convolution
        alone = torch.stack([state[0, :true_frames].mean(dim=0) for state in hidden_states]).numpy()
        np.testing.assert_allclose(vector, alone, atol=1e-4, rtol=0)
        whole_window = torch.stack([state[0].mean(dim=0) for state in hidden_states]).numpy()
        assert np.abs(vector - whole_window).max() > 1e-2  # the padding would have changed the embedding


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["whisper", "ast"])
def test_fine_tuned_spectrogram_model_reloads_with_its_scores(kind, tone_csv, tmp_path):
    output = tmp_path / "run"
    flags = ["--model_name_or_path", MODELS[kind], "--dataset_name", "csv", "--data_files", str(tone_csv), "--speaker_column",
             "speaker", "--num_folds", "2", "--validation_fraction", "0.5", "--output_dir", str(output), "--corpus_cache_dir",
             str(tmp_path / "cache"), "--num_train_epochs", "1", "--learning_rate", "1e-3", "--warmup_steps", "0",
             "--per_device_train_batch_size", "8", "--print_results", "false", "--disable_tqdm", "true"]
    assert run_cv.main(flags) == 0
    fold = json.loads((output / "fold_00" / "metrics.json").read_text())
    assert fold["method"] == "fine-tuned" and 0.5 < fold["padded_share_of_training_audio"][0] < 1  # padded to the fixed input
    predictions = pd.read_csv(output / "fold_00" / "predictions.csv")
    label_names = fold["label_names"]
    model = AutoModelForAudioClassification.from_pretrained(output / "model").eval()
    classify = pipeline("audio-classification", model=str(output / "model"), top_k=None)
    root = Path(tone_csv).parent
    for _, row in predictions.head(4).iterrows():
        audio = load_audio(root / row["path"], 16000)
        scores = {entry["label"]: entry["score"] for entry in classify(audio)}
        expected = {name: row[f"prob_{name}"] for name in label_names}
        assert scores == pytest.approx(expected, abs=1e-4)
    assert type(model).__name__ == ("WhisperForAudioClassification" if kind == "whisper" else "ASTForAudioClassification")


@pytest.mark.parametrize("flags, message", [
    (["--head", "lstm"], "the LSTM head takes waveform encoders"),
    (["--method", "probe", "--probe_layer", "5"], "layer 5 does not exist"),
])
def test_spectrogram_option_errors_stop_before_decoding(tone_csv, tmp_path, capsys, flags, message):
    argv = ["--model_name_or_path", MODELS["whisper"], "--dataset_name", "csv", "--data_files", str(tone_csv),
            "--output_dir", str(tmp_path / "run"), "--corpus_cache_dir", str(tmp_path / "cache"), *flags]
    assert run_cv.main(argv) == 2
    assert message in capsys.readouterr().err
