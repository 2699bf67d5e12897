"""run_classification.py end to end with a tiny random model on generated fixture corpora."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from transformers import AutoModelForAudioClassification, pipeline

import run_classification
import voc2vec.heads  # noqa: F401  (registers the LSTM head with the Auto classes)
from cv_fixtures import TONE_CLASSES, fast_training_flags, write_hume_vb_corpus, write_tone_corpus
from voc2vec.arguments import DataArguments, FineTuningTrainingArguments, ModelArguments, parse_arguments
from voc2vec.errors import UserError
from voc2vec.finetune import best_model_metric, training_arguments_for
from voc2vec.tasks import CLASSIFICATION, REGRESSION, TaskCorpus


@pytest.fixture(scope="module")
def tone_csv(tmp_path_factory):
    return write_tone_corpus(tmp_path_factory.mktemp("tones"))


@pytest.fixture(scope="module")
def hume_vb_dir(tmp_path_factory):
    return write_hume_vb_corpus(tmp_path_factory.mktemp("hume_vb"))


@pytest.mark.slow
def test_outputs_load_with_from_pretrained_and_pipeline(tone_csv, tmp_path):
    output_dir = tmp_path / "run"
    argv = ["--dataset_name", "csv", "--data_files", str(tone_csv), "--speaker_column", "speaker",
            "--test_fraction", "0.25", "--validation_fraction", "0.34", *fast_training_flags(output_dir, tmp_path / "cache")]
    assert run_classification.main(argv) == 0

    label_names = sorted(TONE_CLASSES)
    metrics = json.loads((output_dir / "metrics.json").read_text())
    assert metrics["task"] == "classification" and metrics["label_names"] == label_names
    assert {"uar", "accuracy", "macro_f1"} <= set(metrics["test"]) and "uar" in metrics["validation"]
    assert np.asarray(metrics["confusion_matrix"]).shape == (3, 3)
    assert not (output_dir / "checkpoints").exists()  # per-epoch checkpoints are not kept

    predictions = pd.read_csv(output_dir / "predictions.csv")
    assert list(predictions.columns) == ["path", "speaker", "label", "prediction"] + [f"prob_{name}" for name in label_names]
    assert len(predictions) == metrics["num_clips"]["test"]
    assert np.allclose(predictions.filter(like="prob_").sum(axis=1), 1.0, atol=1e-4)
    # speaker-disjoint: no test speaker was trained on (4 speakers, a quarter held out)
    assert predictions["speaker"].nunique() == 1

    model = AutoModelForAudioClassification.from_pretrained(output_dir)
    assert [model.config.id2label[index] for index in range(3)] == label_names
    classifier = pipeline("audio-classification", model=str(output_dir))
    scores = classifier({"raw": np.zeros(8000, dtype=np.float32), "sampling_rate": 16000})
    assert {score["label"] for score in scores} == set(label_names)


@pytest.mark.slow
def test_regression_with_ccc_loss_and_lstm_head(hume_vb_dir, tmp_path):
    """A-VB High shape: 10 targets, official Train/Val/Test with the test labels withheld -> scored on Val."""
    output_dir = tmp_path / "avb"
    argv = ["--dataset_name", "hume_vb", "--dataset_config_name", "high", "--data_dir", str(hume_vb_dir),
            "--head", "lstm", "--lstm_hidden_size", "16", "--pooling", "max", "--regression_loss", "ccc",
            *fast_training_flags(output_dir, tmp_path / "cache")]
    assert run_classification.main(argv) == 0

    metrics = json.loads((output_dir / "metrics.json").read_text())
    assert metrics["task"] == "regression"
    assert "official validation split" in metrics["evaluated_on"] and "withheld" in metrics["evaluated_on"]
    assert metrics["num_clips"]["test"] == 8  # the Val clips; the 4 unlabelled Test clips are never scored
    assert "LSTM" in metrics["head"] and "max pooling" in metrics["head"]
    assert {f"ccc_{name}" for name in ("Awe", "Surprise")} <= set(metrics["test"]) and "mean_ccc" in metrics["test"]
    assert "mean_ccc" in metrics["validation"]  # the best epoch is chosen by mean CCC, not a classification metric
    predictions = pd.read_csv(output_dir / "predictions.csv")
    assert {"label_Awe", "prediction_Awe"} <= set(predictions.columns)

    model = AutoModelForAudioClassification.from_pretrained(output_dir)
    assert type(model).__name__ == "AudioModelWithLSTMHead"
    assert model.config.lstm_num_layers == 2 and model.config.pooling == "max" and model.config.num_labels == 10


def test_config_file_then_flags_override(tmp_path):
    config = tmp_path / "run.yaml"
    metadata = tmp_path / "a.csv"
    metadata.write_text("path,label\n")
    config.write_text(yaml.safe_dump({"dataset_name": "csv", "num_train_epochs": 5, "data_files": [str(metadata)], "output_dir": "x"}))
    model_args, data_args, training_args, grid = parse_arguments(
        (ModelArguments, DataArguments, FineTuningTrainingArguments), [str(config), "--num_train_epochs", "2"]
    )
    assert training_args.num_train_epochs == 2 and data_args.data_files == [str(metadata)] and grid is None
    assert training_args.explicit_fields == {"num_train_epochs", "output_dir"} and "freeze_feature_encoder" not in model_args.explicit_fields
    # the paper's defaults where the file says nothing
    assert training_args.per_device_train_batch_size == 16 and training_args.learning_rate == 1e-4
    assert training_args.warmup_steps == 500 and training_args.metric_for_best_model == "uar"
    assert model_args.freeze_feature_encoder and model_args.early_stopping_patience == 5


def test_missing_label_column_stops_before_training(tone_csv, tmp_path, capsys):
    argv = ["--dataset_name", "csv", "--data_files", str(tone_csv), "--label_column", "emotion",
            *fast_training_flags(tmp_path / "run", tmp_path / "cache")]
    assert run_classification.main(argv) == 2
    assert "emotion" in capsys.readouterr().err
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_unloadable_model_stops_before_training(tone_csv, tmp_path, capsys):
    argv = ["--dataset_name", "csv", "--data_files", str(tone_csv), "--speaker_column", "speaker",
            *fast_training_flags(tmp_path / "run", tmp_path / "cache"), "--model_name_or_path", str(tmp_path / "no-such-model")]
    assert run_classification.main(argv) == 2
    assert "--model_name_or_path" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_best_model_metric_direction_and_unknown_name():
    regression = TaskCorpus("avb", None, REGRESSION, ["Awe", "Fear"], np.zeros((4, 2)), [""] * 4)
    classification = TaskCorpus("tones", None, CLASSIFICATION, ["a", "b"], np.zeros(4, dtype=np.int64), [""] * 4)
    for metric, greater in (("mse", False), ("mean_ccc", True), ("uar", True)):
        args = training_arguments_for(FineTuningTrainingArguments(output_dir="x", metric_for_best_model=metric), Path("x"), regression)
        assert args.greater_is_better is greater, metric  # "uar" on regression becomes mean_ccc
    with pytest.raises(UserError, match="--metric_for_best_model"):
        best_model_metric(FineTuningTrainingArguments(output_dir="x", metric_for_best_model="mean_ccc"), classification)


def test_class_too_rare_for_the_test_part_names_test_fraction(tone_csv, tmp_path, capsys):
    # 12 clips per class, 20 parts for a 1/20 test part: the error names run_classification's own options.
    argv = ["--dataset_name", "csv", "--data_files", str(tone_csv), "--speaker_column", "speaker", "--test_fraction", "0.05",
            *fast_training_flags(tmp_path / "run", tmp_path / "cache")]
    assert run_classification.main(argv) == 2
    error = capsys.readouterr().err
    assert "--test_fraction" in error and "--num_folds" not in error and "'high'" in error
    assert not (tmp_path / "run" / "metrics.json").exists()


@pytest.mark.slow
def test_push_to_hub_uploads_the_model_folder_with_its_card(tone_csv, tmp_path, monkeypatch):
    import voc2vec.hub

    pushed = []
    monkeypatch.setattr(voc2vec.hub, "push_model", lambda folder, repo_id, **kwargs: pushed.append((folder, repo_id)) or f"https://huggingface.co/{repo_id}")
    output_dir = tmp_path / "run"
    argv = ["--dataset_name", "csv", "--data_files", str(tone_csv), "--speaker_column", "speaker", "--test_fraction", "0.25",
            "--validation_fraction", "0.34", "--push_to_hub", "--hub_model_id", "my-org/tones",
            *fast_training_flags(output_dir, tmp_path / "cache")]
    assert run_classification.main(argv) == 0
    assert pushed == [(output_dir, "my-org/tones")]
    card = (output_dir / "README.md").read_text()
    assert 'from_pretrained("my-org/tones")' in card or "my-org/tones" in card
    metrics = json.loads((output_dir / "metrics.json").read_text())
    assert f"{100 * metrics['test']['uar']:.1f}" in card
    assert not (output_dir / "training_args.bin").exists()


def test_push_to_hub_needs_a_repository_name(tone_csv, tmp_path, capsys):
    argv = ["--dataset_name", "csv", "--data_files", str(tone_csv), "--push_to_hub", *fast_training_flags(tmp_path / "run", tmp_path)]
    assert run_classification.main(argv) == 2
    assert "--hub_model_id" in capsys.readouterr().err


@pytest.mark.slow
def test_tensorboard_logs_are_kept_in_the_output_folder(tone_csv, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    output_dir = tmp_path / "run"
    argv = ["--dataset_name", "csv", "--data_files", str(tone_csv), "--speaker_column", "speaker", "--test_fraction", "0.25",
            "--validation_fraction", "0.34", "--report_to", "tensorboard", *fast_training_flags(output_dir, tmp_path / "cache")]
    assert run_classification.main(argv) == 0
    assert not (output_dir / "checkpoints").exists()  # where the Trainer would have put them, deleted after training
    events = EventAccumulator(str(output_dir / "logs"))
    events.Reload()
    metrics = json.loads((output_dir / "metrics.json").read_text())
    assert [event.value for event in events.Scalars("eval/uar")] == pytest.approx([metrics["validation"]["uar"]], rel=1e-6)
