"""What the loop records and the checks that stop a run from silently going wrong.

`metrics.jsonl` gets one JSON row per logging step (the same numbers as the TensorBoard scalars), so a
run can be plotted or compared without TensorBoard; a resumed run first drops the rows logged after the
checkpoint it resumes from, which it is about to log again. The guards watch for the known failure modes of
contrastive pretraining: codebook collapse (perplexity near 1: every frame maps to the same few codes),
vanishing gradients, and a non-finite loss or gradient, which stops the run at the next logging step or
checkpoint, before either is written.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

# The collapse guards' thresholds (also the edges of the healthy ranges that `curves` shades).
COLLAPSED_PERPLEXITY_FRACTION = 0.01  # codevector perplexity below 1% of the codebook: collapsing
VANISHING_GRAD_NORM = 1e-7
GUARD_PATIENCE = 3  # logging steps in a row


class NonFiniteLossError(RuntimeError):
    """The loss or the gradients became NaN or infinite; the run stops before applying the update."""


class MetricsLog:
    """Appends one JSON object per call to `path` (main process only), flushed so a crash loses nothing."""

    def __init__(self, path: str | Path, enabled: bool = True):
        self.path = Path(path)
        self.enabled = enabled
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, row: dict) -> None:
        if not self.enabled:
            return
        with self.path.open("a") as file:
            file.write(json.dumps({key: _plain(value) for key, value in row.items()}) + "\n")

    def drop_rows_after(self, update: int) -> int:
        """Remove the rows past `update`: a run killed after its last checkpoint logged updates that the resumed
        run will log again. Rewritten through a temporary file, so a kill here loses nothing. Returns how many
        rows were dropped."""
        if not self.enabled or not self.path.exists():
            return 0
        lines = self.path.read_text().splitlines()
        kept = [line for line in lines if line.strip() and json.loads(line).get("update", 0) <= update]
        if len(kept) == len(lines):
            return 0
        temporary = self.path.with_name(f"{self.path.name}.tmp-{os.getpid()}")
        temporary.write_text("".join(line + "\n" for line in kept))
        os.replace(temporary, self.path)
        return len(lines) - len(kept)


def _plain(value):
    value = value.item() if hasattr(value, "item") else value
    return None if isinstance(value, float) and not math.isfinite(value) else value


class NonFiniteWatch:
    """Remembers, on the device and without waiting for it, the first update whose loss or gradient norm was not
    finite.

    A host-device synchronization on every step would stall the GPU, so the loop looks only at logging steps and
    before each checkpoint, where it synchronizes anyway: `raise_if_seen` stops the run there. Every log row,
    checkpoint and export is written after that check, so none holds anything from after the first bad update.
    """

    def __init__(self, device: torch.device):
        # 0: nothing seen (updates are counted from 1)
        self.first_bad_loss = torch.zeros((), dtype=torch.long, device=device)
        self.first_bad_grad_norm = torch.zeros((), dtype=torch.long, device=device)

    def observe_loss(self, update: int, loss: torch.Tensor) -> None:
        bad = ~torch.isfinite(loss.detach())
        self.first_bad_loss = torch.where(bad & (self.first_bad_loss == 0), update, self.first_bad_loss)

    def observe_grad_norm(self, update: int, grad_norm: torch.Tensor) -> None:
        bad = ~torch.isfinite(grad_norm.detach())
        self.first_bad_grad_norm = torch.where(bad & (self.first_bad_grad_norm == 0), update, self.first_bad_grad_norm)

    def raise_if_seen(self, accelerator, last_checkpoint: str | os.PathLike | None) -> None:
        """Raises `NonFiniteLossError` on every process if any process saw a non-finite loss or gradient norm."""
        seen = accelerator.gather(torch.stack([self.first_bad_loss, self.first_bad_grad_norm])[None]).view(-1, 2).tolist()
        # the earliest on any process; a loss and its gradients going bad at once is the loss's doing
        first = min(((update, column) for row in seen for column, update in enumerate(row) if update > 0), default=None)
        if first is not None:
            what = ("loss", "gradient norm")[first[1]]
            raise NonFiniteLossError(_non_finite_message(what, "not finite", first[0], last_checkpoint))


class _LowStreak:
    """Counts consecutive values below `floor`; `fires` once per episode, when the count reaches `patience`."""

    def __init__(self, floor: float, patience: int):
        self.floor, self.patience, self.count = floor, patience, 0

    def fires(self, value: float) -> bool:
        self.count = self.count + 1 if value < self.floor else 0
        return self.count == self.patience


class CollapseGuard:
    """Warns (once per episode) when codevector perplexity collapses or the gradient norm vanishes.

    Perplexity below `min_perplexity_fraction` of the codebook size (groups x entries) for
    `patience` logging steps in a row is a collapse; so is a gradient norm below `min_grad_norm`.
    """

    def __init__(
        self,
        num_codevectors: int | None,
        min_perplexity_fraction: float = COLLAPSED_PERPLEXITY_FRACTION,
        min_grad_norm: float = VANISHING_GRAD_NORM,
        patience: int = GUARD_PATIENCE,
    ):
        self.low_perplexity = _LowStreak(num_codevectors * min_perplexity_fraction, patience) if num_codevectors else None
        self.low_grad_norm = _LowStreak(min_grad_norm, patience)

    def check(self, update: int, perplexity: float | None = None, grad_norm: float | None = None) -> list[str]:
        """Returns (and logs) the warnings raised at this logging step."""
        warnings = []
        if self.low_perplexity is not None and perplexity is not None and self.low_perplexity.fires(perplexity):
            warnings.append(
                f"update {update}: codevector perplexity {perplexity:.2f} has stayed below {self.low_perplexity.floor:.2f} "
                f"for {self.low_perplexity.patience} logging steps: the codebook is collapsing (raise diversity_loss_weight "
                "or lower the learning rate)"
            )
        if grad_norm is not None and self.low_grad_norm.fires(grad_norm):
            warnings.append(
                f"update {update}: gradient norm {grad_norm:.2e} has stayed below {self.low_grad_norm.floor:.0e} for "
                f"{self.low_grad_norm.patience} logging steps: gradients are vanishing (check the learning rate schedule, "
                "fp16 loss scale, or frozen parameters)"
            )
        for warning in warnings:
            logger.warning(warning)
        return warnings


def check_finite_loss(loss_value: float, update: int, last_checkpoint: str | os.PathLike | None, what: str = "loss") -> None:
    """Raises `NonFiniteLossError` naming the last good checkpoint when `what` (the loss, or the gradient
    norm) is NaN or infinite."""
    if math.isfinite(loss_value):
        return
    raise NonFiniteLossError(_non_finite_message(what, loss_value, update, last_checkpoint))


def _non_finite_message(what: str, value, update: int, last_checkpoint: str | os.PathLike | None) -> str:
    where = f"the last good checkpoint is {last_checkpoint}" if last_checkpoint else "no checkpoint was saved yet"
    return (
        f"{what} is {value} at update {update}; stopping before anything after it is saved ({where}). "
        "Resume from it with --resume_from_checkpoint and a lower --learning_rate, or check the data for "
        "silent or clipped clips."
    )
