"""Bad settings and faults in run_cv.py / run_classification.py: one line `error: ... Fix: ...`, exit code 2, no
traceback, nothing written; resumes that would mix settings are refused; failed folds clean up after themselves."""

import errno
import json

import numpy as np
import pandas as pd
import pytest
import soundfile

import run_classification
import run_cv
import voc2vec.finetune
from cv_fixtures import TINY_MODEL, fast_training_flags, write_tone_corpus


@pytest.fixture(scope="module")
def tone_csv(tmp_path_factory):
    return write_tone_corpus(tmp_path_factory.mktemp("tones"))


def cv_flags(tone_csv, output_dir, cache_dir, *extra):
    return ["--dataset_name", "csv", "--data_files", str(tone_csv), "--speaker_column", "speaker", "--num_folds", "3",
            "--validation_fraction", "0.5", "--print_results", "false", *fast_training_flags(output_dir, cache_dir), *extra]


def expect_error(capsys, exit_code, *needles):
    captured = capsys.readouterr()
    assert exit_code == 2, captured.err[-2000:]
    last_line = captured.err.strip().splitlines()[-1]  # after any progress bar of the corpus preparation
    assert "Traceback" not in captured.err and last_line.startswith("error: ") and "Fix: " in last_line, captured.err[-2000:]
    for needle in needles:
        assert needle in captured.err, (needle, captured.err)
    return captured.err


@pytest.mark.parametrize("flags, needles", [
    (["--protocol", "foo"], ["--protocol", "invalid choice: 'foo'"]),
    (["--std", "foo"], ["--std", "'foo'"]),
    (["--final_model", "foo"], ["--final_model", "'foo'"]),
    (["--no_such_option", "1"], ["--no_such_option"]),
    (["--num_folds", "x"], ["--num_folds", "invalid int value: 'x'"]),
    (["--num_fold", "4"], ["--num_fold", "did you mean num_folds"]),  # a prefix of a real flag is not taken for it
    (["--num_train_epochs", "-1"], ["--num_train_epochs", "-1"]),
    (["--max_duration", "-1"], ["--max_duration", "-1"]),
    (["--per_device_train_batch_size", "0"], ["--per_device_train_batch_size"]),
    (["--learning_rate", "-0.1"], ["--learning_rate", "-0.1"]),
    (["--test_fraction", "1.5"], ["--test_fraction", "1.5"]),
    (["--num_folds", "1"], ["--num_folds"]),
    (["--data_files", "no/such.csv"], ["--data_files", "no/such.csv"]),
    (["--splits_csv", "no/such.csv"], ["--splits_csv", "no/such.csv"]),
    (["--config_overrides", "{conv_dim: 3"], ["--config_overrides", "JSON"]),
    (["--config_overrides", '{"no_such_field": 1}'], ["--config_overrides", "no_such_field"]),
    (["--config_overrides", '{"hidden_size": "big"}'], ["--config_overrides", "hidden_size", "'big'"]),
    (["--config_overrides", '{"conv_dim": [16, 16]}'], ["--config_overrides", "inconsistent", "conv_dim"]),
    (["--seed", "-1"], ["--seed", "-1"]),
    (["--report_to", "tensorbord"], ["--report_to", "'tensorbord'", "did you mean tensorboard"]),
    (["--weight_decay", "-0.1"], ["--weight_decay", "-0.1"]),
    (["--num_train_epochs", "inf"], ["--num_train_epochs", "inf"]),
    (["--warmup_steps", "1.5"], ["--warmup_steps", "1.5"]),
    (["--num_folds", "5", "10"], ["--num_folds takes one value, got 5 10"]),
    (["--metric_for_best_model", "accuracyy"], ["--metric_for_best_model", "accuracyy"]),
    (["--push_to_hub"], ["--push_to_hub", "--hub_model_id"]),
    (["--method", "probe", "--push_to_hub", "--hub_model_id", "org/name"], ["--push_to_hub", "probe keeps no model"]),
    (["--final_model", "none", "--push_to_hub", "--hub_model_id", "org/name"], ["--final_model none"]),
])
def test_bad_settings_stop_before_anything_is_written(tone_csv, tmp_path, capsys, flags, needles):
    output_dir = tmp_path / "run"
    expect_error(capsys, run_cv.main(cv_flags(tone_csv, output_dir, tmp_path / "cache", *flags)), *needles)
    assert not output_dir.exists()


def test_run_classification_refuses_a_zero_test_fraction(tone_csv, tmp_path, capsys):
    argv = ["--dataset_name", "csv", "--data_files", str(tone_csv), "--test_fraction", "0", *fast_training_flags(tmp_path / "run", tmp_path)]
    expect_error(capsys, run_classification.main(argv), "--test_fraction", "must be in (0, 0.5]")


@pytest.mark.parametrize("text, needles", [
    ("num_folds: [5, 10]\n", ["num_folds", "a list"]),
    ("num_folds: 3\nprotocol: : speaker-cv\n", ["invalid YAML at line 2"]),
    ("num_folds: 3\nnum_flods: 4\n", ["num_flods", "did you mean num_folds"]),
    ("- num_folds\n", ["must hold a mapping"]),
    ("grid:\n  models: {tiny: " + TINY_MODEL + "}\n", ["grid", "datasets"]),
])
def test_bad_config_files_name_the_file_and_the_problem(tmp_path, capsys, text, needles):
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    err = expect_error(capsys, run_cv.main([str(config), "--output_dir", str(tmp_path / "run")]), *needles)
    assert str(config) in err


def test_a_json_config_syntax_error_names_the_file_and_line(tmp_path, capsys):
    config = tmp_path / "bad.json"
    config.write_text('{\n  "num_folds": 3,\n  "protocol": \n}\n')
    err = expect_error(capsys, run_cv.main([str(config), "--output_dir", str(tmp_path / "run")]), "invalid JSON at line 4")
    assert str(config) in err


def test_a_tracker_that_is_not_installed_is_refused_at_parse_time(tone_csv, tmp_path, capsys, monkeypatch):
    import transformers.integrations

    monkeypatch.setattr(transformers.integrations, "get_available_reporting_integrations", lambda: [])
    output_dir = tmp_path / "run"
    expect_error(capsys, run_cv.main(cv_flags(tone_csv, output_dir, tmp_path / "cache", "--report_to", "tensorboard")),
                 "tracker 'tensorboard' is not installed (--report_to)")
    assert not output_dir.exists()


def test_a_read_only_corpus_cache_is_named_by_its_option(tone_csv, tmp_path, capsys):
    from corpus_fixtures import permissions_enforced

    read_only = tmp_path / "read-only"
    read_only.mkdir()
    read_only.chmod(0o555)
    try:
        with permissions_enforced():
            exit_code = run_cv.main(cv_flags(tone_csv, tmp_path / "run", read_only / "cache"))
    finally:
        read_only.chmod(0o755)
    expect_error(capsys, exit_code, "not writable", f"--corpus_cache_dir {read_only / 'cache'}")


@pytest.mark.slow
def test_resuming_with_other_training_settings_is_refused(tone_csv, tmp_path, capsys, monkeypatch):
    output_dir = tmp_path / "run"
    # A run whose first fold finished: what resume would otherwise average with the new settings.
    assert run_cv.main(cv_flags(tone_csv, output_dir, tmp_path / "cache", "--fold", "0")) == 0
    capsys.readouterr()
    monkeypatch.setattr(run_cv, "run_split", lambda *args, **kwargs: pytest.fail("must not train"))
    err = expect_error(capsys, run_cv.main(cv_flags(tone_csv, output_dir, tmp_path / "cache", "--num_train_epochs", "3",
                                                    "--learning_rate", "0.01")), "--num_train_epochs: 1.0 -> 3.0",
                       "--learning_rate: 0.001 -> 0.01", "use a new --output_dir")
    assert "model_name_or_path" not in err  # only what differs is named
    for flags, needle in ((["--eval_delay", "1"], "--eval_delay: 0 -> 1.0"),
                          (["--lr_scheduler_kwargs", '{"power": 2.0}'], "--lr_scheduler_kwargs"),
                          (["--dataloader_drop_last", "true"], "--dataloader_drop_last: False -> True"),
                          (["--eval_strategy", "steps", "--eval_steps", "2", "--save_strategy", "steps", "--save_steps", "2"],
                           "--eval_steps: None -> 2")):
        expect_error(capsys, run_cv.main(cv_flags(tone_csv, output_dir, tmp_path / "cache", *flags)), needle)
    # Settings that do not change results (evaluation batch size, logging, step counts of a strategy not in use)
    # may change on resume.
    monkeypatch.undo()
    assert run_cv.main(cv_flags(tone_csv, output_dir, tmp_path / "cache", "--per_device_eval_batch_size", "3",
                                "--eval_steps", "7", "--fold", "1")) == 0


@pytest.mark.slow
def test_a_fold_that_fills_the_disk_leaves_no_checkpoints_behind(tone_csv, tmp_path, capsys, monkeypatch):
    real_train = voc2vec.finetune.FineTuningTrainer.train

    def full_disk(self, *args, **kwargs):
        real_train(self, *args, **kwargs)  # checkpoints written ...
        raise OSError(errno.ENOSPC, "No space left on device")  # ... then the disk is full

    monkeypatch.setattr(voc2vec.finetune.FineTuningTrainer, "train", full_disk)
    output_dir = tmp_path / "run"
    assert run_cv.main(cv_flags(tone_csv, output_dir, tmp_path / "cache", "--num_folds", "2")) == 1
    logged = capsys.readouterr().err
    for fold in range(2):
        folder = output_dir / f"fold_{fold:02d}"
        message = f"no space left on device ({folder})"  # the folder, not a bare [Errno 28]
        assert message in json.loads((folder / "failed.json").read_text())["error"] and message in logged
        assert not (folder / "checkpoints").exists()


def test_an_unwritable_output_dir_is_named_before_work_starts(tone_csv, tmp_path, capsys):
    target = "/sys/voc2vec-test/run"  # sysfs refuses new files even to root
    try:
        open("/sys/voc2vec-write-probe", "w").close()
        pytest.skip("/sys is writable here")
    except OSError:
        pass
    expect_error(capsys, run_cv.main(cv_flags(tone_csv, target, tmp_path / "cache")), "not writable", "--output_dir /sys/voc2vec-test/run")


def test_a_run_that_stops_before_training_keeps_no_splits(tone_csv, tmp_path, capsys, monkeypatch):
    from voc2vec.errors import UserError

    def failing_decode(*args, **kwargs):
        raise UserError("cannot decode clips/x.wav", where="clips/x.wav", fix="convert it")

    monkeypatch.setattr(run_cv, "decode", failing_decode)
    output_dir = tmp_path / "run"
    expect_error(capsys, run_cv.main(cv_flags(tone_csv, output_dir, tmp_path / "cache")), "clips/x.wav")
    assert not (output_dir / "splits.csv").exists() and not (output_dir / "cv_config.json").exists()


@pytest.mark.slow
def test_a_float_file_full_of_nan_is_skipped_and_reported_not_a_stopped_run(tone_csv, tmp_path, capsys):
    corpus = tmp_path / "corpus"
    rows = pd.read_csv(tone_csv)
    for path in rows["path"]:
        (corpus / path).parent.mkdir(parents=True, exist_ok=True)
        (corpus / path).write_bytes((tone_csv.parent / path).read_bytes())
    soundfile.write(corpus / "clips/broken.wav", np.full(4000, np.nan, dtype=np.float32), 16000, subtype="FLOAT")
    rows = pd.concat([rows, pd.DataFrame([{"path": "clips/broken.wav", "label": "low", "speaker": "spk0"}])])
    rows.to_csv(corpus / "meta.csv", index=False)
    output_dir = tmp_path / "run"
    assert run_cv.main(cv_flags(corpus / "meta.csv", output_dir, tmp_path / "cache", "--fold", "0")) == 0
    out = capsys.readouterr()
    assert "broken.wav" in out.out + out.err  # reported at preparation
    assert "clips/broken.wav" not in pd.read_csv(output_dir / "splits.csv")["path"].tolist()
