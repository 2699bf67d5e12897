"""The normalization of summed pretraining losses by the masked frames of the whole effective batch.

Both objectives (wav2vec 2.0's contrastive + diversity loss, HuBERT's masked cross-entropy) return their
loss terms *summed* over masked frames. As in fairseq, the update must be the gradient of
(sum of losses) / (masked frames), with both taken over the whole effective batch: every micro-batch of the
gradient-accumulation window on every process. Dividing each micro-batch by its own count (or averaging
per-process means) weights short clips more and changes the update with the number of GPUs; counting first
makes 1 GPU x 4 micro-batches, 4 GPUs x 1, and one large batch give the same update.
"""

from __future__ import annotations

import torch


def count_masked_frames(micro_batches: list[dict], accelerator) -> torch.Tensor:
    """Masked frames in this accumulation window summed over all processes (one all-reduce, no host sync).

    The count is taken on the CPU copies of the batches, before they move to the device, and sent with a
    non-blocking copy: the host never waits for the device here.
    """
    local = torch.stack([batch["mask_time_indices"].sum() for batch in micro_batches]).sum().to(torch.float64)
    if accelerator.device.type == "cuda":
        local = local.pin_memory()
    return accelerator.reduce(local.to(accelerator.device, non_blocking=True), reduction="sum")


def loss_multiplier(total_masked_frames: torch.Tensor, num_processes: int, gradient_accumulation_steps: int) -> torch.Tensor:
    """Factor for a micro-batch's summed loss so that the update is sum(loss) / total_masked_frames.

    `accelerator.backward` (or DeepSpeed) divides the loss by the accumulation steps, and data-parallel
    all-reduce averages gradients over processes; the factor undoes both, then divides by the global count.
    """
    return num_processes * gradient_accumulation_steps / total_masked_frames.clamp(min=1)
