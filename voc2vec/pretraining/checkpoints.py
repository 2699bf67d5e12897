"""Checkpoints that survive being killed or a full disk: written under a temporary name, renamed when complete.

`save_checkpoint` writes accelerate's `save_state` (model, optimizer, scheduler, RNG states, the loop's
position) into `checkpoints/checkpoint-N.partial` and renames it to `checkpoint-N` once every process has
finished writing, so a folder under its final name is always complete. A kill during the save, or a disk that
fills up, leaves a `.partial` folder: `latest_checkpoint` skips it (and says so), and the next save removes it.
Before writing, the free space is checked against the checkpoint's size, so a full disk stops the run with a
message that names the folder instead of a half-written checkpoint and `basic_ios::clear: iostream error`.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

import torch

from voc2vec.errors import UserError, check_writable_dir, os_error_to_user_error

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = re.compile(r"checkpoint-(\d+)")
PARTIAL_SUFFIX = ".partial"
# accelerate writes the weights, the optimizer, the RNG states, then the registered objects in order: the
# scheduler (custom_checkpoint_0) and the loop's progress (custom_checkpoint_1) last. A folder of an older version
# of this loop (saved in place, without the rename) that lacks it was cut short.
LAST_WRITTEN_FILE = "custom_checkpoint_1.pkl"


def checkpoints_folder(output_dir: str | os.PathLike) -> Path:
    return Path(output_dir) / "checkpoints"


def list_checkpoints(output_dir: str | os.PathLike) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Complete checkpoints, oldest first, and the folders that are not (with the reason)."""
    folder = checkpoints_folder(output_dir)
    complete, skipped = [], []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if path.name.endswith(PARTIAL_SUFFIX):
            skipped.append((path, "a save that did not finish (killed, or the disk was full)"))
        elif CHECKPOINT_NAME.fullmatch(path.name) and path.is_dir():
            if (path / LAST_WRITTEN_FILE).exists():
                complete.append(path)
            else:
                skipped.append((path, f"incomplete: no {LAST_WRITTEN_FILE}"))
    complete.sort(key=lambda path: int(CHECKPOINT_NAME.fullmatch(path.name).group(1)))
    return complete, skipped


def latest_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint in `output_dir` (None if there is none); logs the folders it passed over."""
    complete, skipped = list_checkpoints(output_dir)
    for path, reason in skipped:
        logger.warning("skipping %s: %s", path, reason)
    return complete[-1] if complete else None


def resolve_resume_checkpoint(output_dir: str | os.PathLike, resume_from_checkpoint: str) -> Path | None:
    """`latest` (the newest complete checkpoint, or None to start fresh) or a checkpoint folder, which must be complete."""
    if resume_from_checkpoint == "latest":
        return latest_checkpoint(output_dir)
    path = Path(resume_from_checkpoint)
    if not path.is_dir():
        raise UserError("checkpoint folder not found", where=f"--resume_from_checkpoint {path}",
                        fix="give a checkpoints/checkpoint-N folder, or 'latest'")
    if path.name.endswith(PARTIAL_SUFFIX) or not (path / LAST_WRITTEN_FILE).exists():
        raise UserError("this checkpoint was not completely written (the run was stopped while saving it)",
                        where=f"--resume_from_checkpoint {path}",
                        fix="resume from an older checkpoint, or pass 'latest' to take the newest complete one")
    return path


def checkpoint_bytes(model: torch.nn.Module) -> int:
    """About what one checkpoint takes on disk: float32 weights plus AdamW's two moments of the trained ones."""
    weights = sum(parameter.numel() for parameter in model.parameters())
    trained = sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)
    return 4 * (weights + 2 * trained)


def check_free_space(folder: Path, needed_bytes: int) -> None:
    free = shutil.disk_usage(folder).free
    if free < needed_bytes:
        raise UserError(
            f"no space left on device for the next checkpoint: it needs about {needed_bytes / 2**20:.0f} MiB, "
            f"{free / 2**20:.0f} MiB are free",
            where=folder,
            fix="free disk space, lower --checkpoints_total_limit, or write to another --output_dir; then resume "
            "with --resume_from_checkpoint latest",
        )


def save_checkpoint(accelerator, output_dir: str | os.PathLike, update: int, keep: int, needed_bytes: int) -> Path:
    """`accelerator.save_state` into `checkpoint-<update>.partial`, renamed to `checkpoint-<update>` when every
    process is done; then all but the newest `keep` checkpoints (and any leftover partial folder) are removed."""
    folder = checkpoints_folder(output_dir)
    final = folder / f"checkpoint-{update}"
    partial = folder.joinpath(final.name + PARTIAL_SUFFIX)
    if accelerator.is_main_process:
        folder.mkdir(parents=True, exist_ok=True)
        if partial.exists():  # left by a save that was killed
            shutil.rmtree(partial)
    accelerator.wait_for_everyone()
    # Every process writes its own files (RNG states, DeepSpeed shards): each checks its own disk, and all stop
    # together if one of them cannot write, rather than leaving the others waiting for it.
    problem = None
    try:
        check_free_space(folder, needed_bytes)
    except UserError as error:
        problem = error
    all_fine = accelerator.gather(torch.tensor([problem is None], device=accelerator.device)).all().item()
    if not all_fine:
        raise problem or UserError("another process has no space left for the next checkpoint", where=folder,
                                   fix="free disk space and resume with --resume_from_checkpoint latest")
    try:
        accelerator.save_state(str(partial))
    except (OSError, RuntimeError) as error:
        if accelerator.is_main_process:
            shutil.rmtree(partial, ignore_errors=True)
        raise write_failure(error, folder, needed_bytes) from error
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if final.exists():  # a checkpoint of the same update from an earlier run in this folder: replace it
            stale = folder / f"{final.name}.replaced{PARTIAL_SUFFIX}"
            os.replace(final, stale)
            shutil.rmtree(stale)
        os.replace(partial, final)
        complete, skipped = list_checkpoints(output_dir)
        for old in complete[: max(len(complete) - keep, 0)]:
            shutil.rmtree(old)
        for leftover, _ in skipped:
            shutil.rmtree(leftover, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def write_failure(error: Exception, folder: Path, needed_bytes: int) -> Exception:
    """A `UserError` naming the folder when the failed save is a full disk or an unwritable folder (torch's own
    writer reports both as `basic_ios::clear: iostream error`), else the original error."""
    if isinstance(error, OSError):
        converted = os_error_to_user_error(error, folder / "checkpoint")
        if converted is not None:
            return converted
    try:
        check_free_space(folder, needed_bytes)
        check_writable_dir(folder, "--output_dir")
    except UserError as diagnosis:
        return diagnosis
    return error
