"""run_cv.py end to end with a tiny random model: determinism, resume, failed folds, the paper protocol, grids,
official splits and the errors that stop bad input before training."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml

import run_cv
from cv_fixtures import TINY_MODEL, fast_training_flags, write_hume_vb_corpus, write_tone_corpus
from voc2vec.arguments import ProtocolArguments
from voc2vec.errors import UserError
from voc2vec.folds import inner_validation_split, paper_folds
from voc2vec.protocols import SpeakerCV
from voc2vec.results import grid_tables
from voc2vec.tasks import CLASSIFICATION, TaskCorpus


@pytest.fixture(scope="module")
def tone_csv(tmp_path_factory):
    return write_tone_corpus(tmp_path_factory.mktemp("tones"))


def cv_flags(tone_csv, output_dir, cache_dir, *extra):
    return ["--dataset_name", "csv", "--data_files", str(tone_csv), "--speaker_column", "speaker", "--num_folds", "3",
            "--validation_fraction", "0.5", "--print_results", "false", *fast_training_flags(output_dir, cache_dir), *extra]


def without(argv, flag):
    """argv without `flag` and its value."""
    index = argv.index(flag)
    return argv[:index] + argv[index + 2 :]


def per_fold_scores(output_dir):
    return json.loads((output_dir / "summary.json").read_text())["per_fold"]


@pytest.mark.slow
def test_deterministic_resumable_and_failed_folds_never_averaged(tone_csv, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    # An uninterrupted run.
    reference = tmp_path / "reference"
    assert run_cv.main(cv_flags(tone_csv, reference, cache)) == 0
    summary = json.loads((reference / "summary.json").read_text())
    assert summary["complete"] and summary["num_folds"] == 3 and len(summary["per_fold"]) == 3
    assert summary["std_type"].startswith("population") and "speaker-disjoint" in summary["fold_kind"]
    assert {"uar", "accuracy", "macro_f1"} <= set(summary["mean"]) and (reference / "confusion_matrix.png").is_file()
    assert "mean ± std" in (reference / "results.md").read_text() and (reference / "results.csv").is_file()
    splits = pd.read_csv(reference / "splits.csv")
    assert list(splits.columns) == ["path", "speaker", "label", "fold", "role_fold_00", "role_fold_01", "role_fold_02"]
    assert splits.groupby("speaker")["fold"].nunique().max() == 1  # no speaker in two folds
    assert (reference / "model" / "config.json").is_file()  # the final model: fold 0's best
    assert not (reference / "fold_01" / "model").exists()  # other folds keep no model unless asked

    # The same run in pieces: fold 0 alone (as a cluster job would), then a run in which fold 1 fails.
    resumed = tmp_path / "resumed"
    assert run_cv.main(cv_flags(tone_csv, resumed, cache, "--fold", "0")) == 0
    assert not (resumed / "summary.json").exists()
    real_run_split = run_cv.run_split

    def fail_fold_1(*args, extra_metadata, **kwargs):
        if extra_metadata["fold"] == 1:
            raise RuntimeError("simulated out-of-memory")
        return real_run_split(*args, extra_metadata=extra_metadata, **kwargs)

    monkeypatch.setattr(run_cv, "run_split", fail_fold_1)
    assert run_cv.main(cv_flags(tone_csv, resumed, cache)) == 1
    incomplete = json.loads((resumed / "summary.json").read_text())
    assert not incomplete["complete"] and "mean" not in incomplete and list(incomplete["failed_folds"]) == ["1"]
    assert "simulated out-of-memory" in (resumed / "fold_01" / "failed.json").read_text()
    assert run_cv.main(cv_flags(tone_csv, resumed, cache, "--merge_only", "true")) == 1  # still no silent mean

    # The rerun trains only the failed fold and ends with the uninterrupted run's results, bit for bit.
    trained = []
    monkeypatch.setattr(run_cv, "run_split", lambda *args, **kwargs: trained.append(kwargs["extra_metadata"]["fold"]) or real_run_split(*args, **kwargs))
    assert run_cv.main(cv_flags(tone_csv, resumed, cache)) == 0
    assert trained == [1]  # folds 0 and 2 were finished: skipped, not retrained
    assert not (resumed / "fold_01" / "failed.json").exists()
    assert per_fold_scores(resumed) == per_fold_scores(reference)
    assert pd.read_csv(resumed / "splits.csv").equals(splits)
    assert run_cv.main(cv_flags(tone_csv, resumed, cache, "--merge_only", "true")) == 0
    assert per_fold_scores(resumed) == per_fold_scores(reference)
    trained.clear()
    assert run_cv.main(cv_flags(tone_csv, resumed, cache)) == 0 and trained == []  # a finished run trains nothing


@pytest.mark.slow
def test_paper_protocol_folds_and_marking(tone_csv, tmp_path):
    output_dir = tmp_path / "paper"
    argv = without(cv_flags(tone_csv, output_dir, tmp_path / "cache", "--protocol", "voc2vec-paper"), "--max_duration")
    assert run_cv.main(argv) == 0
    summary = json.loads((output_dir / "summary.json").read_text())
    assert summary["protocol"] == "voc2vec-paper" and "Table IV" in summary["protocol_note"]
    assert "voc2vec-paper" in (output_dir / "results.md").read_text()
    splits = pd.read_csv(output_dir / "splits.csv")
    assert splits["fold"].tolist() == paper_folds(len(splits), 3, 42).tolist()
    fold = json.loads((output_dir / "fold_01" / "metrics.json").read_text())
    assert "also used for model selection" in fold["evaluated_on"]
    assert fold["num_clips"]["validation"] == fold["num_clips"]["test"] == int((splits["fold"] == 1).sum())


@pytest.mark.slow
def test_grid_gives_a_models_by_datasets_table(tone_csv, tmp_path):
    config = tmp_path / "grid.yaml"
    config.write_text(yaml.safe_dump({
        "dataset_name": "csv", "speaker_column": "speaker", "num_folds": 2, "validation_fraction": 0.5, "print_results": False,
        "grid": {
            "models": {"tiny-a": TINY_MODEL, "tiny-b": {"model_name_or_path": TINY_MODEL, "head": "lstm", "lstm_hidden_size": 8}},
            "datasets": {"tones": {"data_files": [str(tone_csv)]}},
        },
    }))
    argv = [str(config), *fast_training_flags(tmp_path / "grid", tmp_path / "cache")]
    assert run_cv.main(argv) == 0
    table = (tmp_path / "grid" / "grid_results.md").read_text().splitlines()
    assert table[0] == "| model | method | tones UAR | tones Acc | tones F1 |"
    assert table[2].startswith("| tiny-a | ") and table[3].startswith("| tiny-b | ") and "±" in table[3]
    rows = pd.read_csv(tmp_path / "grid" / "grid_results.csv")
    assert rows.shape == (2, 2 + 3 * 2 + 3)  # model, method, mean and std per metric, then the pooled metrics
    summary_b = json.loads((tmp_path / "grid" / "tiny-b" / "tones" / "summary.json").read_text())
    assert rows.loc[1, "tones/pooled_uar"] == summary_b["pooled"]["uar"]
    assert "LSTM" in json.loads((tmp_path / "grid" / "tiny-b" / "tones" / "summary.json").read_text())["head"]


def test_grid_table_shape():
    summary = {"task": "classification", "std_type": "population standard deviation over folds (ddof=0)", "mean": {"uar": 0.5, "accuracy": 0.6, "macro_f1": 0.4},
               "std": {"uar": 0.01, "accuracy": 0.02, "macro_f1": 0.03}, "pooled": {"uar": 0.55, "accuracy": 0.65, "macro_f1": 0.45}}
    summaries = {(model, dataset): summary for model in ("a", "b", "c") for dataset in ("x", "y")}
    summaries[("c", "y")] = None
    markdown, csv_rows = grid_tables(summaries, ["a", "b", "c"], ["x", "y"])
    lines = markdown.strip().splitlines()
    assert lines[0] == "| model | method | x UAR | x Acc | x F1 | y UAR | y Acc | y F1 |"
    assert lines[2] == "| a | fine-tuned | 50.0 ± 1.0 | 60.0 ± 2.0 | 40.0 ± 3.0 | 50.0 ± 1.0 | 60.0 ± 2.0 | 40.0 ± 3.0 |"
    assert lines[4].endswith("| failed | failed | failed |")
    assert len(csv_rows) == 4 and all(len(row) == 2 + 2 * 3 * 2 + 2 * 3 for row in csv_rows)
    pooled = markdown[markdown.index("Pooled"):].splitlines()
    assert "| a | fine-tuned | 55.0 | 65.0 | 45.0 | 55.0 | 65.0 | 45.0 |" in pooled
    assert "| c | fine-tuned | 55.0 | 65.0 | 45.0 | - | - | - |" in pooled


@pytest.mark.slow
def test_official_splits_replace_folds_for_regression(tmp_path):
    data_dir = write_hume_vb_corpus(tmp_path / "hume_vb")
    output_dir = tmp_path / "two"
    argv = ["--dataset_name", "hume_vb", "--dataset_config_name", "two", "--data_dir", str(data_dir),
            "--regression_loss", "mse", "--print_results", "false", *fast_training_flags(output_dir, tmp_path / "cache")]
    assert run_cv.main(argv) == 0
    summary = json.loads((output_dir / "summary.json").read_text())
    assert summary["num_folds"] == 1 and summary["fold_kind"] == "the corpus's official split"
    assert summary["task"] == "regression" and {"ccc_Valence", "ccc_Arousal", "mean_ccc"} <= set(summary["mean"])
    assert "withheld" in summary["evaluated_on"][0] and "mean-pool + linear" in summary["head"]


def test_class_with_fewer_clips_than_folds(tone_csv, tmp_path, capsys):
    assert run_cv.main(cv_flags(tone_csv, tmp_path / "run", tmp_path / "cache", "--num_folds", "13")) == 2
    error = capsys.readouterr().err
    assert "--num_folds" in error and "--min_clips_per_class" in error
    assert not (tmp_path / "run").exists()


def inner_split_corpus(labels, speakers):
    return TaskCorpus("fixture", None, CLASSIFICATION, ["common", "rare"], np.asarray(labels), list(speakers))


def inner_split(corpus, rows, validation_fraction, seed):
    protocol = SpeakerCV(ProtocolArguments(validation_fraction=validation_fraction), seed)
    return protocol.inner_split(corpus, rows)


def test_rare_class_keeps_training_clips_and_missing_validation_is_logged(caplog):
    # Donate A Cry's shape: a class (7 clips) rarer than the 10 parts of a 1/10 validation split.
    labels = [0] * 93 + [1] * 7
    corpus = inner_split_corpus(labels, [f"s{clip}" for clip in range(100)])
    rows = np.arange(100)
    # A seed for which the 1/10 split happens to take no 'rare' clip (found, not assumed).
    seed = next(seed for seed in range(100) if not (np.asarray(labels)[inner_validation_split(rows, labels, corpus.speakers, 0.1, seed)[1]] == 1).any())
    with caplog.at_level("WARNING"):
        fit, validation = inner_split(corpus, rows, 0.1, seed)
    assert sorted([*fit, *validation]) == rows.tolist() and not set(fit) & set(validation)
    assert int((corpus.targets[fit] == 1).sum()) == 7  # every rare clip trains
    assert "No validation clip of 'rare'" in caplog.text and "--validation_fraction" in caplog.text


def test_class_whose_only_speaker_falls_into_validation_stops_before_training():
    # Every clip of 'rare' comes from one speaker; find a seed whose 1/2 split puts that speaker in validation.
    labels = [0] * 40 + [1] * 5
    speakers = [f"s{clip // 4}" for clip in range(40)] + ["solo"] * 5
    corpus = inner_split_corpus(labels, speakers)
    rows = np.arange(len(labels))
    seed = next(seed for seed in range(50) if 40 in inner_validation_split(rows, labels, speakers, 0.5, seed)[1])
    with pytest.raises(UserError, match="every training clip of 'rare'.*--validation_fraction"):
        inner_split(corpus, rows, 0.5, seed)


def test_speaker_folds_required_without_speakers(tone_csv, tmp_path, capsys):
    argv = cv_flags(tone_csv, tmp_path / "run", tmp_path / "cache", "--group_by_speaker", "required")
    argv.remove("--speaker_column"), argv.remove("speaker")
    assert run_cv.main(argv) == 2
    assert "no speaker" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_unloadable_model_and_missing_label_column(tone_csv, tmp_path, capsys):
    argv = cv_flags(tone_csv, tmp_path / "run", tmp_path / "cache", "--model_name_or_path", "no/such-model-here")
    assert run_cv.main(argv) == 2
    assert "--model_name_or_path" in capsys.readouterr().err
    assert run_cv.main(cv_flags(tone_csv, tmp_path / "run", tmp_path / "cache", "--label_column", "emotion")) == 2
    assert "emotion" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_rare_class_can_be_dropped(tone_csv, tmp_path):
    """--min_clips_per_class removes the class that made stratified folds impossible (checked without training)."""
    from voc2vec.arguments import DataArguments
    from voc2vec.tasks import load_task_corpus

    def check_fold_feasibility(corpus, num_folds, group_by_speaker):
        SpeakerCV(ProtocolArguments(num_folds=num_folds, group_by_speaker=group_by_speaker), 42).check(corpus)

    rows = pd.read_csv(tone_csv)
    rare = rows[(rows["label"] != "high") | (rows.index % 12 == 0)]  # "high" keeps 1 clip
    rare_csv = tone_csv.parent / "rare.csv"
    rare.to_csv(rare_csv, index=False)
    data_args = DataArguments(dataset_name="csv", data_files=[str(rare_csv)], speaker_column="speaker",
                              corpus_cache_dir=str(tmp_path / "cache"))
    with pytest.raises(ValueError, match="--min_clips_per_class"):
        check_fold_feasibility(load_task_corpus(data_args), 3, "auto")
    data_args.min_clips_per_class = 3
    corpus = load_task_corpus(data_args)
    check_fold_feasibility(corpus, 3, "auto")
    assert corpus.label_names == ["low", "mid"] and set(corpus.targets.tolist()) == {0, 1}


def test_resuming_with_another_model_stops_before_training(tone_csv, tmp_path, capsys):
    output_dir = tmp_path / "run"
    output_dir.mkdir()
    (output_dir / "cv_config.json").write_text(json.dumps({
        "dataset": "csv", "dataset_config": None, "model_name_or_path": "another/model", "protocol": "speaker-cv",
        "num_folds": 3, "seed": 42,
    }))
    assert run_cv.main(cv_flags(tone_csv, output_dir, tmp_path / "cache", "--seed", "42")) == 2
    assert "model_name_or_path" in capsys.readouterr().err
    assert not list(output_dir.glob("fold_*"))


@pytest.mark.slow
def test_grid_as_cluster_jobs_one_fold_each_then_a_merge(tone_csv, tmp_path):
    """What the README's SLURM job array does: every array task runs fold k of every cell, a dependent job merges."""
    config = tmp_path / "grid.yaml"
    config.write_text(yaml.safe_dump({
        "dataset_name": "csv", "speaker_column": "speaker", "num_folds": 2, "validation_fraction": 0.5, "print_results": False,
        "final_model": "none", "grid": {"models": {"tiny": TINY_MODEL}, "datasets": {"tones": {"data_files": [str(tone_csv)]}}},
    }))
    argv = [str(config), *fast_training_flags(tmp_path / "grid", tmp_path / "cache")]
    for fold in (1, 0):  # array tasks finish in any order
        assert run_cv.main([*argv, "--fold", str(fold)]) == 0
        assert not (tmp_path / "grid" / "grid_results.md").exists()  # no table from a part of the folds
    assert run_cv.main([*argv, "--merge_only", "true"]) == 0
    summary = json.loads((tmp_path / "grid" / "tiny" / "tones" / "summary.json").read_text())
    assert summary["complete"] and [fold["fold"] for fold in summary["per_fold"]] == [0, 1]
    assert "tiny" in (tmp_path / "grid" / "grid_results.md").read_text()


def grid_config(path, tone_csv, models=None, datasets=None, **settings):
    path.write_text(yaml.safe_dump({
        "dataset_name": "csv", "speaker_column": "speaker", "num_folds": 2, "validation_fraction": 0.5, "print_results": False,
        **settings, "grid": {"models": models or {"tiny-a": TINY_MODEL, "tiny-b": TINY_MODEL},
                             "datasets": datasets or {"tones": {"data_files": [str(tone_csv)]}}},
    }))
    return path


def last_error_line(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err, err[-2000:]
    return err.strip().splitlines()[-1]


def test_a_grid_written_as_a_list_names_the_config_file_and_the_fix(tmp_path, capsys):
    config = tmp_path / "grid.yaml"
    config.write_text(f"grid:\n  - models: {{tiny: {TINY_MODEL}}}\n  - datasets: {{tones: csv}}\n")
    assert run_cv.main([str(config), "--output_dir", str(tmp_path / "run")]) == 2
    error = last_error_line(capsys)
    assert "grid: section must be a mapping" in error and "not a list" in error and str(config) in error
    assert "Fix: write 'grid: {models: {name: MODEL}, datasets: {name: CORPUS}}'" in error


def test_a_grid_pushing_every_cell_to_one_repository_is_refused_before_anything_runs(tone_csv, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(run_cv, "plan_evaluation", lambda *args, **kwargs: pytest.fail("must not plan"))
    config = grid_config(tmp_path / "grid.yaml", tone_csv)
    argv = [str(config), *fast_training_flags(tmp_path / "grid", tmp_path / "cache"), "--push_to_hub", "--hub_model_id", "org/name"]
    assert run_cv.main(argv) == 2
    error = last_error_line(capsys)
    assert "2 grid cells (tiny-a on tones, tiny-b on tones) to the one --hub_model_id org/name" in error
    assert "(--push_to_hub)" in error and "voc2vec push" in error
    assert not (tmp_path / "grid").exists()


def test_a_mistake_in_the_last_grid_cell_stops_the_grid_before_any_cell_trains(tone_csv, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(run_cv, "run_split", lambda *args, **kwargs: pytest.fail("must not train"))
    datasets = {"tones": {"data_files": [str(tone_csv)]}, "tones-again": {"data_files": [str(tone_csv)]}}
    config = grid_config(tmp_path / "grid.yaml", tone_csv, models={"tiny": TINY_MODEL}, datasets=datasets)
    last_cell = tmp_path / "grid" / "tiny" / "tones-again"
    last_cell.mkdir(parents=True)
    (last_cell / "cv_config.json").write_text(json.dumps({"dataset": "csv", "model_name_or_path": "another/model"}))
    assert run_cv.main([str(config), *fast_training_flags(tmp_path / "grid", tmp_path / "cache")]) == 2
    assert "model_name_or_path: 'another/model'" in last_error_line(capsys)
    # The first cell's splits.csv and cv_config.json were written before the last cell was refused: they are removed,
    # so the same command starts over once the config is fixed; the last cell's own files are left as they were.
    assert sorted(path.relative_to(tmp_path / "grid").as_posix() for path in (tmp_path / "grid").rglob("*.*")) == [
        "tiny/tones-again/cv_config.json"]
