"""run_cv.py's model folders as published: every kept model has its card, the cluster workflow's merge job writes
output_dir/model's card and uploads it, and --push_to_hub sends exactly the model, card and results (no network:
HfApi's methods record what they would send)."""

import json

import pytest
from huggingface_hub import ModelCard

import run_cv
from cv_fixtures import fast_training_flags, write_tone_corpus
from hub_fixtures import SECRET, FakeHub, go_online

pytestmark = pytest.mark.slow  # each test trains two folds of a tiny model

UPLOADED = ["README.md", "config.json", "model.safetensors", "preprocessor_config.json", "training_info.json",
            "summary.json", "results.md", "results.csv", "confusion_matrix.png"]


@pytest.fixture(scope="module")
def tone_csv(tmp_path_factory):
    return write_tone_corpus(tmp_path_factory.mktemp("tones"))


def cv_flags(tone_csv, output_dir, cache_dir, *extra):
    return ["--dataset_name", "csv", "--data_files", str(tone_csv), "--speaker_column", "speaker", "--num_folds", "2",
            "--validation_fraction", "0.5", "--print_results", "false", *fast_training_flags(output_dir, cache_dir), *extra]


def model_index(card_path) -> dict:
    return {result.metric_type: result.metric_value for result in ModelCard.load(card_path).data.eval_results}


def test_cluster_jobs_then_merge_write_every_card_and_push(tone_csv, tmp_path, monkeypatch, capsys):
    """--fold k jobs (with --save_fold_models), then --merge_only --push_to_hub: the merge job writes model/'s card
    from summary.json and uploads it; fold_01/model/ has its own card from its fold's metrics.json."""
    output_dir = tmp_path / "cv"
    for fold in (1, 0):
        assert run_cv.main(cv_flags(tone_csv, output_dir, tmp_path / "cache", "--fold", str(fold), "--save_fold_models", "true")) == 0
    fold_metrics = json.loads((output_dir / "fold_01" / "metrics.json").read_text())
    assert model_index(output_dir / "fold_01" / "model" / "README.md") == {
        metric: fold_metrics["test"][metric] for metric in ("uar", "accuracy", "macro_f1")}
    assert not (output_dir / "model" / "README.md").exists()  # no summary yet: the merge job writes it

    go_online(monkeypatch)
    hub = FakeHub().install(monkeypatch)
    merge_and_push = cv_flags(tone_csv, output_dir, tmp_path / "cache", "--merge_only", "true", "--push_to_hub", "true",
                              "--hub_model_id", "my-org/tones", "--hub_token", SECRET)
    (output_dir / "model").rename(tmp_path / "aside")  # as if fold 0 had run with --final_model none
    assert run_cv.main(merge_and_push) == 2
    assert "--push_to_hub publishes" in capsys.readouterr().err and hub.commits == []
    (tmp_path / "aside").rename(output_dir / "model")
    assert run_cv.main(merge_and_push) == 0
    log = capsys.readouterr().err  # run_cv.main sends its log to stderr
    summary = json.loads((output_dir / "summary.json").read_text())
    assert model_index(output_dir / "model" / "README.md") == {metric: summary["mean"][metric] for metric in ("uar", "accuracy", "macro_f1")}
    assert [repo for repo, _ in hub.repos] == ["my-org/tones"]
    files = hub.uploaded()
    assert sorted(files) == sorted(UPLOADED)
    assert "--hub_token is ignored" in log and "published: https://huggingface.co/my-org/tones" in log
    assert SECRET not in log and all(SECRET.encode() not in content for content in files.values())


def test_push_to_hub_uploads_the_model_its_card_and_results(tone_csv, tmp_path, monkeypatch):
    go_online(monkeypatch)
    hub = FakeHub().install(monkeypatch)
    output_dir = tmp_path / "cv"
    assert run_cv.main(cv_flags(tone_csv, output_dir, tmp_path / "cache", "--push_to_hub", "true", "--hub_model_id", "my-org/tones",
                                "--hub_private_repo", "true")) == 0
    assert hub.repos == [("my-org/tones", {"repo_type": "model", "private": True, "exist_ok": True})]
    files = hub.uploaded()
    assert sorted(files) == sorted(UPLOADED)
    assert files["model.safetensors"] == (output_dir / "model" / "model.safetensors").read_bytes()
    card = ModelCard(files["README.md"].decode())
    published = json.loads(files["summary.json"])
    assert {result.metric_type: result.metric_value for result in card.data.eval_results} == {
        metric: published["mean"][metric] for metric in ("uar", "accuracy", "macro_f1")}
    assert 'model_id = "my-org/tones"' in card.text
    assert json.loads(files["config.json"])["id2label"] == {"0": "high", "1": "low", "2": "mid"}
    assert not [name for name, content in files.items() if str(tmp_path).encode() in content]  # no local path goes up
    assert published["corpus_root"] == tone_csv.parent.name
