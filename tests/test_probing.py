"""Frozen-encoder probing: the weighted layer sum really trains, the best epoch is the best validation epoch, every
clip's embedding equals the clip embedded alone (wav2vec 2.0, AST), and the feature cache is computed once (a rerun
with another head runs no encoder; an interrupted pass keeps its finished shards) but never outlives the weights of
a local model folder retrained in place. Option mistakes stop the run before any audio is decoded."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from cv_fixtures import TINY_MODEL, write_hume_vb_corpus, write_tone_corpus
from model_fixtures import save_classifier

import run_cv
from voc2vec import embeddings
from voc2vec.arguments import DataArguments, ModelArguments
from voc2vec.audio import load_audio
from voc2vec.baselines import extractors, feature_cache
from voc2vec.baselines.extractors import corpus_features
from voc2vec.baselines.feature_cache import FeatureCache
from voc2vec.baselines.heads import ProbeTraining, train_probe
from voc2vec.cache import decode_corpus
from voc2vec.corpora import load_corpus
from voc2vec.finetune import Split
from voc2vec.metrics import (
    concordance_correlation_coefficient,
    make_classification_compute_metrics,
)
from voc2vec.models import check_model_source, load_encoder

TINY_AST = str(Path(TINY_MODEL).parent / "tiny-ast.json")
LAYER_NORM_OVERRIDES = '{"feat_extract_norm": "layer", "do_stable_layer_norm": true, "conv_bias": true}'


@pytest.fixture(scope="module")
def tone_csv(tmp_path_factory):
    return write_tone_corpus(tmp_path_factory.mktemp("tones"))


def synthetic_features(informative_layer: int, seed: int = 0):
    """5 layers of 16-d noise; only `informative_layer` carries the class (3 classes)."""
    rng = np.random.default_rng(seed)
    targets = rng.integers(0, 3, 300)
    features = rng.standard_normal((300, 5, 16)).astype(np.float32)
    features[:, informative_layer] += rng.standard_normal((3, 16))[targets]
    return features, targets, Split(np.arange(200), np.arange(200, 250), np.arange(250, 300), "synthetic")


def training(layer=None, head="linear", patience=10, epochs=50):
    return ProbeTraining(head=head, layer=layer, task="classification", num_outputs=3, metric="uar", greater_is_better=True,
                         compute_metrics=make_classification_compute_metrics({0: "a", 1: "b", 2: "c"}),
                         learning_rate=1e-2, max_epochs=epochs, patience=patience)


def test_weighted_layer_sum_learns_the_informative_layer():
    features, targets, split = synthetic_features(informative_layer=3)
    trained = train_probe(features, targets, split, training())
    weights = np.asarray(trained.layer_weights)
    assert weights.shape == (5,) and abs(weights.sum() - 1) < 1e-5
    assert weights.argmax() == 3 and weights[3] > 0.5  # from 0.2 each at the start
    assert (trained.test_outputs.argmax(axis=1) == targets[split.test]).mean() > 0.9
    # One chosen layer: the informative one scores, a noise layer does not.
    informative = train_probe(features, targets, split, training(layer=3))
    noise = train_probe(features, targets, split, training(layer=1))
    assert informative.layer_weights is None
    assert (informative.test_outputs.argmax(axis=1) == targets[split.test]).mean() > 0.9
    assert (noise.test_outputs.argmax(axis=1) == targets[split.test]).mean() < 0.6


@pytest.mark.parametrize("head", ["linear", "mlp", "logreg"])
def test_best_epoch_is_the_best_validation_epoch(head):
    features, targets, split = synthetic_features(informative_layer=2, seed=1)
    features += np.random.default_rng(5).standard_normal(features.shape).astype(np.float32) * 2  # a harder task
    trained = train_probe(features, targets, split, training(layer=2, head=head, patience=3, epochs=40))
    scores = [entry["uar"] for entry in trained.history]
    assert trained.validation["uar"] == max(scores)
    assert trained.best_epoch == scores.index(max(scores)) + 1  # the first epoch (or C) that reached it
    if head != "logreg":
        assert trained.epochs_trained in (40, trained.best_epoch + 3)  # stopped 3 epochs after the best, or ran out


def tone_features(tone_csv, tmp_path, pooling="mean", overrides=None, seed=0, model=TINY_MODEL):
    data_args = DataArguments(dataset_name="csv", data_files=[str(tone_csv)], max_duration=0, corpus_cache_dir=str(tmp_path))
    model_args = ModelArguments(model_name_or_path=model, method="probe", probe_pooling=pooling, config_overrides=overrides)
    config, feature_extractor = check_model_source(model_args)
    decoded = decode_corpus(load_corpus("csv", data_files=str(tone_csv), cache_dir=str(tmp_path)), cache_dir=tmp_path / "decoded")
    features = corpus_features(model_args, data_args, decoded, feature_extractor, config, seed=seed, batch_size=8)
    return features, decoded, load_encoder(model_args, config, seed), feature_extractor


@pytest.mark.parametrize("model, overrides, pooling", [
    (TINY_MODEL, None, "mean_std"), (TINY_MODEL, LAYER_NORM_OVERRIDES, "mean"), (TINY_AST, None, "mean_std"),
], ids=["group-norm-mean_std", "layer-norm-masked-mean", "ast-mean_std"])
def test_probe_embeddings_equal_each_clip_embedded_alone(tone_csv, tmp_path, model, pooling, overrides):
    """AST's extractor pads (or cuts) every clip to its fixed input on its own and the model takes no mask, so
    a clip's patch tokens are the same in any batch; its vector is the mean over the patches whose time window starts
    inside the clip's true filter-bank frames (not the class and distillation tokens, nor the padding's patches)."""
    features, decoded, encoder, feature_extractor = tone_features(tone_csv, tmp_path, pooling, overrides, model=model)
    width = encoder.config.hidden_size * (2 if pooling == "mean_std" else 1)
    assert features.values.shape == (len(decoded), 3, width)
    assert len({len(clip) for clip in decoded["audio"]}) > 1  # clips of several lengths: batches would pad
    for row in range(0, len(decoded), 5):
        inputs = feature_extractor(np.asarray(decoded[row]["audio"], dtype=np.float32), sampling_rate=16000, return_tensors="pt")
        with torch.no_grad():
            hidden_states = encoder(**inputs, output_hidden_states=True).hidden_states
        tokens = ast_tokens_of(encoder.config, len(decoded[row]["audio"])) if model == TINY_AST else slice(None)
        alone = torch.stack([state[0][tokens].mean(dim=0) for state in hidden_states]).numpy()
        if pooling == "mean_std":
            alone = np.concatenate([alone, torch.stack([state[0][tokens].std(dim=0, unbiased=False) for state in hidden_states]).numpy()], axis=1)
        np.testing.assert_allclose(features.values[row], alone, atol=1e-4, rtol=0)


def ast_tokens_of(config, samples: int) -> list[int]:
    """The AST tokens of a clip's own audio: after the class and distillation tokens come frequency-major patches;
    time patch t covers filter-bank frames 10t..10t+15 (25 ms windows every 10 ms: 1 + (samples - 400) // 160 frames)."""
    frames = 1 + (samples - 400) // 160
    time_patches = (config.max_length - config.patch_size) // config.time_stride + 1
    frequency_patches = (config.num_mel_bins - config.patch_size) // config.frequency_stride + 1
    inside = [t for t in range(time_patches) if t * config.time_stride < frames]
    assert 0 < len(inside) < time_patches  # the tone clips are shorter than the tiny AST's input: some patches are padding
    return [2 + f * time_patches + t for f in range(frequency_patches) for t in inside]


def test_feature_cache_keeps_finished_shards_and_computes_only_the_rest(tmp_path, monkeypatch):
    monkeypatch.setattr(feature_cache, "ROWS_PER_SHARD", 4)
    cache = FeatureCache(tmp_path, {"model": "m", "corpus": "c"})
    seen = []

    def compute(rows):
        seen.extend(rows.tolist())
        if rows[0] == 8:
            raise KeyboardInterrupt  # killed while computing the third shard
        return np.repeat(rows[:, None, None].astype(np.float32), 2, axis=2)

    with pytest.raises(KeyboardInterrupt):
        cache.load_or_compute(10, compute)
    assert seen == list(range(10)) and not cache.is_complete(10)
    seen.clear()
    values, computed = cache.load_or_compute(10, lambda rows: compute(rows) if rows[0] != 8 else np.zeros((2, 1, 2), np.float32) + rows[:, None, None])
    assert computed == 2 and seen == []  # only rows 8 and 9
    assert values.shape == (10, 1, 2) and values[:, 0, 0].tolist() == list(range(10))
    assert FeatureCache(tmp_path, {"model": "m", "corpus": "other"}).folder != cache.folder  # another identity, another folder
    assert json.loads((cache.folder / "meta.json").read_text())["shape"] == [10, 1, 2]


def probe_flags(tone_csv, output_dir, cache_dir, *extra):
    return ["--model_name_or_path", TINY_MODEL, "--method", "probe", "--dataset_name", "csv", "--data_files", str(tone_csv),
            "--speaker_column", "speaker", "--num_folds", "2", "--validation_fraction", "0.5", "--max_duration", "0.5",
            "--print_results", "false", "--output_dir", str(output_dir), "--corpus_cache_dir", str(cache_dir),
            "--num_train_epochs", "5", "--disable_tqdm", "true", *extra]


def test_another_head_and_layer_read_the_cache_without_running_the_encoder(tone_csv, tmp_path, monkeypatch):
    assert run_cv.main(probe_flags(tone_csv, tmp_path / "weighted", tmp_path / "cache")) == 0
    fold = json.loads((tmp_path / "weighted" / "fold_00" / "metrics.json").read_text())
    assert fold["method"] == "probed weighted layers (linear, mean)"
    assert fold["probe"]["features_computed_clips"] == 36 and abs(sum(fold["probe"]["layer_weights"]) - 1) < 1e-5
    assert fold["probe"]["learning_rate"] == 1e-2  # probing's own default: --learning_rate was not given
    assert not (tmp_path / "weighted" / "model").exists()  # a probe keeps no model folder
    summary = json.loads((tmp_path / "weighted" / "summary.json").read_text())
    assert len(summary["layer_weights"]["per_fold"]) == 2 and (tmp_path / "weighted" / "layer_weights.png").is_file()

    def no_encoder(*args, **kwargs):
        raise AssertionError("the encoder ran although the features are cached")

    monkeypatch.setattr(extractors, "load_encoder", no_encoder)
    assert run_cv.main(probe_flags(tone_csv, tmp_path / "mlp", tmp_path / "cache", "--probe_head", "mlp", "--probe_layer", "1",
                                   "--learning_rate", "0.003")) == 0
    fold = json.loads((tmp_path / "mlp" / "fold_00" / "metrics.json").read_text())
    assert fold["method"] == "probed layer 1 (mlp, mean)" and fold["probe"]["features_computed_clips"] == 0
    assert fold["probe"]["layer"] == 1 and fold["probe"]["layer_weights"] is None and fold["probe"]["learning_rate"] == 0.003
    # Another pooling is another cache entry: the encoder must run.
    assert run_cv.main(probe_flags(tone_csv, tmp_path / "std", tmp_path / "cache", "--probe_pooling", "mean_std")) == 1
    assert "the encoder ran" in json.loads((tmp_path / "std" / "fold_00" / "failed.json").read_text())["error"]


def cached_features(fold: dict) -> np.ndarray:
    """The feature array a probe read, from the cache folder its metrics.json names."""
    folder = Path(fold["probe"]["feature_cache"])
    return np.concatenate([np.load(path) for path in sorted(folder.glob("rows-*.npy"))])


@pytest.mark.slow
def test_a_local_model_folder_is_probed_and_retraining_it_computes_new_features(tone_csv, tmp_path):
    """A saved model folder (here a run_cv.py `model/`: config, safetensors weights, feature extractor) is probed
    with its own weights; saving other weights into the same folder (same size) must not serve the old features."""
    folder = save_classifier(tmp_path / "model", labels=["low", "mid", "high"], seed=0)

    def probe_folder(name):
        flags = probe_flags(tone_csv, tmp_path / name, tmp_path / "cache", "--num_train_epochs", "1")
        flags[1] = str(folder)
        assert run_cv.main(flags) == 0
        return json.loads((tmp_path / name / "fold_00" / "metrics.json").read_text())

    first = probe_folder("first")
    assert first["probe"]["features_computed_clips"] == 36 and first["method"] == "probed weighted layers (linear, mean)"
    encoder, feature_extractor = embeddings.load_encoder(folder)
    clip = load_audio(Path(tone_csv).parent / pd.read_csv(tone_csv)["path"][0], 16000)[:8000]  # --max_duration 0.5
    np.testing.assert_allclose(cached_features(first)[0], embeddings.embed_clips(encoder, feature_extractor, [clip], layers="all")[0],
                               atol=1e-4, rtol=0)  # the folder's weights, not a random initialization
    assert probe_folder("again")["probe"]["features_computed_clips"] == 0  # unchanged folder: from the cache

    save_classifier(folder, labels=["low", "mid", "high"], seed=1)  # retrained in place
    retrained = probe_folder("retrained")
    assert retrained["probe"]["features_computed_clips"] == 36
    assert retrained["probe"]["feature_cache"] != first["probe"]["feature_cache"]
    assert np.abs(cached_features(retrained) - cached_features(first)).max() > 1e-2


@pytest.mark.parametrize("flags, message", [
    (["--probe_layer", "3"], "layer 3 does not exist: this encoder has hidden states 0..2"),
    (["--probe_head", "logreg"], "logistic regression fits one layer"),
])
def test_probe_options_are_checked_before_decoding(tone_csv, tmp_path, capsys, flags, message):
    assert run_cv.main(probe_flags(tone_csv, tmp_path / "run", tmp_path / "cache", *flags)) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "cache" / "decoded").exists()


def test_regression_probe_on_official_splits(tmp_path, capsys):
    """A-VB-style regression (Valence, Arousal; official split, test labels withheld): the probe trains with the CCC
    loss, picks its epoch by validation mean CCC, and its reported CCCs are those of the written predictions."""

    data_dir = write_hume_vb_corpus(tmp_path / "avb", {"Train": 60, "Val": 20, "Test": 4})

    def flags(head, output, cache="cache"):
        return ["--model_name_or_path", "opensmile:eGeMAPSv02", "--probe_head", head, "--dataset_name", "hume_vb",
                "--dataset_config_name", "two", "--data_dir", str(data_dir), "--output_dir", str(output),
                "--corpus_cache_dir", str(tmp_path / cache), "--num_train_epochs", "30", "--validation_fraction", "0.2",
                "--print_results", "false"]

    # Logistic regression classifies: refused for regression when the run is planned, naming the option and the task.
    assert run_cv.main(flags("logreg", tmp_path / "logreg", cache="logreg-cache")) == 2
    error = capsys.readouterr().err
    assert "--probe_head logreg" in error and "regression task" in error
    assert not (tmp_path / "logreg-cache" / "decoded").exists() and not (tmp_path / "logreg" / "fold_00").exists()

    output = tmp_path / "run"
    assert run_cv.main(flags("linear", output)) == 0
    fold = json.loads((output / "fold_00" / "metrics.json").read_text())
    assert fold["task"] == "regression" and "withheld" in fold["evaluated_on"]
    assert fold["validation"]["mean_ccc"] == max(entry["mean_ccc"] for entry in fold["probe"]["history"])
    predictions = pd.read_csv(output / "fold_00" / "predictions.csv")
    for name in ("Valence", "Arousal"):
        expected = concordance_correlation_coefficient(predictions[f"prediction_{name}"], predictions[f"label_{name}"])
        assert fold["test"][f"ccc_{name}"] == pytest.approx(expected, abs=1e-6)
    assert fold["test"]["mean_ccc"] > 0.5  # eGeMAPS's pitch features follow the tones' pitch, which sets the targets
