"""Cross-validation under `accelerate launch` / `torchrun` with several processes.

Two ways to use N processes (`--distribute`):

- `folds` (the default): folds are independent jobs, so each process runs its share of them on one device of
  its own and the speedup is linear. Each process is made a plain single-process run before anything reads the
  launcher's variables (the Trainer would otherwise join a process group and train every fold data-parallel):
  `RANK`, `WORLD_SIZE`, ... are removed from its environment and it sees only its own GPU. The processes still
  coordinate through the launcher's key-value store (`torch.distributed.rendezvous("env://")`, no process
  group): rank 0 alone plans (every cell of a grid), writes the run-level files and decodes, then publishes the
  pending folds, which every rank shares out the same way (`share_folds`: pending (cell, fold) pairs of a whole
  grid, not one cell at a time); when every rank has reported its folds done, rank 0 merges and prints.
- `ddp`: every fold runs on all processes with the Trainer's own data parallelism (a model or corpus too large
  for one device); the launcher's variables stay; rank 0 alone writes.

Without a launcher (or with one process) everything here is a no-op: `Launch.single()`.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from datetime import timedelta

from voc2vec.config_files import CONFIG_FILE_SUFFIXES, read_config_file

logger = logging.getLogger(__name__)

LAUNCHER_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK",
                      "ROLE_WORLD_SIZE", "GROUP_WORLD_SIZE", "TORCHELASTIC_RUN_ID")
# Folds of one run can take hours: a rank waits that long for rank 0's plan or the others' folds.
STORE_TIMEOUT = timedelta(days=7)
POLL_SECONDS = 2.0


@dataclass
class Launch:
    """This process's place in a multi-process launch, and the store the processes coordinate through."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    mode: str = "single"  # "single", "folds" or "ddp"
    store: object | None = None

    @classmethod
    def single(cls) -> "Launch":
        return cls()

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def publish(self, key: str, value: dict) -> None:
        """Rank 0 makes `value` available to every rank under `key`."""
        if self.store is not None:
            self.store.set(key, json.dumps(value))

    def receive(self, key: str) -> dict:
        """What rank 0 published under `key` (waits for it)."""
        self.store.wait([key], STORE_TIMEOUT)
        return json.loads(self.store.get(key))

    def report_done(self, key: str) -> None:
        if self.store is not None:
            self.store.add(key, 1)

    def wait_all_done(self, key: str) -> None:
        """Block until every rank called `report_done(key)`."""
        if self.store is None:
            return
        while self.store.add(key, 0) < self.world_size:
            time.sleep(POLL_SECONDS)


def requested_distribute(argv: list[str]) -> str:
    """`--distribute` as given on the command line or in the config file (before the arguments are parsed: the
    training arguments set up their device while being parsed, so folds mode must act before that)."""
    value = "folds"
    if argv and argv[0].endswith(CONFIG_FILE_SUFFIXES):
        value = str(read_config_file(argv[0]).get("distribute", value))
    for index, token in enumerate(argv):
        if token == "--distribute" and index + 1 < len(argv):
            value = argv[index + 1]
        elif token.startswith("--distribute="):
            value = token.split("=", 1)[1]
    return value


def start(argv: list[str], data_parallel_only: bool = False) -> Launch:
    """Join a launch of several processes (see the module docstring); a single process gets `Launch.single()`.
    `data_parallel_only`: one split to train (run_classification.py), so the processes always train it together."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Launch.single()
    import torch.distributed

    mode = "ddp" if data_parallel_only or requested_distribute(argv) == "ddp" else "folds"
    store, rank, world_size = next(torch.distributed.rendezvous("env://", timeout=STORE_TIMEOUT))
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    if mode == "folds":
        for name in LAUNCHER_VARIABLES:
            os.environ.pop(name, None)
        # One device per process; set before CUDA is initialized (nothing has touched it yet).
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        devices = visible.split(",") if visible else None
        os.environ["CUDA_VISIBLE_DEVICES"] = devices[local_rank % len(devices)] if devices else str(local_rank)
    logger.info("rank %d of %d (%s mode)", rank, world_size, mode)
    return Launch(rank, world_size, local_rank, mode, store)


def share_folds(pending: list, world_size: int) -> dict:
    """Which rank runs which pending fold (or (cell, fold) pair of a grid): round robin in the given order, so every
    rank gets within one fold of the others and consecutive folds of one cell go to different ranks."""
    return {fold: index % world_size for index, fold in enumerate(pending)}


class OtherRankFailed(RuntimeError):
    """Rank 0 failed at a step the other ranks wait for; rank 0 reports the error, the others exit quietly."""


def main_process_first(launch: Launch, key: str, main_work, other_work=None):
    """Run `main_work` on rank 0 first (preparing and decoding a corpus into a shared cache, writing run files),
    then `other_work` (default: the same) on the other ranks, which then find the cache ready."""
    if not launch.distributed:
        return main_work()
    if launch.is_main:
        try:
            result = main_work()
        except BaseException as error:
            launch.publish(key, {"error": f"{type(error).__name__}: {error}"})
            raise
        launch.publish(key, {"error": None})
        return result
    status = launch.receive(key)
    if status["error"]:
        raise OtherRankFailed(status["error"])
    return (other_work or main_work)()
