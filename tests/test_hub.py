"""Publishing without a network: HfApi's methods are replaced, and what they would upload is checked file by file."""

import io
import json
import logging

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile
from huggingface_hub import DatasetCard, HfApi, ModelCard, constants
from huggingface_hub.errors import HfHubHTTPError

from hub_fixtures import SECRET, FakeHub, go_online
from model_fixtures import save_classifier, write_summary
from voc2vec.cli import main
from voc2vec.errors import UserError
from voc2vec.hub import CORPUS_LICENSES, loader_notes, push_mixture, push_model
from voc2vec.mixture import SCHEMA, VOC125_CORPORA


@pytest.fixture
def online(monkeypatch):
    go_online(monkeypatch)


@pytest.fixture
def cv_model(tmp_path):
    run_dir = tmp_path / "run"
    write_summary(run_dir)
    model_dir = save_classifier(run_dir / "model")
    for name, content in {"training_args.bin": b"pickle", "pytorch_model.bin": b"pickle", "predictions.csv": "path\n/home/me/a.wav\n",
                          "training_info.json": "{}"}.items():
        (model_dir / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    (model_dir / "checkpoints").mkdir()
    for name in ("results.md", "results.csv", "confusion_matrix.png", "splits.csv"):
        (run_dir / name).write_text("x")
    return model_dir


def test_model_upload_holds_the_model_card_and_results_and_no_pickle(online, cv_model, monkeypatch, caplog, capsys):
    hub = FakeHub().install(monkeypatch)
    with caplog.at_level(logging.DEBUG):
        url = push_model(cv_model, "my-org/voc2vec-demo", private=True)
    assert url == "https://huggingface.co/my-org/voc2vec-demo"
    assert hub.repos == [("my-org/voc2vec-demo", {"repo_type": "model", "private": True, "exist_ok": True})]
    files = hub.uploaded()
    assert sorted(files) == sorted(["README.md", "config.json", "model.safetensors", "preprocessor_config.json", "training_info.json",
                                    "summary.json", "results.md", "results.csv", "confusion_matrix.png"])
    assert json.loads(files["config.json"])["id2label"] == {"0": "laugh", "1": "cry", "2": "scream"}
    card = files["README.md"].decode()
    assert 'model_id = "my-org/voc2vec-demo"' in card and "--model my-org/voc2vec-demo" in card
    assert ModelCard(card).data.eval_results[0].metric_value == json.loads(files["summary.json"])["mean"]["uar"]
    assert (cv_model / "README.md").is_file()  # the card was written first, since the folder had none
    captured = capsys.readouterr()
    assert all(SECRET.encode() not in content for content in files.values())
    assert SECRET not in caplog.text + captured.out + captured.err


def test_not_logged_in_or_offline_is_a_user_error_before_any_request(cv_model, monkeypatch):
    hub = FakeHub().install(monkeypatch)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    with pytest.raises(UserError, match="not logged in.*hf auth login"):
        push_model(cv_model, "my-org/x")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(UserError, match="HF_HUB_OFFLINE"):
        push_model(cv_model, "my-org/x")
    assert hub.repos == [] and hub.commits == []


def test_hub_refusal_is_one_line_with_the_fix(online, cv_model, monkeypatch):
    class Response:  # what HfHubHTTPError reads of the HTTP client's response
        status_code, headers, request = 403, {}, None

    response = Response()

    def refuse(api, repo_id, **kwargs):
        raise HfHubHTTPError("403 Forbidden: you do not have write access to my-org", response=response)

    monkeypatch.setattr(HfApi, "create_repo", refuse)
    with pytest.raises(UserError, match="refused.*Fix: use a token with write access"):
        push_model(cv_model, "my-org/x")


def test_folder_without_safetensors_or_with_a_bad_repo_id_is_refused(online, tmp_path, cv_model):
    with pytest.raises(UserError, match="ORG/NAME"):
        push_model(cv_model, "no-namespace")
    (cv_model / "model.safetensors").unlink()
    with pytest.raises(UserError, match="safetensors"):
        push_model(cv_model, "my-org/x")


def test_uploaded_results_hold_no_local_path(online, tmp_path, monkeypatch):
    """summary.json (corpus_root, a local encoder, its settings), training_info.json and results.md name folders of the
    training machine: the upload names them by their last component, the run's own files keep them."""
    run_dir = tmp_path / "run"
    local_encoder, corpus_root = "/home/me/outputs/pretraining/final", "/home/me/corpora/donateacry-corpus"
    summary = write_summary(run_dir, model_name_or_path=local_encoder, corpus_root=corpus_root,
                            settings={"model_name_or_path": local_encoder, "num_folds": 5})
    model_dir = save_classifier(run_dir / "model")
    (model_dir / "training_info.json").write_text(json.dumps({"model_name_or_path": local_encoder, "saved_model": str(model_dir)}))
    (run_dir / "results.md").write_text(f"# demo: {local_encoder}\n\nclips under {corpus_root}/clips\n")
    (run_dir / "results.csv").write_text("fold,uar\n0,0.61\n")
    hub = FakeHub().install(monkeypatch)
    main(["push", str(model_dir), "--repo_id", "my-org/cries"])
    files = hub.uploaded()
    assert not [name for name, content in files.items() if b"/home/me" in content or str(tmp_path).encode() in content]
    published = json.loads(files["summary.json"])
    assert published["model_name_or_path"] == published["settings"]["model_name_or_path"] == "final"
    assert published["corpus_root"] == "donateacry-corpus"
    assert published["mean"] == summary["mean"] and published["num_folds"] == 5
    assert json.loads(files["training_info.json"]) == {"model_name_or_path": "final", "saved_model": "model"}
    assert files["results.md"].decode() == "# demo: final\n\nclips under donateacry-corpus/clips\n"
    assert files["results.csv"] == (run_dir / "results.csv").read_bytes()  # nothing to hide: as it is
    assert files["config.json"] == (model_dir / "config.json").read_bytes()
    assert {result.metric_type: result.metric_value for result in ModelCard(files["README.md"].decode()).data.eval_results} == published["mean"]
    assert json.loads((run_dir / "summary.json").read_text())["corpus_root"] == corpus_root  # the local record is untouched

    write_summary(run_dir, corpus_root="/corpora")  # a short path is replaced where it is a path, not inside other names
    (run_dir / "results.md").write_text("/corpora/clips, not meta/corpora or /corpora-old\n")
    hub = FakeHub().install(monkeypatch)
    main(["push", str(model_dir), "--repo_id", "my-org/cries"])
    assert hub.uploaded()["results.md"] == b"corpora/clips, not meta/corpora or /corpora-old\n"


def test_push_command_uploads_the_folder(online, cv_model, monkeypatch, capsys):
    hub = FakeHub().install(monkeypatch)
    assert main(["push", str(cv_model), "--repo_id", "my-org/voc2vec-demo", "--private", "--commit_message", "first model"]) == 0
    assert hub.repos == [("my-org/voc2vec-demo", {"repo_type": "model", "private": True, "exist_ok": True})]
    assert [(repo, kw["commit_message"]) for repo, _, kw in hub.commits] == [("my-org/voc2vec-demo", "first model")]
    assert {"README.md", "model.safetensors", "config.json", "summary.json"} <= set(hub.uploaded())
    assert f"uploaded {cv_model} -> https://huggingface.co/my-org/voc2vec-demo" in capsys.readouterr().err

    assert main(["push", str(cv_model), "--repo_id", "no-namespace"]) == 2
    assert "error: not a Hub repository id" in capsys.readouterr().err
    assert main(["push", str(cv_model)]) == 2  # --repo_id is required
    assert "--repo_id" in capsys.readouterr().err
    assert len(hub.commits) == 1


# ---- the Voc125 mixture ------------------------------------------------------------------------------------------------


def flac(seconds=0.5):
    buffer = io.BytesIO()
    soundfile.write(buffer, [0.0] * int(16000 * seconds), 16000, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


def write_mixture(folder, corpora):
    """A prepared mixture's files as voc2vec.mixture writes them: one shard per corpus and voc125.json."""
    folder.mkdir(parents=True)
    shards = []
    for index, corpus in enumerate(corpora):
        name = f"{corpus}-00000-of-00001-{index:010x}.parquet"
        rows = {"corpus": [corpus] * 2, "source_path": [f"{corpus}/a.wav", f"{corpus}/b.wav"], "offset": [0.0, 0.0],
                "duration": [0.5, 0.5], "speaker": ["s1", ""], "audio": [flac(), flac()]}
        pq.write_table(pa.table(rows, schema=SCHEMA), folder / name)
        shards.append(name)
    manifest = {"format_version": 1, "sampling_rate": 16000, "segment_rule": {"max_segment_seconds": 10.0, "min_segment_seconds": 2.0,
                "min_clip_seconds": 0.2}, "corpora": {corpus: {"data_dir": f"/home/someone/{corpus}"} for corpus in corpora},
                "shards": shards, "table": []}
    (folder / "voc125.json").write_text(json.dumps(manifest))
    return folder


def test_mixture_upload_holds_only_redistributable_corpora(online, tmp_path, monkeypatch):
    mixture = write_mixture(tmp_path / "voc125", ["human_voice", "nnime", "vocalsound", "audioset_vocalization"])
    hub = FakeHub().install(monkeypatch)
    push_mixture(mixture, "my-org/voc125-open", shards_per_commit=1)
    files = hub.uploaded()
    assert sorted(files) == ["README.md", "data/human_voice-00000-of-00001-0000000000.parquet",
                             "data/vocalsound-00000-of-00001-0000000002.parquet", "voc125.json"]
    assert [kw["repo_type"] for _, _, kw in hub.commits] == ["dataset"] * 3  # one shard per commit, then manifest + card
    manifest = json.loads(files["voc125.json"])
    assert sorted(manifest["corpora"]) == ["human_voice", "vocalsound"]
    assert "/home/someone" not in files["voc125.json"].decode()
    assert {row["corpus"]: row["segments"] for row in manifest["table"]} == {"human_voice": 2, "vocalsound": 2, "total": 4}

    card = DatasetCard(files["README.md"].decode())
    assert sorted(card.data.license) == ["cc-by-sa-4.0", "mit"]
    source, license_text = loader_notes("vocalsound")
    assert "CC BY-SA 4.0" in license_text and "vocalsound" in source
    assert f"| vocalsound | {license_text} | {source} | 0.00 | 2 | 0.50 | 2 | 24.37 h, 20985 clips, 4.18 s |" in card.text
    assert "`nnime`:" in card.text and "`audioset_vocalization`:" in card.text  # said to be left out, and why


def test_mixture_override_and_resume(online, tmp_path, monkeypatch):
    mixture = write_mixture(tmp_path / "voc125", ["nnime", "vocalsound"])
    hub = FakeHub(present=["data/vocalsound-00000-of-00001-0000000001.parquet"]).install(monkeypatch)
    push_mixture(mixture, "my-org/voc125", redistribute=["nnime"])
    files = hub.uploaded()
    assert sorted(files) == ["README.md", "data/nnime-00000-of-00001-0000000000.parquet", "voc125.json"]  # vocalsound was there
    assert sorted(json.loads(files["voc125.json"])["corpora"]) == ["nnime", "vocalsound"]
    assert "`--redistribute`" in files["README.md"].decode()


def test_mixture_with_nothing_redistributable_is_refused(online, tmp_path, monkeypatch):
    mixture = write_mixture(tmp_path / "voc125", ["nnime"])
    hub = FakeHub().install(monkeypatch)
    with pytest.raises(UserError, match="--redistribute"):
        push_mixture(mixture, "my-org/voc125")
    with pytest.raises(UserError, match="does not hold"):
        push_mixture(mixture, "my-org/voc125", redistribute=["vivae"])
    assert hub.commits == []


@pytest.mark.parametrize("corpus", VOC125_CORPORA + ["demo"])
def test_every_mixture_corpus_has_a_license_decision_and_documented_source(corpus):
    assert corpus in CORPUS_LICENSES
    source, license_text = loader_notes(corpus)
    assert source and not source.startswith("see ")
    assert (license_text is None) == (corpus == "demo")  # the synthetic corpus is ours: its terms are CORPUS_LICENSES'


def test_mixture_push_command_uploads_the_shards_and_card(online, tmp_path, monkeypatch, capsys):
    mixture = write_mixture(tmp_path / "voc125", ["human_voice", "nnime", "vocalsound"])
    hub = FakeHub().install(monkeypatch)
    assert main(["mixture", "push", str(mixture), "--repo_id", "my-org/voc125", "--redistribute", "nnime",
                 "--shards_per_commit", "2", "--private"]) == 0
    assert hub.repos == [("my-org/voc125", {"repo_type": "dataset", "private": True, "exist_ok": True})]
    assert [len(operations) for _, operations, _ in hub.commits] == [2, 1, 2]  # 3 shards two per commit, then manifest + card
    assert sorted(json.loads(hub.uploaded()["voc125.json"])["corpora"]) == ["human_voice", "nnime", "vocalsound"]
    assert f"uploaded {mixture} -> https://huggingface.co/my-org/voc125" in capsys.readouterr().err

    assert main(["mixture", "push", str(mixture), "--repo_id", "my-org/voc125", "--redistribute", "vivae"]) == 2
    assert "does not hold: vivae" in capsys.readouterr().err
    assert len(hub.commits) == 3
