"""`python -m voc2vec.corpora stats`: the Table II row a user checks a download against."""

import subprocess
import sys
from pathlib import Path

import pytest

from corpus_fixtures import count_donateacry

REPO = Path(__file__).resolve().parents[1]
DONATEACRY = REPO.parent / "shared" / "corpora" / "donateacry-corpus"


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "voc2vec.corpora", *args], cwd=REPO, capture_output=True, text=True)


@pytest.mark.skipif(not DONATEACRY.is_dir(), reason=f"real Donate A Cry copy not found at {DONATEACRY} (../shared beside the repo)")
def test_stats_on_real_donateacry(tmp_path):
    result = run_cli("stats", "donateacry", "--data_dir", str(DONATEACRY), "--cache_dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    counted = count_donateacry(DONATEACRY)  # the figures counted from the files with pathlib and soundfile
    assert f"| donateacry | 5 | {counted['hours']:.2f} | {counted['clips']} | {counted['mean_seconds']:.2f} |" in lines
    assert f"speakers: {counted['speakers']}" in lines
    assert f"original sampling rates: 8000 Hz x {counted['clips']}" in lines and counted["sampling_rates"] == [8000]
    for label, count in counted["class_counts"].items():
        assert f"  {label}: {count}" in lines


def test_stats_on_wrong_folder_names_the_expected_layout(tmp_path):
    (tmp_path / "corpus" / "laughs").mkdir(parents=True)
    (tmp_path / "corpus" / "laughs" / "a.wav").write_bytes(b"")
    result = run_cli("stats", "donateacry", "--data_dir", str(tmp_path / "corpus"), "--cache_dir", str(tmp_path / "hf"))
    assert result.returncode == 2
    assert "Expected layout for 'donateacry'" in result.stderr
    assert "belly_pain/*.wav" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_corpus_lists_known_ones(tmp_path):
    result = run_cli("stats", "no_such_corpus", "--data_dir", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.startswith("error: unknown corpus 'no_such_corpus'") and "Fix: use one of the known corpora" in result.stderr
    assert "donateacry" in result.stderr and "Traceback" not in result.stderr
