#!/usr/bin/env python
"""Self-supervised pretraining of voc2vec encoders: wav2vec 2.0 and HuBERT, from scratch or continued.

    python run_pretraining.py configs/pretraining/demo.yaml --max_train_steps 20
    accelerate launch run_pretraining.py configs/pretraining/voc2vec.yaml --output_dir runs/voc2vec
    torchrun --nproc_per_node 8 run_pretraining.py configs/pretraining/voc2vec.yaml

The YAML file gives every argument; flags after it override it. The model family (the config's
`model_type`) picks the objective (voc2vec.pretraining.objectives): wav2vec 2.0's contrastive + diversity
loss, or HuBERT's masked prediction of k-means targets. Batches hold no padding: each clip is cropped to
the shortest clip of its batch. `output_dir` gets `metrics.jsonl`, TensorBoard logs, checkpoints/ and
`final/`, the encoder and its feature extractor for `run_cv.py --model_name_or_path`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import datasets
import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import (
    DistributedDataParallelKwargs,
    DistributedType,
    LoggerType,
    ProjectConfiguration,
    TorchDynamoPlugin,
    set_seed,
)
from tqdm.auto import tqdm
from transformers import (
    AutoFeatureExtractor,
    Wav2Vec2FeatureExtractor,
    get_linear_schedule_with_warmup,
)

from voc2vec.arguments import parse_arguments as parse_config_and_flags
from voc2vec.errors import UserError, check_writable_dir, exit_on_user_error
from voc2vec.logs import configure_logging
from voc2vec.pretraining.batching import (
    LENGTH_TOTALS,
    DurationBucketBatchSampler,
    MaskedPretrainingCollator,
    batch_length_shares,
    length_shares,
)
from voc2vec.pretraining.checkpoints import (
    checkpoint_bytes,
    resolve_resume_checkpoint,
    save_checkpoint,
)
from voc2vec.pretraining.data import (
    AudioClipDataset,
    decode_audio_value,
    load_pretraining_dataset,
)
from voc2vec.pretraining.loss_normalization import count_masked_frames, loss_multiplier
from voc2vec.pretraining.monitoring import (
    CollapseGuard,
    MetricsLog,
    NonFiniteLossError,
    NonFiniteWatch,
    check_finite_loss,
)
from voc2vec.pretraining.objectives import objective_for

logger = logging.getLogger("run_pretraining")

ATTENTION_IMPLEMENTATIONS = ("eager", "sdpa", "flash_attention_2", "flex_attention")
MIXED_PRECISIONS = ("auto", "no", "fp16", "bf16")
TRACKERS = ("none", "all", *(tracker.value for tracker in LoggerType))
RUN_FILE = "pretraining_run.json"  # the run's settings and objective, beside metrics.jsonl (read by `curves`)
TRAINING_INFO_FILE = "training_info.json"  # the same in final/, with the updates done and the last metrics row (read by model cards)


def require(condition: bool, message: str) -> None:
    """A `__post_init__` check: parse_arguments turns the ValueError into `error: <message> (<config>)`."""
    if not condition:
        raise ValueError(message)


@dataclass
class ModelArguments:
    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Checkpoint to continue pretraining from (e.g. facebook/wav2vec2-base, facebook/hubert-base-ls960)."},
    )
    config_name: str | None = field(
        default=None,
        metadata={"help": "Model config (name or JSON path) to pretrain from scratch; ignored with model_name_or_path."},
    )
    feature_extractor_name: str | None = field(
        default=None, metadata={"help": "Feature extractor to save with the model; defaults to the checkpoint's."}
    )
    cache_dir: str | None = field(default=None, metadata={"help": "Where downloaded models and datasets are cached."})
    attn_implementation: str = field(
        default="sdpa", metadata={"help": f"Attention kernels: {', '.join(ATTENTION_IMPLEMENTATIONS)} (sdpa: PyTorch's fused attention)."}
    )
    layerdrop: float | None = field(
        default=None, metadata={"help": "Probability of skipping each transformer layer in an update (config's if unset; fairseq base: 0.05)."}
    )
    freeze_feature_encoder: bool = field(default=False, metadata={"help": "Keep the convolutional feature encoder fixed."})
    feature_grad_mult: float = field(
        default=1.0, metadata={"help": "Scale of the gradient into the CNN feature encoder (fairseq's from-scratch recipes: 0.1)."}
    )
    feature_penalty_weight: float = field(
        default=0.0, metadata={"help": "Weight of the L2 penalty on the CNN features (fairseq's from-scratch recipes: 10)."}
    )
    mask_time_prob: float = field(
        default=0.65, metadata={"help": "Probability that a frame starts a masked span (wav2vec 2.0: 0.65, HuBERT: 0.8)."}
    )
    mask_time_length: int = field(default=10, metadata={"help": "Length of each masked span, in 20 ms frames."})
    mask_time_min_masks: int = field(default=2, metadata={"help": "Masked spans per clip at least."})
    num_negatives: int | None = field(default=None, metadata={"help": "wav2vec 2.0 distractors per masked frame (config's if unset)."})
    diversity_loss_weight: float | None = field(default=None, metadata={"help": "wav2vec 2.0 diversity loss weight (config's if unset)."})
    max_gumbel_temperature: float = field(default=2.0, metadata={"help": "Gumbel softmax temperature at the first update."})
    min_gumbel_temperature: float = field(default=0.5, metadata={"help": "Floor of the Gumbel softmax temperature."})
    gumbel_temperature_decay: float = field(default=0.999995, metadata={"help": "Per-update decay of the Gumbel temperature."})
    num_clusters: int = field(default=500, metadata={"help": "HuBERT: k-means clusters (k) of the frame targets."})
    kmeans_features: str = field(
        default="auto",
        metadata={"help": "HuBERT targets from 'mfcc' (Kaldi MFCCs) or a 'layer' of the initial model; 'auto': layer when continuing a checkpoint, else mfcc."},
    )
    kmeans_layer: int = field(default=9, metadata={"help": "HuBERT: transformer layer of the initial model clustered for targets."})
    kmeans_max_fit_clips: int = field(default=10000, metadata={"help": "HuBERT: clips sampled to fit k-means."})
    kmeans_cache_dir: str = field(
        default="~/.cache/voc2vec/kmeans", metadata={"help": "HuBERT: cache of fitted targets, reused by later runs."}
    )
    hubert_projection_dim: int = field(default=256, metadata={"help": "HuBERT head: dimension of the projection and cluster embeddings."})
    hubert_logit_temperature: float = field(default=0.1, metadata={"help": "HuBERT head: temperature of the cosine similarities."})

    def __post_init__(self):
        require(bool(self.model_name_or_path or self.config_name),
                "give --model_name_or_path (continued pretraining) or --config_name (from scratch)")
        require(self.attn_implementation in ATTENTION_IMPLEMENTATIONS,
                f"--attn_implementation must be one of {', '.join(ATTENTION_IMPLEMENTATIONS)}, got {self.attn_implementation!r}")
        require(self.layerdrop is None or 0 <= self.layerdrop < 1, f"--layerdrop must be in [0, 1), got {self.layerdrop}")
        require(0 < self.feature_grad_mult <= 1,
                f"--feature_grad_mult must be in (0, 1] (use --freeze_feature_encoder to freeze the CNN), got {self.feature_grad_mult}")
        require(self.feature_penalty_weight >= 0, f"--feature_penalty_weight must be 0 or more, got {self.feature_penalty_weight}")
        require(0 < self.mask_time_prob <= 1, f"--mask_time_prob must be in (0, 1], got {self.mask_time_prob}")
        require(self.mask_time_length >= 1, f"--mask_time_length must be at least 1 frame, got {self.mask_time_length}")
        require(self.mask_time_min_masks >= 1, f"--mask_time_min_masks must be at least 1, got {self.mask_time_min_masks}")
        require(self.num_negatives is None or self.num_negatives >= 1, f"--num_negatives must be at least 1, got {self.num_negatives}")
        require(self.diversity_loss_weight is None or self.diversity_loss_weight >= 0,
                f"--diversity_loss_weight must be 0 or more, got {self.diversity_loss_weight}")
        require(0 < self.min_gumbel_temperature <= self.max_gumbel_temperature,
                f"Gumbel temperatures need 0 < --min_gumbel_temperature <= --max_gumbel_temperature, got "
                f"{self.min_gumbel_temperature} and {self.max_gumbel_temperature}")
        require(0 < self.gumbel_temperature_decay <= 1, f"--gumbel_temperature_decay must be in (0, 1], got {self.gumbel_temperature_decay}")
        require(self.num_clusters >= 2, f"--num_clusters must be at least 2, got {self.num_clusters}")
        require(self.kmeans_features in ("auto", "mfcc", "layer"),
                f"--kmeans_features must be auto, mfcc or layer, got {self.kmeans_features!r}")
        require(self.kmeans_layer >= 0, f"--kmeans_layer must be 0 or more, got {self.kmeans_layer}")
        require(self.kmeans_max_fit_clips >= 1, f"--kmeans_max_fit_clips must be at least 1, got {self.kmeans_max_fit_clips}")
        require(self.hubert_projection_dim >= 1, f"--hubert_projection_dim must be at least 1, got {self.hubert_projection_dim}")
        require(self.hubert_logit_temperature > 0, f"--hubert_logit_temperature must be positive, got {self.hubert_logit_temperature}")


@dataclass
class DataArguments:
    dataset_name: str | None = field(default=None, metadata={"help": "A corpus known to voc2vec.corpora.load_corpus (e.g. demo)."})
    data_dir: str | None = field(
        default=None, metadata={"help": "The corpus's files with dataset_name; alone, a folder of audio files."}
    )
    train_files: list[str] | None = field(
        default=None, metadata={"help": "Parquet shards (paths or globs), e.g. the Voc125 mixture.", "nargs": "+"}
    )
    audio_column: str | None = field(
        default=None, metadata={"help": "Column with paths, encoded bytes or samples ('path' for corpora, 'audio' for Parquet)."}
    )
    max_crop_seconds: float = field(default=10.0, metadata={"help": "Longer clips are randomly cropped to this length."})
    min_duration_seconds: float = field(default=0.5, metadata={"help": "Shorter clips are left out (too few frames to mask)."})
    max_batch_seconds: float = field(
        default=87.5, metadata={"help": "Audio seconds per micro-batch per device (wav2vec 2.0 base: 1.4M samples)."}
    )
    pad_to_longest: bool = field(
        default=False,
        metadata={"help": "Pad clips to the longest of their batch (with an attention mask for layer-norm models) instead of "
                  "cropping them to the shortest (fairseq's pad=False: no zero enters the model)."},
    )
    num_buckets: int = field(default=20, metadata={"help": "Duration buckets; more buckets, less cropping or padding, less randomness."})
    max_train_clips: int | None = field(default=None, metadata={"help": "Use only the first N clips (quick experiments)."})
    dataloader_num_workers: int = field(
        default=2, metadata={"help": "Processes decoding audio ahead of the training step (each delivers about 1,500+ audio s/s)."}
    )

    def __post_init__(self):
        require(bool(self.dataset_name or self.data_dir or self.train_files), "give --dataset_name, --data_dir or --train_files")
        require(self.max_crop_seconds > 0, f"--max_crop_seconds must be positive, got {self.max_crop_seconds}")
        require(self.min_duration_seconds >= 0.05,
                f"--min_duration_seconds must be at least 0.05 (a few 20 ms frames to mask), got {self.min_duration_seconds}")
        require(self.min_duration_seconds <= self.max_crop_seconds,
                f"--min_duration_seconds ({self.min_duration_seconds}) must not exceed --max_crop_seconds ({self.max_crop_seconds})")
        require(self.max_batch_seconds > 0, f"--max_batch_seconds must be positive, got {self.max_batch_seconds}")
        require(self.num_buckets >= 1, f"--num_buckets must be at least 1, got {self.num_buckets}")
        require(self.max_train_clips is None or self.max_train_clips >= 1, f"--max_train_clips must be at least 1, got {self.max_train_clips}")
        require(self.dataloader_num_workers >= 0, f"--dataloader_num_workers must be 0 or more, got {self.dataloader_num_workers}")


@dataclass
class PretrainingArguments:
    output_dir: str = field(default="outputs/pretraining", metadata={"help": "Checkpoints, logs, metrics.jsonl and final/."})
    seed: int = field(default=42, metadata={"help": "Seed of initialization, batches, crops and masks."})
    learning_rate: float = field(default=5e-4, metadata={"help": "Peak learning rate."})
    warmup_ratio: float = field(default=0.08, metadata={"help": "Fraction of updates warming the learning rate up linearly."})
    weight_decay: float = field(default=0.01, metadata={"help": "Decoupled weight decay (AdamW)."})
    adam_beta1: float = field(default=0.9, metadata={"help": "Adam beta1."})
    adam_beta2: float = field(default=0.98, metadata={"help": "Adam beta2 (wav2vec 2.0: 0.98)."})
    adam_epsilon: float = field(default=1e-6, metadata={"help": "Adam epsilon."})
    max_grad_norm: float = field(default=10.0, metadata={"help": "Gradient clipping norm."})
    max_train_steps: int = field(default=400000, metadata={"help": "Number of updates (0: only prepare, e.g. fit HuBERT targets)."})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Micro-batches per update on each device."})
    mixed_precision: str = field(
        default="auto",
        metadata={"help": "no, fp16 or bf16; 'auto': the accelerate config's if it names one, else bf16 on GPUs that have it, fp16 on older GPUs, no on CPU."},
    )
    torch_compile: bool = field(
        default=False,
        metadata={"help": "Compile the model with torch.compile, with dynamic shapes (every batch has its own length); pays off on long GPU runs."},
    )
    torch_compile_backend: str = field(
        default="inductor", metadata={"help": "torch.compile backend with --torch_compile (inductor; eager or aot_eager to debug)."}
    )
    logging_steps: int = field(default=100, metadata={"help": "Updates between log rows (each row: means over those updates)."})
    checkpointing_steps: int = field(default=5000, metadata={"help": "Updates between checkpoints."})
    checkpoints_total_limit: int = field(default=3, metadata={"help": "Checkpoints kept (the oldest are deleted)."})
    resume_from_checkpoint: str | None = field(
        default=None, metadata={"help": "A checkpoint folder, or 'latest' for the newest complete one in output_dir (starts fresh if none)."}
    )
    report_to: str = field(default="tensorboard", metadata={"help": "accelerate tracker (tensorboard, wandb, ...) or 'none'."})
    push_to_hub: bool = field(default=False, metadata={"help": "Upload final/ (encoder, feature extractor, card) to the Hub at the end."})
    hub_model_id: str | None = field(default=None, metadata={"help": "The Hub repository for --push_to_hub, ORG/NAME."})
    hub_private_repo: bool | None = field(default=None, metadata={"help": "Create the Hub repository as private."})

    def __post_init__(self):
        require(not self.push_to_hub or bool(self.hub_model_id), "--push_to_hub needs --hub_model_id ORG/NAME (the repository to create or update)")
        require(self.seed >= 0, f"--seed must be 0 or more, got {self.seed}")
        require(self.learning_rate > 0, f"--learning_rate must be positive, got {self.learning_rate}")
        require(0 <= self.warmup_ratio <= 1, f"--warmup_ratio must be in [0, 1], got {self.warmup_ratio}")
        require(self.weight_decay >= 0, f"--weight_decay must be 0 or more, got {self.weight_decay}")
        require(0 <= self.adam_beta1 < 1 and 0 <= self.adam_beta2 < 1,
                f"--adam_beta1 and --adam_beta2 must be in [0, 1), got {self.adam_beta1} and {self.adam_beta2}")
        require(self.adam_epsilon > 0, f"--adam_epsilon must be positive, got {self.adam_epsilon}")
        require(self.max_grad_norm > 0, f"--max_grad_norm must be positive, got {self.max_grad_norm}")
        require(self.max_train_steps >= 0, f"--max_train_steps must be 0 or more, got {self.max_train_steps}")
        require(self.gradient_accumulation_steps >= 1, f"--gradient_accumulation_steps must be at least 1, got {self.gradient_accumulation_steps}")
        require(self.mixed_precision in MIXED_PRECISIONS,
                f"--mixed_precision must be one of {', '.join(MIXED_PRECISIONS)}, got {self.mixed_precision!r}")
        require(self.logging_steps >= 1, f"--logging_steps must be at least 1, got {self.logging_steps}")
        require(self.checkpointing_steps >= 1, f"--checkpointing_steps must be at least 1, got {self.checkpointing_steps}")
        require(self.checkpoints_total_limit >= 1, f"--checkpoints_total_limit must be at least 1, got {self.checkpoints_total_limit}")
        require(self.report_to in TRACKERS, f"--report_to must be one of {', '.join(TRACKERS)}, got {self.report_to!r}")
        if self.torch_compile:
            backends = torch._dynamo.list_backends(exclude_tags=())
            require(self.torch_compile_backend in backends,
                    f"--torch_compile_backend must be one of {', '.join(backends)}, got {self.torch_compile_backend!r}")


@dataclass
class TrainingProgress:
    """The loop's position, saved in every checkpoint: updates done and batches this process consumed."""

    update: int = 0
    batches_consumed: int = 0

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        self.update, self.batches_consumed = state["update"], state["batches_consumed"]


def parse_arguments(argv: list[str] | None = None, prog: str | None = None) -> tuple[ModelArguments, DataArguments, PretrainingArguments]:
    """A YAML (or JSON) file as first argument gives the values; flags after it override them."""
    *arguments, grid = parse_config_and_flags((ModelArguments, DataArguments, PretrainingArguments), argv, prog=prog)
    if grid is not None:
        raise UserError("pretraining configs take no grid: section", where=argv[0] if argv else None,
                        fix="remove it (grids are run_cv.py's)")
    return tuple(arguments)


def resolve_mixed_precision(requested: str) -> str | None:
    if requested != "auto":
        return requested
    # `accelerate launch` always sets this, to "no" when its config names no precision; a DeepSpeed config
    # cannot name one (accelerate refuses it next to a DeepSpeed file), so "no" must not mean fp32 here.
    if os.environ.get("ACCELERATE_MIXED_PRECISION", "no") != "no":
        return None
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "no"


def launched_on_cpus_only() -> bool:
    """Several processes (torchrun, accelerate launch) on a machine without GPUs: accelerate then needs `cpu=True`
    to join them (gloo); without it every process trains alone and writes its own metrics rows."""
    several = int(os.environ.get("WORLD_SIZE", "1")) > 1
    deepspeed = os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"
    return several and not deepspeed and not torch.accelerator.is_available()


def compile_plugin(training_args: PretrainingArguments) -> TorchDynamoPlugin | None:
    """torch.compile settings for accelerate (None: accelerate's defaults, i.e. no compilation unless its config asks).

    Shapes are dynamic from the first compilation: batches are cropped to their shortest clip, so each has its own
    length (and number of clips), and static shapes would recompile the model for every new one."""
    if not training_args.torch_compile:
        return None
    return TorchDynamoPlugin(backend=training_args.torch_compile_backend, dynamic=True)


def load_feature_extractor(model_args: ModelArguments, config) -> Wav2Vec2FeatureExtractor:
    source = model_args.feature_extractor_name or model_args.model_name_or_path
    if source:
        return AutoFeatureExtractor.from_pretrained(source, cache_dir=model_args.cache_dir)
    # The wav2vec 2.0 convention: normalized input; only layer-norm models take an attention mask.
    return Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
        return_attention_mask=config.feat_extract_norm == "layer",
    )


def check_output_folders(model_args: ModelArguments, data_args: DataArguments, training_args: PretrainingArguments, objective) -> None:
    """Every folder the run writes to, checked before any work: an unwritable one is an error that names it."""
    check_writable_dir(training_args.output_dir, "--output_dir")
    if model_args.cache_dir:
        check_writable_dir(model_args.cache_dir, "--cache_dir")
    elif data_args.train_files:  # load_dataset("parquet") converts the shards into the datasets cache
        check_writable_dir(datasets.config.HF_DATASETS_CACHE, "HF_DATASETS_CACHE")
    if objective.model_type == "hubert":
        check_writable_dir(os.path.expanduser(model_args.kmeans_cache_dir), "--kmeans_cache_dir")


def write_json(path: Path, content: dict) -> None:
    temporary = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    temporary.write_text(json.dumps(content, indent=1, default=str) + "\n")
    os.replace(temporary, path)


def write_model_card(final_dir: Path, training_args, model_args, data_args, objective, summary: dict) -> None:
    """final/README.md, written by voc2vec.cards (the card of a self-supervised encoder without a head). A card that
    cannot be written never costs the trained model: it is logged, and `voc2vec card final/` writes it later."""
    from voc2vec.cards import write_encoder_card

    last = summary["last_metrics"] or {}
    facts = {"objective": objective.model_type, "updates": summary["updates"]}
    facts.update({f"last {name}": f"{last[name]:.4g}" for name in ("loss", "codevector_perplexity", "masked_accuracy") if last.get(name) is not None})
    try:
        write_encoder_card(final_dir, training_args, base_model=model_args.model_name_or_path,
                           datasets=[data_args.dataset_name] if data_args.dataset_name else None, training_summary=facts)
    except Exception as error:  # noqa: BLE001 - the encoder is saved; the card can be written again from it
        logger.warning("model card not written (%s); write it with `voc2vec card %s`", error, final_dir)


@exit_on_user_error
def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    model_args, data_args, training_args = parse_arguments(argv, prog)
    output_dir = Path(training_args.output_dir)
    objective = objective_for(model_args)  # reads the model config only
    check_output_folders(model_args, data_args, training_args, objective)
    report_to = None if training_args.report_to == "none" else training_args.report_to
    accelerator = Accelerator(
        cpu=launched_on_cpus_only(),
        gradient_accumulation_steps=training_args.gradient_accumulation_steps,
        mixed_precision=resolve_mixed_precision(training_args.mixed_precision),
        log_with=report_to,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "runs")),
        # layerdrop skips different layers on each process: DDP must not wait for their gradients
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=objective.config.layerdrop > 0)],
        dynamo_plugin=compile_plugin(training_args),
    )
    configure_logging(logging.INFO if accelerator.is_main_process else logging.WARNING)
    if torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True  # the float32 parts (quantizer, losses)
    set_seed(training_args.seed)
    try:
        train(model_args, data_args, training_args, objective, accelerator)
    except NonFiniteLossError as error:
        logger.error("%s", error)
        return 3
    return 0


def train(model_args: ModelArguments, data_args: DataArguments, training_args: PretrainingArguments, objective,
          accelerator: Accelerator) -> Path:
    output_dir = Path(training_args.output_dir)
    # which checkpoint to resume from is settled before any work, so a wrong path fails at once
    last_checkpoint = None
    if training_args.resume_from_checkpoint:
        last_checkpoint = resolve_resume_checkpoint(output_dir, training_args.resume_from_checkpoint)

    # ---- data and model ----
    dataset, audio_column = load_pretraining_dataset(
        data_args.dataset_name, data_args.data_dir, data_args.train_files, data_args.audio_column, model_args.cache_dir
    )
    if data_args.max_train_clips is not None:
        dataset = dataset.select(range(min(data_args.max_train_clips, len(dataset))))
    dataset = dataset.filter(lambda duration: duration >= data_args.min_duration_seconds, input_columns="duration")
    if len(dataset) == 0:
        raise UserError(f"no clip lasts at least {data_args.min_duration_seconds} s", where="--min_duration_seconds",
                        fix="lower --min_duration_seconds or check the audio")
    model = objective.build_model()
    feature_extractor = load_feature_extractor(model_args, objective.config)
    sampling_rate = feature_extractor.sampling_rate
    audio = dataset.select_columns([audio_column])

    def decode(index: int) -> np.ndarray:  # as read: MFCC targets are computed on the raw waveform, as in fairseq
        return decode_audio_value(audio[index][audio_column])

    frame_labels = objective.frame_targets(model, dataset, decode, feature_extractor.do_normalize, accelerator, training_args.seed)
    crop_to_shortest = not data_args.pad_to_longest
    collator = MaskedPretrainingCollator(
        conv_kernel=objective.config.conv_kernel,
        conv_stride=objective.config.conv_stride,
        max_crop_samples=int(data_args.max_crop_seconds * sampling_rate),
        crop_to_shortest=crop_to_shortest,
        do_normalize=feature_extractor.do_normalize,
        mask_prob=model_args.mask_time_prob,
        mask_length=model_args.mask_time_length,
        min_masks=model_args.mask_time_min_masks,
        num_negatives=objective.num_negatives,
        seed=training_args.seed,
        sampling_rate=sampling_rate,
    )
    crop_durations = np.minimum(np.asarray(dataset["duration"], dtype=np.float64), data_args.max_crop_seconds)
    logger.info("%d clips, %.1f h of audio", len(dataset), crop_durations.sum() / 3600)

    # ---- optimization ----
    # Fused AdamW: one kernel for all parameters instead of several per tensor (on the CPU, 80 -> 6 ms per step for the tiny model).
    is_deepspeed = accelerator.distributed_type == DistributedType.DEEPSPEED
    optimizer = torch.optim.AdamW(
        [parameter for parameter in model.parameters() if parameter.requires_grad],
        lr=training_args.learning_rate,
        betas=(training_args.adam_beta1, training_args.adam_beta2),
        eps=training_args.adam_epsilon,
        weight_decay=training_args.weight_decay,
        fused=not is_deepspeed,
    )
    # Stepped by hand once per update (not prepared: accelerate would step it once per process).
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(training_args.warmup_ratio * training_args.max_train_steps), training_args.max_train_steps
    )
    if is_deepspeed:
        deepspeed_config = accelerator.state.deepspeed_plugin.deepspeed_config
        # Batches are counted in seconds, not clips: DeepSpeed's clip count only feeds its throughput logs.
        if deepspeed_config.get("train_micro_batch_size_per_gpu", "auto") == "auto":
            deepspeed_config["train_micro_batch_size_per_gpu"] = 1
        if deepspeed_config.get("gradient_clipping", "auto") == "auto":  # accelerate would fill in 1.0
            deepspeed_config["gradient_clipping"] = training_args.max_grad_norm
    checkpoint_size = checkpoint_bytes(model)
    model, optimizer = accelerator.prepare(model, optimizer)
    progress = TrainingProgress()
    accelerator.register_for_checkpointing(scheduler, progress)

    if last_checkpoint is not None:
        accelerator.load_state(str(last_checkpoint))
        logger.info("resumed from %s at update %d", last_checkpoint, progress.update)
    elif training_args.resume_from_checkpoint:
        logger.info("no complete checkpoint in %s: starting from scratch", output_dir / "checkpoints")

    batch_sampler = DurationBucketBatchSampler(
        crop_durations, data_args.max_batch_seconds, data_args.num_buckets, seed=training_args.seed,
        num_processes=accelerator.num_processes, process_index=accelerator.process_index,
        start_batch=progress.batches_consumed, crop_to_shortest=crop_to_shortest,
    )
    # what equal lengths cost in the first epoch's batches, both ways (metrics.jsonl: the same for the batches trained)
    batch_lengths = {"equalized_by": "cropping to the shortest clip" if crop_to_shortest else "padding to the longest clip",
                     **batch_length_shares(crop_durations, batch_sampler.epoch_batches(0))}
    logger.info(
        "equal-length batches: cropping each clip to the shortest of its batch drops %.1f%% of the audio; padding "
        "to the longest makes %.1f%% of the input zeros (this run: %s)", 100 * batch_lengths["dropped_by_cropping"],
        100 * batch_lengths["padding_share"], batch_lengths["equalized_by"],
    )
    dataloader = torch.utils.data.DataLoader(
        AudioClipDataset(dataset, audio_column, frame_labels),
        batch_sampler=batch_sampler,
        collate_fn=collator,
        num_workers=data_args.dataloader_num_workers,
        pin_memory=torch.cuda.is_available(),
        # its own generator, so creating the loader on resume does not advance the global RNG
        generator=torch.Generator().manual_seed(training_args.seed),
    )
    batches = iter(dataloader)

    metrics_log = MetricsLog(output_dir / "metrics.jsonl", enabled=accelerator.is_main_process)
    dropped = metrics_log.drop_rows_after(progress.update)
    if dropped:
        logger.info("metrics.jsonl: dropped %d rows logged after update %d (they are logged again)", dropped, progress.update)
    hyperparameters = {key: str(value) if isinstance(value, (list, type(None))) else value
                       for args in (model_args, data_args, training_args) for key, value in asdict(args).items()}
    run_description = {"objective": objective.describe(), "batch_lengths": batch_lengths, "arguments": hyperparameters}
    if accelerator.is_main_process:
        write_json(output_dir / RUN_FILE, run_description)
    accelerator.init_trackers("voc2vec-pretraining", config=hyperparameters)
    unwrapped = accelerator.unwrap_model(model)
    collapse_guard = CollapseGuard(objective.codebook_size)
    non_finite = NonFiniteWatch(accelerator.device)
    pass_attention_mask = not crop_to_shortest and bool(feature_extractor.return_attention_mask)
    accumulation_steps = accelerator.gradient_accumulation_steps
    # fp16's loss scaler skips steps whose gradients overflow by itself; DeepSpeed applies the update inside its
    # own step, so there the loss is checked (synchronously) before each backward instead.
    watch_grad_norm = accelerator.scaler is None and not is_deepspeed

    # ---- training loop: one iteration per update ----
    model.train()
    sums = defaultdict(lambda: torch.zeros((), dtype=torch.float64, device=accelerator.device))  # this process, this interval
    interval_masked_frames = torch.zeros((), dtype=torch.float64, device=accelerator.device)  # all processes
    interval_grad_norm = torch.zeros((), dtype=torch.float64, device=accelerator.device)
    interval_updates, interval_start = 0, time.perf_counter()
    row = None  # the last metrics row
    # a context, so that the bar ends its line before any error message
    with tqdm(total=training_args.max_train_steps, initial=progress.update, disable=not accelerator.is_local_main_process) as progress_bar:
        while progress.update < training_args.max_train_steps:
            update = progress.update + 1  # the update this iteration makes, counted from 1 as in metrics.jsonl
            update_values = objective.before_update(unwrapped, progress.update)

            micro_batches = [next(batches) for _ in range(accumulation_steps)]
            masked_frames = count_masked_frames(micro_batches, accelerator)  # the whole window, all processes
            multiplier = loss_multiplier(masked_frames, accelerator.num_processes, accumulation_steps)
            for batch in micro_batches:
                batch = {name: tensor.to(accelerator.device, non_blocking=True) for name, tensor in batch.items()}
                with accelerator.accumulate(model):
                    losses = objective.losses(model, batch, batch.get("attention_mask") if pass_attention_mask else None)
                    non_finite.observe_loss(update, losses["loss"])
                    if is_deepspeed:  # checked on every process at once, so no bad gradient is ever applied
                        loss_over_processes = accelerator.reduce(losses["loss"].detach().float(), reduction="sum").item()
                        check_finite_loss(loss_over_processes, update, last_checkpoint)
                    accelerator.backward(losses["loss"] * multiplier)
                    if accelerator.sync_gradients:
                        grad_norm = torch.as_tensor(
                            accelerator.clip_grad_norm_(model.parameters(), training_args.max_grad_norm),
                            dtype=torch.float64, device=accelerator.device,
                        )
                        if watch_grad_norm:  # a finite loss can still have NaN gradients, which clipping keeps
                            non_finite.observe_grad_norm(update, grad_norm)
                    optimizer.step()
                    optimizer.zero_grad()
                for name, value in losses.items():
                    sums[name] += value.detach().double()
                for name in ("audio_seconds", *LENGTH_TOTALS):
                    sums[name] += batch[name]
            scheduler_learning_rate = scheduler.get_last_lr()[0]  # the rate this update used
            scheduler.step()
            progress.update += 1
            progress.batches_consumed += accumulation_steps
            progress_bar.update(1)
            interval_masked_frames += masked_frames
            interval_grad_norm += grad_norm
            interval_updates += 1

            if progress.update % training_args.logging_steps == 0 or progress.update == training_args.max_train_steps:
                non_finite.raise_if_seen(accelerator, last_checkpoint)
                names = sorted(sums)
                totals = dict(zip(names, accelerator.reduce(torch.stack([sums[name] for name in names]), reduction="sum")))
                elapsed = time.perf_counter() - interval_start
                row = {"update": progress.update}
                row.update(objective.log_row(totals, interval_masked_frames, interval_updates * accumulation_steps * accelerator.num_processes))
                row.update(
                    learning_rate=scheduler_learning_rate,
                    grad_norm=interval_grad_norm / interval_updates,  # before clipping, mean over the interval
                    audio_seconds=totals["audio_seconds"],
                    audio_seconds_per_second=totals["audio_seconds"] / elapsed,
                    masked_frames=interval_masked_frames,
                    **length_shares(*(totals[name] for name in LENGTH_TOTALS)),
                    **update_values,
                )
                row = {name: value.item() if isinstance(value, torch.Tensor) else value for name, value in row.items()}
                warnings = collapse_guard.check(progress.update, row.get("codevector_perplexity"), row["grad_norm"])
                if warnings:
                    row["warnings"] = warnings
                metrics_log.write(row)
                accelerator.log({name: value for name, value in row.items() if isinstance(value, (int, float)) and name != "update"},
                                step=progress.update)
                progress_bar.set_postfix(loss=f"{row['loss']:.3f}", lr=f"{row['learning_rate']:.2e}")
                sums.clear()
                interval_masked_frames.zero_()
                interval_grad_norm.zero_()
                interval_updates, interval_start = 0, time.perf_counter()

            if progress.update % training_args.checkpointing_steps == 0:
                non_finite.raise_if_seen(accelerator, last_checkpoint)
                last_checkpoint = save_checkpoint(
                    accelerator, output_dir, progress.update, training_args.checkpoints_total_limit, checkpoint_size
                )

    final_dir = output_dir / "final"
    objective.export(accelerator, model, feature_extractor, final_dir)
    if accelerator.is_main_process:
        summary = {"updates": progress.update, "last_metrics": row}
        write_json(final_dir / TRAINING_INFO_FILE, {"objective": run_description["objective"], "batch_lengths": batch_lengths,
                                                    "training_hyperparameters": hyperparameters, **summary})
        write_model_card(final_dir, training_args, model_args, data_args, objective, summary)
        if training_args.push_to_hub:
            from voc2vec.hub import push_model

            logger.info("published: %s", push_model(final_dir, training_args.hub_model_id, private=training_args.hub_private_repo))
    accelerator.end_training()
    logger.info("encoder saved to %s", final_dir)
    return final_dir


if __name__ == "__main__":
    sys.exit(main())
