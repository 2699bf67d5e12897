"""Numbers people publish, checked against references on what the runs wrote.

- every fold's probabilities equal a plain `AutoModelForAudioClassification` + feature-extractor forward of each
  test clip alone, with the model the fold saved;
- every metric (per fold, mean, population std, pooled) equals scikit-learn on the written predictions;
- the paper protocol trains on 7 s clips padded before normalization, scores UAR as scikit-learn's macro recall
  and trains the CNN encoder; the leak-free default keeps it frozen;
- result files are portable (relative paths, no pickles) and TensorBoard logs outlive the fold's checkpoints.
"""

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score, recall_score
from transformers import AutoConfig, AutoFeatureExtractor, AutoModelForAudioClassification, set_seed

import run_cv
import voc2vec.finetune
from cv_fixtures import TINY_MODEL, fast_training_flags, write_tone_corpus
from voc2vec.audio import load_audio

pytestmark = pytest.mark.slow
MAX_SAMPLES = 8000  # fast_training_flags' --max_duration 0.5 at 16 kHz


@pytest.fixture(scope="module")
def tone_csv(tmp_path_factory):
    return write_tone_corpus(tmp_path_factory.mktemp("tones"))


def cv_flags(tone_csv, output_dir, cache_dir, *extra):
    return ["--dataset_name", "csv", "--data_files", str(tone_csv), "--speaker_column", "speaker", "--num_folds", "3",
            "--validation_fraction", "0.5", "--print_results", "false", *fast_training_flags(output_dir, cache_dir), *extra]


@pytest.fixture(scope="module")
def leak_free_run(tone_csv, tmp_path_factory):
    root = tmp_path_factory.mktemp("leak-free")
    output_dir = root / "run"
    argv = cv_flags(tone_csv, output_dir, root / "cache", "--save_fold_models", "true", "--report_to", "tensorboard",
                    "--num_train_epochs", "2")
    assert run_cv.main(argv) == 0
    return output_dir


def fold_predictions(output_dir, fold):
    return pd.read_csv(output_dir / f"fold_{fold:02d}" / "predictions.csv", keep_default_na=False)


def model_folder(output_dir, fold):
    return output_dir / ("model" if fold == 0 else f"fold_{fold:02d}/model")


def test_predictions_equal_each_test_clip_scored_alone(leak_free_run):
    config = json.loads((leak_free_run / "cv_config.json").read_text())
    for fold in range(3):
        folder = model_folder(leak_free_run, fold)
        model = AutoModelForAudioClassification.from_pretrained(folder).eval()
        feature_extractor = AutoFeatureExtractor.from_pretrained(folder)
        predictions = fold_predictions(leak_free_run, fold)
        names = [model.config.id2label[index] for index in range(model.config.num_labels)]
        for _, row in predictions.iterrows():
            audio = load_audio(f"{config['corpus_root']}/{row['path']}")[:MAX_SAMPLES]  # evaluation takes the start
            inputs = feature_extractor(audio, sampling_rate=16000, return_tensors="pt")
            with torch.no_grad():
                probabilities = torch.softmax(model(**inputs).logits[0], dim=-1).numpy()
            np.testing.assert_allclose(row[[f"prob_{name}" for name in names]].to_numpy(float), probabilities, atol=1e-5)
            assert row["prediction"] == names[int(probabilities.argmax())]


def test_every_metric_equals_scikit_learn_on_the_written_predictions(leak_free_run):
    summary = json.loads((leak_free_run / "summary.json").read_text())
    per_fold = []
    for fold in range(3):
        table = fold_predictions(leak_free_run, fold)
        y_true, y_pred = table["label"], table["prediction"]
        expected = {
            "accuracy": accuracy_score(y_true, y_pred),
            "uar": recall_score(y_true, y_pred, labels=sorted(set(y_true)), average="macro", zero_division=0),
            "macro_f1": f1_score(y_true, y_pred, average="macro", zero_division=0),
        }
        written = json.loads((leak_free_run / f"fold_{fold:02d}" / "metrics.json").read_text())["test"]
        for name, value in expected.items():
            assert math.isclose(written[name], value, abs_tol=1e-12), (fold, name)
        per_fold.append(expected)
    for name in ("accuracy", "uar", "macro_f1"):
        values = [fold[name] for fold in per_fold]
        assert math.isclose(summary["mean"][name], np.mean(values), abs_tol=1e-12)
        assert math.isclose(summary["std"][name], np.std(values, ddof=0), abs_tol=1e-12)  # population std, as declared
    everything = pd.concat([fold_predictions(leak_free_run, fold) for fold in range(3)])
    pooled = summary["pooled"]
    assert pooled["num_clips"] == len(everything) == 36
    assert math.isclose(pooled["accuracy"], accuracy_score(everything["label"], everything["prediction"]), abs_tol=1e-12)
    assert math.isclose(pooled["uar"], recall_score(everything["label"], everything["prediction"], average="macro"), abs_tol=1e-12)
    assert math.isclose(pooled["macro_f1"], f1_score(everything["label"], everything["prediction"], average="macro"), abs_tol=1e-12)
    results = pd.read_csv(leak_free_run / "results.csv").set_index("fold")
    assert math.isclose(results.loc["pooled", "uar"], pooled["uar"], abs_tol=1e-12)
    assert "| **pooled** |" in (leak_free_run / "results.md").read_text()


def test_result_files_are_portable(leak_free_run):
    config = json.loads((leak_free_run / "cv_config.json").read_text())
    for table in (pd.read_csv(leak_free_run / "splits.csv"), fold_predictions(leak_free_run, 1)):
        assert all(not path.startswith("/") and path.startswith("clips/") for path in table["path"])
    assert (pd.read_csv(leak_free_run / "splits.csv")["path"].map(lambda path: f"{config['corpus_root']}/{path}")
            .map(lambda path: __import__("os").path.isfile(path)).all())
    assert not list(leak_free_run.rglob("training_args.bin"))  # no pickles in what users share
    assert json.loads((leak_free_run / "model" / "training_info.json").read_text())["dataset"] == "csv"


def test_tensorboard_logs_outlive_the_folds_checkpoints(leak_free_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logs = leak_free_run / "fold_00" / "logs"
    assert not (leak_free_run / "fold_00" / "checkpoints").exists()
    events = EventAccumulator(str(logs))
    events.Reload()
    uar = [event.value for event in events.Scalars("eval/uar")]
    metrics = json.loads((leak_free_run / "fold_00" / "metrics.json").read_text())
    assert len(uar) == metrics["epochs_trained"] == 2
    assert any(math.isclose(metrics["validation"]["uar"], value, rel_tol=1e-6) for value in uar)  # float32 in the logs
    # Logged every epoch: the group-norm model's batches are cropped to their shortest clip, never padded.
    padded, cropped = metrics["padded_share_of_training_audio"], metrics["cropped_share_of_training_audio"]
    assert padded == [0.0, 0.0] and len(cropped) == 2 and all(0 < share < 0.5 for share in cropped)


def initial_encoder_weights(**config_overrides):
    """The tiny model's weights at initialization, as a fold builds it (same seed, same architecture)."""
    config = AutoConfig.from_pretrained(TINY_MODEL)
    config.update({"num_labels": 3, **config_overrides})
    set_seed(42)
    return AutoModelForAudioClassification.from_config(config).state_dict()


def conv_weights(state_dict):
    return {name: value for name, value in state_dict.items() if "feature_extractor.conv_layers" in name}


def test_the_cnn_encoder_stays_frozen_by_default(leak_free_run):
    trained = AutoModelForAudioClassification.from_pretrained(leak_free_run / "model").state_dict()
    initial = initial_encoder_weights()
    for name, value in conv_weights(initial).items():
        assert torch.equal(trained[name], value), name
    assert not torch.equal(trained["classifier.weight"], initial["classifier.weight"])  # the rest did train


def test_paper_protocol_end_to_end(tone_csv, tmp_path, monkeypatch):
    """7 s clips, zero-padded then normalized (as the seed), scikit-learn's UAR, the CNN encoder trained."""
    seen = []
    real_collator = voc2vec.finetune.AudioCollator

    class RecordingCollator(real_collator):
        def __call__(self, items):
            batch = super().__call__(items)
            seen.append(batch["input_values"])
            return batch

    monkeypatch.setattr(voc2vec.finetune, "AudioCollator", RecordingCollator)
    argv = cv_flags(tone_csv, tmp_path / "paper", tmp_path / "cache", "--protocol", "voc2vec-paper", "--save_fold_models", "true")
    argv = argv[: argv.index("--max_duration")] + argv[argv.index("--max_duration") + 2 :]
    assert run_cv.main(argv) == 0
    assert seen and all(batch.shape[-1] == 7 * 16000 for batch in seen)
    for batch in seen:  # each clip normalized over its whole 7 s, padding included (the seed's order)
        np.testing.assert_allclose(batch.mean(dim=-1).numpy(), 0, atol=1e-4)
        np.testing.assert_allclose(batch.std(dim=-1, unbiased=False).numpy(), 1, atol=1e-3)
    for fold in range(3):
        table = fold_predictions(tmp_path / "paper", fold)
        written = json.loads((tmp_path / "paper" / f"fold_{fold:02d}" / "metrics.json").read_text())
        # UAR as the seed computes it: scikit-learn's macro recall over true and predicted classes alike.
        assert math.isclose(written["test"]["uar"], recall_score(table["label"], table["prediction"], average="macro", zero_division=0))
        assert "macro_f1" in written["validation"]
    cv_config = json.loads((tmp_path / "paper" / "cv_config.json").read_text())
    assert cv_config["settings"]["metric_for_best_model"] == "macro_f1" and cv_config["uar_over"] == "union"
    summary = json.loads((tmp_path / "paper" / "summary.json").read_text())
    assert "recall_score(average='macro')" in summary["uar_definition"]  # the reports say which UAR they give
    trained = AutoModelForAudioClassification.from_pretrained(tmp_path / "paper" / "model").state_dict()
    changed = [name for name, value in conv_weights(initial_encoder_weights()).items() if not torch.equal(trained[name], value)]
    assert changed  # the seed never freezes the CNN feature encoder
