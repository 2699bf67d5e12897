"""Model cards: metadata and model-index read back with ModelCard.load and compared with the results files."""

import json
import re
from pathlib import Path

import pytest
from huggingface_hub import ModelCard
from transformers import TrainingArguments

from model_fixtures import LABELS, save_classifier, write_audio, write_summary
from voc2vec.cards import training_hyperparameters, write_card, write_classifier_card, write_encoder_card
from voc2vec.errors import UserError


@pytest.fixture
def cv_run(tmp_path):
    """run_cv.py's layout: summary.json in the run folder, the model in run/model/."""
    run_dir = tmp_path / "demo-cv"
    summary = write_summary(run_dir)
    save_classifier(run_dir / "model")
    return run_dir, summary


def model_index(card):
    return {result.metric_type: result for result in card.data.eval_results}


def test_model_index_holds_every_mean_of_summary_json(cv_run):
    run_dir, summary = cv_run
    card = ModelCard.load(write_classifier_card(run_dir / "model", run_dir / "summary.json"))
    results = model_index(card)
    assert set(results) == {"uar", "accuracy", "macro_f1"}
    for metric, result in results.items():
        assert result.metric_value == summary["mean"][metric]
        assert result.metric_args["std"] == summary["std"][metric]
        assert result.metric_args["num_folds"] == summary["num_folds"] == 5
        assert result.metric_args["protocol"] == summary["protocol"]
        assert "mean over 5 folds, speaker-cv" in result.metric_name
        assert result.task_type == "audio-classification"
        assert result.dataset_type == summary["dataset"]


def test_card_metadata_and_body(cv_run):
    run_dir, summary = cv_run
    path = write_classifier_card(run_dir / "model", run_dir, TrainingArguments(output_dir=str(run_dir / "x"), learning_rate=3e-3,
                                                                              hub_token="hf_secret_token_value", seed=7))
    card = ModelCard.load(path)
    assert card.data.license == "apache-2.0"
    assert card.data.library_name == "transformers"
    assert card.data.pipeline_tag == "audio-classification"
    assert card.data.base_model == "facebook/wav2vec2-base"  # the run's model_name_or_path, a Hub id
    assert card.data.datasets == ["demo"]
    assert {"audio", "audio-classification", "voc2vec", "wav2vec2"} <= set(card.data.tags)
    text = card.text
    assert "| UAR | 61.2 ± 5.1 | 60.5 |" in text  # mean ± std over folds, then pooled, from summary.json
    assert "1/3 = 33.3 %" in text  # chance UAR
    assert "(`cry`, 60 of 120 test clips): accuracy 50.0 %" in text  # majority class, from the summed confusion matrix
    assert "`0` laugh, `1` cry, `2` scream" in text
    assert summary["protocol_note"][1:] in text and summary["fold_kind"] in text
    assert "| learning_rate | 0.003 |" in text and "| seed | 7 |" in text
    assert "hf_secret_token_value" not in path.read_text()
    assert "@inproceedings{koudounas2025voc2vec" in text
    assert 'pipeline("audio-classification"' in text and "AutoModelForAudioClassification" in text


def test_usage_snippet_runs_on_the_model_it_describes(cv_run, tmp_path, monkeypatch):
    run_dir, _ = cv_run
    text = write_classifier_card(run_dir / "model", run_dir / "summary.json").read_text()
    snippet = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    write_audio(tmp_path / "recording.wav", 1.5, 44100)
    monkeypatch.chdir(tmp_path)
    printed = []
    exec(snippet, {"print": printed.append})
    pipeline_scores, model_scores = printed
    by_label = {item["label"]: item["score"] for item in pipeline_scores}
    assert set(by_label) == set(LABELS)
    assert all(abs(by_label[label] - model_scores[label]) < 1e-5 for label in LABELS)


def test_card_from_run_classification_metrics(tmp_path):
    model_dir = save_classifier(tmp_path / "single")
    metrics = {"task": "classification", "dataset": "donateacry", "model_name_or_path": "outputs/pretraining/final",
               "head": "mean-pool + linear", "evaluated_on": "speaker-disjoint test part (20% of the clips)",
               "label_names": LABELS, "num_clips": {"train": 80, "validation": 10, "test": 20},
               "test": {"uar": 0.4567, "accuracy": 0.55, "macro_f1": 0.41}, "confusion_matrix": [[5, 1, 1], [1, 6, 1], [2, 1, 2]]}
    (model_dir / "metrics.json").write_text(json.dumps(metrics))
    card = ModelCard.load(write_card(model_dir))  # finds metrics.json beside the model
    results = model_index(card)
    assert {metric: result.metric_value for metric, result in results.items()} == metrics["test"]
    assert all("num_folds" not in result.metric_args for result in results.values())
    assert all(result.metric_args["evaluated_on"] == metrics["evaluated_on"] for result in results.values())
    assert card.data.base_model is None  # a local encoder is no Hub id
    assert "fine-tuned from the local encoder `final`" in card.text


def test_regression_card_reports_ccc(tmp_path):
    run_dir = tmp_path / "avb"
    summary = write_summary(run_dir, task="regression", label_names=["Awe", "Fear"], dataset="hume_vb", dataset_config="high",
                            mean={"ccc_Awe": 0.61, "ccc_Fear": 0.52, "mean_ccc": 0.565, "mse": 0.02},
                            std={"ccc_Awe": 0.01, "ccc_Fear": 0.02, "mean_ccc": 0.015, "mse": 0.001}, pooled=None,
                            confusion_matrix_summed_over_folds=None)
    save_classifier(run_dir / "model", labels=["Awe", "Fear"], regression=True)
    card = ModelCard.load(write_card(run_dir / "model"))
    assert {metric: result.metric_value for metric, result in model_index(card).items()} == summary["mean"]
    assert model_index(card)["mean_ccc"].dataset_config == "high"
    assert "A constant prediction scores CCC 0" in card.text
    assert "import voc2vec.heads" in card.text and "no softmax" in card.text


def test_incomplete_cross_validation_has_no_card(tmp_path):
    run_dir = tmp_path / "broken"
    write_summary(run_dir, complete=False)
    save_classifier(run_dir / "model")
    with pytest.raises(UserError, match="incomplete"):
        write_card(run_dir / "model")


def test_classifier_without_results_names_the_option(tmp_path):
    with pytest.raises(UserError, match="--results"):
        write_card(save_classifier(tmp_path / "lonely"))


def test_encoder_card_says_it_has_no_head_and_keeps_its_metadata(tmp_path):
    from transformers import AutoModel

    from model_fixtures import encoder_config, feature_extractor_for

    final = tmp_path / "pretraining" / "final"
    AutoModel.from_config(encoder_config()).save_pretrained(final)
    feature_extractor_for().save_pretrained(final)
    write_encoder_card(final, {"learning_rate": 5e-4, "max_train_steps": 300, "hub_token": "hf_x"},
                       base_model="facebook/wav2vec2-base", datasets=["voc125"], training_summary={"updates": 300})
    card = ModelCard.load(write_card(final))  # rewritten without arguments: base model and datasets are kept
    assert card.data.pipeline_tag == "feature-extraction"
    assert card.data.base_model == "facebook/wav2vec2-base"
    assert card.data.datasets == ["voc125"]
    assert card.data.eval_results is None
    assert "**This model has no trained head.**" in card.text
    assert "AutoModel.from_pretrained" in card.text


def test_encoder_card_from_a_local_checkpoint_names_no_local_path(tmp_path):
    """Continued pretraining from a local folder: no base_model in the metadata (it is no Hub id) and no path of the
    training machine in the card, which is published as it is."""
    from transformers import AutoModel

    from model_fixtures import encoder_config, feature_extractor_for

    final = tmp_path / "continued" / "final"
    AutoModel.from_config(encoder_config()).save_pretrained(final)
    feature_extractor_for().save_pretrained(final)
    start = tmp_path / "first-run" / "final"
    start.mkdir(parents=True)
    card = ModelCard.load(write_encoder_card(final, base_model=str(start)))
    assert card.data.base_model is None
    assert str(start) not in (final / "README.md").read_text()  # (the usage snippet loads final/ until it is pushed)
    assert "continued from the local checkpoint `final`" in card.text


def test_hyperparameters_never_carry_a_token():
    args = TrainingArguments(output_dir="unused", hub_token="hf_abc", learning_rate=1e-4)
    assert "hub_token" not in training_hyperparameters(args)
    assert training_hyperparameters({"hub_token": "hf_abc", "push_to_hub_token": "x", "seed": 1}) == {"seed": 1}
    assert training_hyperparameters(args)["learning_rate"] == 1e-4


@pytest.mark.slow
def test_a_run_cv_model_has_a_matching_card_and_classify_reproduces_its_predictions(tmp_path):
    """The issue's end state, in-process: run_cv.py leaves model/, its card's model-index matches summary.json, and
    `voc2vec classify` scores the fold-0 test clips exactly as the run did (the same first 0.5 s, each clip alone)."""
    import csv

    import run_cv
    from model_fixtures import ROOT, TINY_WAV2VEC2
    from voc2vec.cli import main

    output_dir = tmp_path / "demo-cv"
    code = run_cv.main([str(ROOT / "configs" / "cv" / "demo.yaml"), "--model_name_or_path", str(TINY_WAV2VEC2), "--num_folds", "2",
                        "--num_train_epochs", "1", "--max_duration", "0.5", "--per_device_eval_batch_size", "64",
                        "--output_dir", str(output_dir), "--print_results", "false"])
    assert code == 0
    summary = json.loads((output_dir / "summary.json").read_text())
    model_dir = output_dir / "model"
    card_path = model_dir / "README.md"
    if not card_path.is_file():  # until run_cv.py writes it itself
        write_classifier_card(model_dir, output_dir)
    card = ModelCard.load(card_path)
    assert {metric: result.metric_value for metric, result in model_index(card).items()} == {
        metric: summary["mean"][metric] for metric in ("uar", "accuracy", "macro_f1")}
    assert all(result.metric_args["num_folds"] == 2 for result in card.data.eval_results)

    with open(output_dir / "fold_00" / "predictions.csv", newline="") as handle:
        predicted = {Path(row["path"]).name: row for row in csv.DictReader(handle)}
    from voc2vec.corpora import load_corpus

    paths = [path for path in load_corpus("demo", verbose=False)["path"] if Path(path).name in predicted][:12]
    assert main(["classify", *paths, "--model", str(model_dir), "--output", str(tmp_path / "labels.csv"), "--max_duration", "0.5",
                 "--quiet"]) == 0
    with open(tmp_path / "labels.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            expected = predicted[Path(row["path"]).name]
            for name in summary["label_names"]:
                assert float(row[f"prob_{name}"]) == pytest.approx(float(expected[f"prob_{name}"]), abs=1e-4)
