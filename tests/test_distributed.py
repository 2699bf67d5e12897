"""voc2vec.distributed's decisions taken before any process group exists: which mode a launch runs in (read from the
command line or the config file before the arguments are parsed), and which rank runs which pending fold."""

import json
from collections import Counter

import pytest

from voc2vec.distributed import Launch, requested_distribute, share_folds, start


@pytest.mark.parametrize("argv, mode", [
    ([], "folds"),
    (["--num_folds", "5"], "folds"),
    (["--distribute", "ddp"], "ddp"),
    (["--distribute=ddp"], "ddp"),
    (["--num_folds", "5", "--distribute", "ddp", "--seed", "1"], "ddp"),
])
def test_distribute_from_the_command_line(argv, mode):
    assert requested_distribute(argv) == mode


def test_distribute_from_a_config_file_and_flags_that_override_it(tmp_path):
    yaml_config = tmp_path / "cv.yaml"
    yaml_config.write_text("num_folds: 5\ndistribute: ddp\n")
    json_config = tmp_path / "cv.json"
    json_config.write_text(json.dumps({"distribute": "ddp"}))
    assert requested_distribute([str(yaml_config)]) == requested_distribute([str(json_config)]) == "ddp"
    assert requested_distribute([str(yaml_config), "--distribute", "folds"]) == "folds"  # flags win, as when parsed
    assert requested_distribute([str(yaml_config), "--distribute=folds"]) == "folds"
    folds_config = tmp_path / "folds.yaml"
    folds_config.write_text("num_folds: 5\n")
    assert requested_distribute([str(folds_config)]) == "folds"


def test_one_process_is_a_plain_run(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert start(["--distribute", "ddp"]) == Launch.single()
    monkeypatch.setenv("WORLD_SIZE", "1")
    launch = start([])
    assert launch == Launch.single() and launch.is_main and not launch.distributed and launch.mode == "single"


def test_pending_folds_are_shared_round_robin():
    assert share_folds([0, 1, 2, 3, 4], 2) == {0: 0, 1: 1, 2: 0, 3: 1, 4: 0}
    assert share_folds([3, 7], 4) == {3: 0, 7: 1}  # more ranks than folds: the last ranks idle
    assert share_folds([], 8) == {}
    # A grid's (cell, fold) pairs, shared as one list: 2 cells x 5 folds keep all 8 ranks busy in the first round.
    pairs = [(cell, fold) for cell in range(2) for fold in range(5)]
    owners = share_folds(pairs, 8)
    assert list(owners) == pairs and sorted(Counter(owners.values()).values()) == [1] * 6 + [2] * 2
    assert owners[(1, 0)] == 5 and owners[(1, 3)] == 0
