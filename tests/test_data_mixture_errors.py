"""`python -m voc2vec.mixture prepare` with a bad config, an unwritable folder or a full disk (issue 11): one line
`error: <what> (<where>). Fix: <how>`, exit code 2, nothing written, and a resume that completes."""

import errno
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from corpus_fixtures import permissions_enforced, write_donateacry, write_nnime
from voc2vec import mixture

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def nnime_dir(tmp_path):
    return write_nnime(tmp_path / "nnime")


def write_config(tmp_path, text: str) -> Path:
    path = tmp_path / "voc125.yaml"
    path.write_text(f"output_dir: {tmp_path / 'out'}\ncache_dir: {tmp_path / 'cache'}\n" + text)
    return path


def refused(config, capsys, *fragments):
    """Run `prepare`; assert exit 2, one `error:` line with a Fix that holds `fragments`, and nothing written."""
    assert mixture.main(["prepare", str(config)]) == 2
    printed = capsys.readouterr().err
    message = printed[printed.index("error: "):]  # after the log lines; a layout error's Fix spans several lines
    assert ". Fix: " in message
    for fragment in fragments:
        assert fragment in message, message
    output_dir = Path(config).parent / "out"
    assert not output_dir.exists() or not any(output_dir.iterdir())
    return message


CASES = {
    "yaml syntax": ("corpora:\n  nnime:\n    data_dir: [unclosed\n", ["invalid YAML at line", "voc125.yaml"]),
    "num_proc: four": ("num_proc: four\ncorpora:\n  nnime: {data_dir: DATA}\n", ["num_proc must be a whole number above 0, got 'four'"]),
    "shard_hours: -1": ("shard_hours: -1\ncorpora:\n  nnime: {data_dir: DATA}\n", ["shard_hours must be a number above 0, got -1"]),
    "corpora as a list": ("corpora:\n  - nnime\n", ["corpora: a list where a mapping", "voc125.yaml"]),
    "no corpora": ("num_proc: 1\n", ["corpora: no 'corpora:' where a mapping"]),
    "corpus as a list": ("corpora:\n  nnime: [DATA]\n", ["a list where a mapping belongs (corpora: nnime)"]),
    "empty data_dir": ("corpora:\n  nnime:\n    data_dir: ''\n", ["data_dir is empty (corpora: nnime)"]),
    "no data_dir": ("corpora:\n  nnime:\n", ["data_dir is empty (corpora: nnime)"]),
    "per-corpus typo": ("corpora:\n  nnime:\n    data_dri: DATA\n", ["unknown key(s) data_dri (corpora: nnime)", "did you mean 'data_dir'?"]),
    "top-level typo": ("num_procs: 2\ncorpora:\n  nnime: {data_dir: DATA}\n", ["unknown key(s) num_procs", "did you mean 'num_proc'?"]),
    "unknown corpus": ("corpora:\n  nnim: {data_dir: DATA}\n", ["unknown corpus 'nnim' (corpora: nnim)", "did you mean 'nnime'?"]),
    "unknown config": ("corpora:\n  nnime:\n    data_dir: DATA\n    config: nosuch\n",
                       ["config 'nosuch' does not exist (corpora: nnime: config)", "the configs of nnime are default"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_config_is_one_line_with_the_fix(case, tmp_path, nnime_dir, capsys):
    text, fragments = CASES[case]
    refused(write_config(tmp_path, text.replace("DATA", str(nnime_dir))), capsys, *fragments)


def test_missing_config_file(tmp_path, capsys):
    message = refused(tmp_path / "absent.yaml", capsys, "config file does not exist")
    assert str(tmp_path / "absent.yaml") in message


def test_data_dir_holding_another_corpus_is_refused(tmp_path, capsys):
    donateacry = write_donateacry(tmp_path / "downloads")
    config = write_config(tmp_path, f"corpora:\n  nnime:\n    data_dir: {donateacry}\n")
    refused(config, capsys, f"nnime: '{donateacry}' holds another corpus, donateacry", "Expected layout for 'nnime'")


def test_command_line_shows_no_traceback(tmp_path, nnime_dir):
    config = write_config(tmp_path, f"num_procs: 2\ncorpora:\n  nnime: {{data_dir: {nnime_dir}}}\n")
    result = subprocess.run([sys.executable, "-m", "voc2vec.mixture", "prepare", str(config)], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: unknown key(s) num_procs ({config}). Fix: 'num_procs': did you mean 'num_proc'?")


@pytest.mark.parametrize("folder", ["output_dir", "cache_dir"])
def test_read_only_output_or_cache_folder_is_named(folder, tmp_path, nnime_dir, capsys):
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    config = tmp_path / "voc125.yaml"
    folders = {"output_dir": tmp_path / "out", "cache_dir": tmp_path / "cache", folder: read_only}
    config.write_text(f"output_dir: {folders['output_dir']}\ncache_dir: {folders['cache_dir']}\ncorpora:\n  nnime: {{data_dir: {nnime_dir}}}\n")
    read_only.chmod(0o555)
    try:
        with permissions_enforced():
            assert mixture.main(["prepare", str(config)]) == 2
    finally:
        read_only.chmod(0o755)
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message.startswith("error: not writable") and f"{folder} {read_only}" in message


def test_full_disk_while_writing_shards_names_the_folder_and_resumes(tmp_path, nnime_dir, capsys, monkeypatch):
    output_dir = tmp_path / "out"
    config = write_config(tmp_path, f"shard_hours: 0.0001\ncorpora:\n  nnime: {{data_dir: {nnime_dir}}}\n")  # one file per shard
    original = pq.ParquetWriter.write_table
    writes = []

    def disk_fills_at_second_shard(self, *args, **kwargs):
        writes.append(self)
        if len({id(writer) for writer in writes}) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetWriter, "write_table", disk_fills_at_second_shard)
    assert mixture.main(["prepare", str(config)]) == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message.startswith(f"error: no space left on device ({output_dir}). Fix: free disk space")
    finished = {path.name: path.stat().st_mtime_ns for path in output_dir.glob("*.parquet")}
    assert len(finished) == 1 and not [path for path in output_dir.iterdir() if ".tmp-" in path.name]
    assert not (output_dir / mixture.MANIFEST_NAME).exists()

    monkeypatch.setattr(pq.ParquetWriter, "write_table", original)
    assert mixture.main(["prepare", str(config)]) == 0
    shards = {Path(path).name: Path(path).stat().st_mtime_ns for path in mixture.shard_files(output_dir)}
    assert len(shards) == 2 and all(shards[name] == mtime for name, mtime in finished.items())  # the finished one kept


def test_stats_of_an_unfinished_mixture(tmp_path, capsys):
    assert mixture.main(["stats", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith(f"error: no finished mixture there (voc125.json is written last) ({tmp_path}). Fix: run")
