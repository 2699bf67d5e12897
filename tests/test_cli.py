"""The `voc2vec` command, through its entry point `voc2vec.cli.main`: outputs, help, and one-line errors with exit 2."""

import csv
import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from model_fixtures import LABELS, save_classifier, write_audio, write_clips, write_summary
from voc2vec import cli
from voc2vec.cli import Command, main, register


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_classifier(tmp_path_factory.mktemp("cli_model") / "model")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli_clips")
    write_clips(folder)
    (folder / "empty.wav").write_bytes(b"")
    return folder


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_classify_writes_the_documented_columns_and_reports_bad_files(model_dir, clips, tmp_path, capsys):
    assert main(["classify", str(clips), "--model", str(model_dir), "--output", str(tmp_path / "labels.csv"), "--quiet"]) == 0
    rows = read_csv(tmp_path / "labels.csv")
    assert list(rows[0]) == ["path", "label", "score"] + [f"prob_{name}" for name in LABELS]
    assert len(rows) == 7 and all(row["label"] in LABELS for row in rows)
    assert all(abs(sum(float(row[f"prob_{name}"]) for name in LABELS) - 1) < 1e-5 for row in rows)
    skipped = read_csv(tmp_path / "labels.csv.skipped.csv")
    assert [row["path"] for row in skipped] == [str(clips / "empty.wav")]
    assert "skipped 1 of 8 file(s)" in capsys.readouterr().err


def test_classify_jsonl_with_top_k(model_dir, clips, tmp_path):
    output = tmp_path / "labels.jsonl"
    assert main(["classify", str(clips / "a.wav"), str(clips / "sub"), "--model", str(model_dir), "--output", str(output),
                 "--top_k", "3", "--batch_size", "2", "--quiet"]) == 0
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [row["path"].rsplit("/", 1)[-1] for row in rows] == ["a.wav", "e.wav", "f.wav"]
    assert {row["label"] for row in rows[:1]} | {rows[0]["label_2"], rows[0]["label_3"]} == set(LABELS)
    assert rows[0]["score"] >= rows[0]["score_2"] >= rows[0]["score_3"]
    assert not (tmp_path / "labels.jsonl.skipped.csv").exists()


@pytest.mark.parametrize("argv, message", [
    (["classify", "{clips}", "--model", "{model}", "--output", "{tmp}/x.txt"], "--output must end in .csv or .jsonl"),
    (["classify", "{clips}", "--model", "{tmp}", "--output", "{tmp}/x.csv"], "cannot load an audio classifier"),
    (["classify", "{clips}/empty.wav", "--model", "{model}", "--output", "{tmp}/x.csv"], "none of the 1 file(s) could be decoded"),
    (["classify", "{tmp}/nothing_here", "--model", "{model}", "--output", "{tmp}/x.csv"], "none of the 1 file(s)"),
    (["classify", "{clips}", "--model", "{model}", "--output", "{tmp}/x.csv", "--top_k", "two"], "invalid int value"),
    (["classify", "{clips}", "--model", "{model}", "--output", "{tmp}/x.csv", "--batch_size", "0"], "--batch_size must be at least 1"),
    (["classify", "{clips}", "--model", "{model}", "--output", "{tmp}/x.csv", "--threads", "0"], "--threads must be at least 1"),
    (["embed", "{clips}", "--model", "{model}", "--output", "{tmp}/x.npy", "--layer", "7"], "layer 7 does not exist"),
    (["detect", "{clips}/missing.wav", "--model", "{model}", "--output_dir", "{tmp}/d"], "file not found"),
    (["card", "{model}"], "no results file found"),
    (["frobnicate"], "invalid choice"),
])
def test_user_mistakes_are_one_line_errors_with_exit_2(argv, message, model_dir, clips, tmp_path, capsys):
    argv = [item.format(clips=clips, model=model_dir, tmp=tmp_path) for item in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: ") and message in err and "Fix: " in err
    assert "Traceback" not in err


def test_embed_npy_with_file_list_and_parquet(model_dir, clips, tmp_path):
    assert main(["embed", str(clips), "--model", str(model_dir), "--output", str(tmp_path / "emb.npy"), "--quiet"]) == 0
    vectors = np.load(tmp_path / "emb.npy")
    files = (tmp_path / "emb.files.txt").read_text().splitlines()
    assert vectors.shape == (7, 64) and len(files) == 7 and files[0].endswith("a.wav")

    assert main(["embed", str(clips), "--model", str(model_dir), "--output", str(tmp_path / "emb.parquet"), "--layer", "all",
                 "--pooling", "mean+std", "--quiet"]) == 0
    table = pq.read_table(tmp_path / "emb.parquet")
    assert table.column_names == ["path", "layer_0", "layer_1", "layer_2"]
    assert table.column("path").to_pylist() == files
    np.testing.assert_allclose(np.asarray(table.column("layer_2").to_pylist())[:, :64], vectors, atol=1e-6)  # last layer's mean
    assert json.loads(table.schema.metadata[b"voc2vec"])["layers"] == [0, 1, 2]


def test_detect_writes_segments_scores_and_timeline(model_dir, tmp_path, capsys):
    recording = write_audio(tmp_path / "recording.wav", 6.0, 22050)
    assert main(["detect", str(recording), "--model", str(model_dir), "--output_dir", str(tmp_path / "out"), "--window", "1.5",
                 "--hop", "0.5", "--threshold", "0.3", "--quiet"]) == 0
    assert {path.name for path in (tmp_path / "out").iterdir()} == {"segments.csv", "scores.csv", "timeline.png"}
    assert list(read_csv(tmp_path / "out" / "scores.csv")[0])[:4] == ["start", "end", "label", "score"]
    assert "10 windows over 6.0 s" in capsys.readouterr().err


def test_card_command_writes_the_card(model_dir, tmp_path):
    run_dir = tmp_path / "run"
    summary = write_summary(run_dir)
    save_classifier(run_dir / "model")
    assert main(["card", str(run_dir / "model"), "--repo_id", "my-org/demo"]) == 0
    text = (run_dir / "model" / "README.md").read_text()
    assert f"value: {summary['mean']['uar']}" in text and 'model_id = "my-org/demo"' in text


def test_every_command_has_help(capsys):
    for name in cli.COMMANDS:
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0, name
        # the usage line is the command a user types, not the module or script behind it
        assert capsys.readouterr().out.startswith(f"usage: voc2vec {name} "), name
    for name in ["prepare", "stats"]:
        with pytest.raises(SystemExit):
            main(["mixture", name, "--help"])
        assert capsys.readouterr().out.startswith(f"usage: voc2vec mixture {name} "), name
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in ["stats", "mixture", "classify", "embed", "detect", "card", "push", "curves"])
    with pytest.raises(SystemExit):
        main(["mixture", "--help"])
    assert "push" in capsys.readouterr().out
    assert main(["mixture", "publish"]) == 2 and "invalid choice" in capsys.readouterr().err


def test_a_registered_command_is_listed_and_runs(monkeypatch, capsys):
    monkeypatch.setattr(cli, "COMMANDS", dict(cli.COMMANDS))
    seen = []
    register(Command("tsne", "2-D map of embeddings", lambda parser: parser.add_argument("--perplexity", type=float),
                     lambda args: seen.append(args.perplexity) or 0))
    assert main(["tsne", "--perplexity", "30"]) == 0 and seen == [30.0]
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "tsne" in capsys.readouterr().out


def test_curves_on_a_folder_without_metrics_says_so(tmp_path, capsys):
    # An empty run folder: the plotting module reports that metrics.jsonl is missing (tests/test_pretraining_curves.py
    # draws real runs).
    assert main(["curves", str(tmp_path)]) == 2
    assert "no metrics.jsonl" in capsys.readouterr().err


def test_stats_and_mixture_reach_their_modules(tmp_path, capsys):
    assert main(["stats", "folder", "--data_dir", str(tmp_path / "absent")]) == 2
    assert "error:" in capsys.readouterr().err
    assert main(["mixture", "stats", str(tmp_path)]) == 2  # no voc125.json here: the mixture module says so
    assert "voc125.json" in capsys.readouterr().err
