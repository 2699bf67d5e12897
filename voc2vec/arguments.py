"""Command-line arguments shared by `run_classification.py` and `run_cv.py`.

Both scripts take the same dataclasses, parsed by `HfArgumentParser` from flags, from a YAML/JSON file, or
from a file followed by flags that override it (`python run_cv.py configs/cv/demo.yaml --num_folds 3`).
`FineTuningTrainingArguments` is `TrainingArguments` with the voc2vec paper's defaults (batch 16, up to 50
epochs, AdamW, learning rate warmed up to 1e-4 over 500 steps then decayed linearly, best epoch by
validation UAR). Every value is checked when it is parsed (choices as `Literal`, ranges in `__post_init__`), so a
wrong one stops the run before any audio is decoded; `explicit_fields` (set by `parse_arguments` on each
dataclass) records which fields the user set, so a protocol can tell a user's choice from a default.
"""

import dataclasses
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from transformers import HfArgumentParser, TrainingArguments
from transformers.trainer_utils import IntervalStrategy, SaveStrategy, SchedulerType
from transformers.training_args import OptimizerNames

from voc2vec.config_files import CONFIG_FILE_SUFFIXES, read_config_file, suggestions
from voc2vec.errors import UserError, check_writable_dir
from voc2vec.resources import shipped_config_value

PROTOCOL_NAMES = ("auto", "speaker-cv", "voc2vec-paper", "official", "holdout", "leave-one-speaker-out", "splits-csv")


def require(condition: bool, option: str, what: str, fix: str) -> None:
    """Parse-time range checks: a `UserError` naming the option."""
    if not condition:
        raise UserError(what, where=option, fix=fix)


@dataclass
class ModelArguments:
    """Which encoder to fine-tune, which head to put on it, and how to train it."""

    model_name_or_path: str = field(
        default="alkiskoudounas/voc2vec",
        metadata={
            "help": "Hub id or local directory of an audio encoder (wav2vec2, HuBERT, WavLM, data2vec-audio, ...), "
            "or a model config JSON (e.g. configs/models/tiny-wav2vec2.json) for a randomly initialized model."
        },
    )
    config_overrides: str | None = field(
        default=None,
        metadata={
            "help": "Random initialization from a config file only: a JSON object of config fields to change, e.g. "
            "'{\"conv_dim\": [16, 16, 16, 16, 16, 16, 16]}' (a YAML mapping in a config file)."
        },
    )
    head: Literal["standard", "lstm"] = field(
        default="standard",
        metadata={
            "help": "'standard': mean pooling + linear layer (the transformers *ForSequenceClassification head for "
            "classification, voc2vec.heads with no LSTM for regression); 'lstm': the A-VB paper's head "
            "(LSTM over the encoder frames, then pooling, then a linear layer)."
        },
    )
    pooling: Literal["first", "last", "max", "mean"] = field(
        default="mean", metadata={"help": "voc2vec head pooling over each clip's true frames."}
    )
    lstm_hidden_size: int = field(default=512, metadata={"help": "LSTM head: hidden size."})
    lstm_num_layers: int = field(default=2, metadata={"help": "LSTM head: number of LSTM layers."})
    freeze_feature_encoder: bool = field(
        default=True, metadata={"help": "Do not train the convolutional feature encoder (standard for wav2vec 2.0)."}
    )
    class_weighted_loss: bool = field(
        default=True,
        metadata={"help": "Class-balanced weighted cross-entropy (weights n / (classes * n_class) from the training part)."},
    )
    regression_loss: Literal["ccc", "mse"] = field(
        default="ccc", metadata={"help": "Regression loss: 'ccc' (1 - mean CCC) or 'mse'."}
    )
    early_stopping_patience: int = field(
        default=5, metadata={"help": "Stop after this many evaluations without improvement (0: never stop early)."}
    )
    model_cache_dir: str | None = field(default=None, metadata={"help": "Where downloaded Hub models are stored."})
    method: Literal["finetune", "probe"] = field(
        default="finetune",
        metadata={"help": "'finetune' the encoder with its head, or 'probe' its frozen layers (embeddings computed once "
                  "and cached, a small head trained per fold). A feature baseline (--model_name_or_path "
                  "opensmile:eGeMAPSv02) is always probed."},
    )
    probe_layer: str = field(
        default="weighted",
        metadata={"help": "Probing: 'weighted' (a learned softmax-weighted sum of all hidden layers), 'last', or a layer index."},
    )
    probe_head: Literal["linear", "mlp", "logreg"] | None = field(
        default=None,
        metadata={"help": "Probing: the head on the pooled embedding: 'linear', 'mlp' (two linear layers with ReLU), or "
                  "'logreg' (scikit-learn logistic regression on one layer, C chosen on the validation split). "
                  "Default: 'mlp' for a feature baseline (opensmile:, emotion2vec:; the voc2vec paper's head), "
                  "'linear' for an encoder's layers (SUPERB's probe); metrics.json's 'method' names the one used."},
    )
    probe_pooling: Literal["mean", "mean_std"] = field(
        default="mean", metadata={"help": "Probing: pooling over each clip's true frames (mean, or mean and std)."}
    )

    def __post_init__(self):
        require(self.probe_layer in ("weighted", "last") or self.probe_layer.lstrip("-").isdigit(), "--probe_layer",
                f"must be 'weighted', 'last' or a layer index, got {self.probe_layer!r}", "pass e.g. --probe_layer 6")
        require(self.lstm_hidden_size >= 1, "--lstm_hidden_size", f"must be at least 1, got {self.lstm_hidden_size}", "pass a positive size")
        require(self.lstm_num_layers >= 1, "--lstm_num_layers", f"must be at least 1, got {self.lstm_num_layers}",
                "pass 1 or more (or --head standard for no LSTM)")
        require(self.early_stopping_patience >= 0, "--early_stopping_patience",
                f"must be 0 (never stop early) or more, got {self.early_stopping_patience}", "pass 0 or a positive number")
        if self.config_overrides is not None and not isinstance(self.config_overrides, str):
            self.config_overrides = json.dumps(self.config_overrides)


@dataclass
class DataArguments:
    """Which corpus, how to read it, and how clips become model inputs."""

    dataset_name: str = field(
        default="demo",
        metadata={"help": "Corpus name (a loading script in data/: demo, donateacry, folder, csv, hume_vb, ...)."},
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "Corpus config, e.g. 'babies', 'high'."})
    data_dir: str | None = field(default=None, metadata={"help": "The unpacked corpus folder."})
    data_files: list[str] | None = field(default=None, metadata={"help": "csv loader: the metadata CSV file(s)."})
    path_column: str | None = field(default=None, metadata={"help": "csv loader: column with the audio path."})
    label_column: str | None = field(default=None, metadata={"help": "csv loader: column with the class label."})
    speaker_column: str | None = field(default=None, metadata={"help": "csv loader: column with the speaker id."})
    audio_root: str | None = field(default=None, metadata={"help": "csv loader: folder the audio paths are relative to."})
    speaker_regex: str | None = field(
        default=None, metadata={"help": "folder/csv loaders: regex whose first group is the speaker in the file path."}
    )
    target_columns: list[str] | None = field(
        default=None,
        metadata={
            "help": "Float columns to regress (multi-output regression, scored by CCC). Default: the corpus "
            "config's own targets when it has no class label (e.g. hume_vb high/two/culture)."
        },
    )
    corpus_cache_dir: str | None = field(
        default=None, metadata={"help": "Cache folder for the prepared corpus and its decoded audio."}
    )
    min_clips_per_class: int = field(
        default=0, metadata={"help": "Drop classes with fewer clips than this (logged) before making folds."}
    )
    max_duration: float | None = field(
        default=7.0,
        metadata={
            "help": "Longest clip in seconds: training takes a random window of this length from longer clips, "
            "evaluation the first max_duration seconds. 0: whole clips."
        },
    )
    pad_to_max_duration: bool = field(
        default=False,
        metadata={"help": "Zero-pad every clip to max_duration before normalizing it (the seed's way)."},
    )
    random_crop: bool = field(default=True, metadata={"help": "Random training windows (False: always the start)."})
    length_grouping: int = field(
        default=8,
        metadata={"help": "Training batches drawn from random groups of this many batches' worth of clips sorted by "
                  "length: clips of similar length share a batch (little padding or cropping), and which clips meet "
                  "changes every epoch. 0: plain random batches."},
    )
    pad_to_longest: bool | None = field(
        default=None,
        metadata={"help": "Training batches padded to their longest clip (true) or every clip cut to a random window as "
                  "long as its batch's shortest (false: no padding). Default: pad only models that pad exactly (a "
                  "layer-norm encoder with an attention mask); a group-norm model (wav2vec 2.0 base, HuBERT base, "
                  "voc2vec) trained on padded batches learns from the padding, which it never sees when scored."},
    )

    def __post_init__(self):
        require(self.length_grouping >= 0, "--length_grouping", f"must be 0 (random batches) or more, got {self.length_grouping}",
                "pass e.g. 8")
        require(self.min_clips_per_class >= 0, "--min_clips_per_class", f"must be 0 or more, got {self.min_clips_per_class}",
                "pass 0 to keep every class")
        require(self.max_duration is None or (math.isfinite(self.max_duration) and self.max_duration >= 0), "--max_duration",
                f"must be 0 (whole clips) or a positive number of seconds, got {self.max_duration}", "pass e.g. 7")
        if self.max_duration == 0:
            self.max_duration = None
        require(not (self.pad_to_max_duration and self.max_duration is None), "--pad_to_max_duration",
                "needs a --max_duration to pad to", "set --max_duration, e.g. 7")
        if self.data_files is not None:
            missing = [path for path in self.data_files if not Path(path).expanduser().is_file()]
            require(not missing, "--data_files", f"no such file: {', '.join(missing)}", "check the CSV path")
        if self.corpus_cache_dir is not None:  # named by its option here; deeper down it is only a cache_dir
            check_writable_dir(self.corpus_cache_dir, "--corpus_cache_dir")

    def loader_options(self) -> dict:
        """The generic loaders' options that were given, as `load_corpus` keyword arguments."""
        names = ("data_files", "path_column", "label_column", "speaker_column", "audio_root", "speaker_regex")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}


@dataclass
class ProtocolArguments:
    """Which clips train, which pick the best epoch and which are scored (`voc2vec/protocols.py`)."""

    protocol: Literal[PROTOCOL_NAMES] = field(
        default="auto",
        metadata={
            "help": "'speaker-cv': k folds stratified by label and grouped by speaker, an inner validation split for "
            "early stopping, the test fold scored once. 'voc2vec-paper': the seed repo's protocol exactly (seeded "
            "random folds, the held-out fold used for both model selection and test, 7 s crop/pad, macro-F1 model "
            "selection, scikit-learn's UAR), for comparison with the paper's Table IV; optimistic. 'official': the "
            "corpus's own train/validation/test. 'holdout': one speaker-disjoint test part (--test_fraction). "
            "'leave-one-speaker-out': one fold per speaker. 'splits-csv': your folds from --splits_csv. 'auto': "
            "'official' when the corpus has official splits, else 'speaker-cv' (run_cv.py) or 'holdout' "
            "(run_classification.py)."
        },
    )
    num_folds: int = field(default=10, metadata={"help": "Number of folds (k-fold protocols)."})
    splits_csv: str | None = field(
        default=None,
        metadata={"help": "A CSV of `path` and `fold` (or `split`: train/validation/test) giving your own folds "
                  "(e.g. EmoBox's fold lists); selects --protocol splits-csv."},
    )
    group_by_speaker: Literal["auto", "required", "never"] = field(
        default="auto",
        metadata={
            "help": "Speaker-disjoint splits: 'auto' (when the corpus has enough speakers, else a logged fallback), "
            "'required' (stop with an error instead of falling back), 'never'."
        },
    )
    validation_fraction: float = field(
        default=0.1, metadata={"help": "Share of the training part held out (speaker-disjoint) for early stopping."}
    )
    test_fraction: float = field(default=0.1, metadata={"help": "holdout protocol: share of the corpus held out for the test."})

    def __post_init__(self):
        require(self.num_folds >= 2, "--num_folds", f"must be at least 2, got {self.num_folds}", "pass 2 or more")
        require(0 < self.validation_fraction <= 0.5, "--validation_fraction",
                f"must be in (0, 0.5], got {self.validation_fraction}", "pass e.g. 0.1")
        require(0 < self.test_fraction <= 0.5, "--test_fraction", f"must be in (0, 0.5], got {self.test_fraction}",
                "pass e.g. 0.1 (a tenth of the corpus is tested)")
        if self.splits_csv is not None:
            require(Path(self.splits_csv).expanduser().is_file(), "--splits_csv", f"no such file: {self.splits_csv}",
                    "check the path")
            require(self.protocol in ("auto", "splits-csv"), "--protocol",
                    f"--splits_csv gives the folds, but --protocol {self.protocol} makes its own",
                    "drop one of the two")
            self.protocol = "splits-csv"
        require(self.protocol != "splits-csv" or self.splits_csv is not None, "--protocol splits-csv",
                "needs --splits_csv FILE", "pass the CSV of path and fold (or split)")


@dataclass
class CrossValidationArguments:
    """How `run_cv.py` runs its folds and reports."""

    fold: int | None = field(
        default=None, metadata={"help": "Run only this fold (0-based) and exit; merge later with --merge_only."}
    )
    merge_only: bool = field(default=False, metadata={"help": "Train nothing: merge the folds' results from output_dir."})
    final_model: Literal["fold0", "none"] = field(
        default="fold0",
        metadata={
            "help": "'fold0': keep fold 0's best model (trained on fold 0's training part) in output_dir/model; "
            "'none': keep no model."
        },
    )
    save_fold_models: bool = field(default=False, metadata={"help": "Keep every fold's best model in fold_XX/model."})
    std: Literal["population", "sample"] = field(
        default="population",
        metadata={"help": "Standard deviation over folds: 'population' (ddof=0, as the paper) or 'sample' (ddof=1)."},
    )
    distribute: Literal["folds", "ddp"] = field(
        default="folds",
        metadata={"help": "Under accelerate launch / torchrun with several processes: 'folds' (each process runs its "
                  "share of the folds, one device each) or 'ddp' (every fold runs data-parallel on all processes)."},
    )
    print_results: bool = field(default=True, metadata={"help": "Print the results table at the end."})

    def __post_init__(self):
        require(self.fold is None or self.fold >= 0, "--fold", f"must be 0 or more, got {self.fold}", "pass a fold number")


@dataclass
class FineTuningTrainingArguments(TrainingArguments):
    """`TrainingArguments` with the voc2vec paper's fine-tuning defaults."""

    output_dir: str | None = field(default="outputs/run", metadata={"help": "Where results and models are written."})
    per_device_train_batch_size: int = field(default=16, metadata={"help": "Batch size for training."})
    per_device_eval_batch_size: int = field(default=16, metadata={"help": "Batch size for evaluation."})
    num_train_epochs: float = field(default=50.0, metadata={"help": "Upper bound on epochs (early stopping ends sooner)."})
    learning_rate: float = field(default=1e-4, metadata={"help": "Peak learning rate of AdamW."})
    warmup_steps: float = field(
        default=500, metadata={"help": "Linear warmup steps (an int), or a share of all steps (a float in [0, 1))."}
    )
    lr_scheduler_type: SchedulerType | str = field(default="linear", metadata={"help": "Decay after warmup."})
    optim: OptimizerNames | str = field(default="adamw_torch", metadata={"help": "Optimizer."})
    eval_strategy: IntervalStrategy | str = field(default="epoch", metadata={"help": "Evaluate on the validation split every epoch."})
    save_strategy: SaveStrategy | str = field(default="epoch", metadata={"help": "Checkpoint every epoch (the best one is kept)."})
    logging_strategy: IntervalStrategy | str = field(default="epoch", metadata={"help": "Log every epoch."})
    load_best_model_at_end: bool = field(default=True, metadata={"help": "End with the best validation checkpoint."})
    metric_for_best_model: str | None = field(
        default="uar", metadata={"help": "Validation metric that picks the best epoch (regression: mean_ccc)."}
    )
    save_total_limit: int | None = field(default=1, metadata={"help": "Checkpoints kept while training."})
    save_only_model: bool = field(default=True, metadata={"help": "Checkpoints without optimizer state (smaller, faster)."})
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep the collator's inputs as they are."})
    report_to: None | str | list[str] = field(default="none", metadata={"help": "Experiment trackers to report to."})

    def __post_init__(self):
        require(math.isfinite(self.num_train_epochs) and (self.num_train_epochs > 0 or self.max_steps > 0), "--num_train_epochs",
                f"must be a positive number, got {self.num_train_epochs}", "pass the number of epochs to train, e.g. 50")
        require(self.learning_rate > 0, "--learning_rate", f"must be positive, got {self.learning_rate}", "pass e.g. 1e-4")
        require(self.weight_decay >= 0, "--weight_decay", f"must be 0 or more, got {self.weight_decay}", "pass e.g. 0.01 or 0")
        for option in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
            require(getattr(self, option) >= 1, f"--{option}", f"must be at least 1, got {getattr(self, option)}", "pass 1 or more")
        # transformers reads a float >= 1 as a step count and drops its fraction: 1.5 would silently become 1 step.
        require(self.warmup_steps >= 0 and (self.warmup_steps < 1 or float(self.warmup_steps).is_integer()), "--warmup_steps",
                f"must be a whole number of steps or a share of all steps below 1, got {self.warmup_steps}", "pass e.g. 500 or 0.1")
        for option in ("seed", "data_seed"):  # numpy's and scikit-learn's seeds are unsigned 32-bit
            value = getattr(self, option)
            require(value is None or 0 <= value < 2**32, f"--{option}", f"must be in [0, 2**32), got {value}", "pass e.g. 42")
        check_report_to(self.report_to)
        require(not self.push_to_hub or bool(self.hub_model_id), "--push_to_hub", "needs the repository to create or update",
                "add --hub_model_id ORG/NAME")
        super().__post_init__()


def check_report_to(report_to: None | str | list[str]) -> None:
    """Every tracker of --report_to is one transformers knows and this environment has installed: a misspelt
    (`tensorbord`) or missing one would otherwise fail every fold, after the audio is decoded."""
    from transformers.integrations import get_available_reporting_integrations
    from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK

    installed = get_available_reporting_integrations()
    choices = f"use one of the installed trackers ({', '.join(installed) or 'none installed'}), all, or none"
    for name in [report_to] if isinstance(report_to, str) or report_to is None else report_to:
        if name in (None, "none", "all"):
            continue
        if name not in INTEGRATION_TO_CALLBACK:
            raise UserError(f"unknown tracker {name!r}", where="--report_to",
                            fix=f"{suggestions([name], set(INTEGRATION_TO_CALLBACK))}; {choices}")
        if name not in installed:
            raise UserError(f"tracker {name!r} is not installed", where="--report_to",
                            fix=f"install {name} (its Python package), or {choices}")


def parse_arguments(dataclass_types: tuple, argv: list[str] | None = None, prog: str | None = None) -> tuple:
    """Parse `dataclass_types` from `argv`: flags, a YAML/JSON file, or a file followed by overriding flags.

    A config file may hold a `grid:` section (model x dataset grids of `run_cv.py`); it is returned as the last
    element (None when absent) rather than parsed into a dataclass.

    Every mistake is a `UserError` that names the file or flag: an unknown key or flag, a YAML/JSON syntax error
    (with its line), a value a dataclass's `__post_init__` refuses. argparse's own type errors ("invalid int
    value") print argparse's usage line and exit 2, as in every Hugging Face example. `prog` names the command in
    --help (default: the script's file name).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    source = argv[0] if argv and argv[0].endswith(CONFIG_FILE_SUFFIXES) else "command line"
    parser = ArgumentParser(dataclass_types, source=source, prog=prog)
    grid = None
    if source != "command line":
        config = read_config_file(argv[0])
        grid = config.pop("grid", None)
        # A misspelt key would otherwise surface as an unused "--flag" far from the file that holds it.
        known = {action.dest for action in parser._actions}
        unknown = sorted(set(config) - known)
        if unknown:
            raise UserError(
                f"unknown key(s) {', '.join(unknown)}", where=argv[0],
                fix=f"correct the spelling ({suggestions(unknown, known)}) or see --help for the arguments",
            )
        check_config_value_shapes(config, parser, argv[0])
        argv = config_to_flags(config) + argv[1:]
    argv = [shipped_config_value(token) for token in argv]  # --model_name_or_path configs/models/... outside the checkout
    try:
        *parsed, remaining = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
    except UserError:
        raise
    except (ValueError, TypeError) as error:  # raised by a dataclass's __post_init__ (ours or TrainingArguments')
        raise UserError(str(error).strip().splitlines()[0], where=source, fix="change that setting") from error
    if remaining:
        several = option_given_several_values(parser, argv)
        if several:  # `--num_folds 5 10`: argparse takes 5 and leaves 10 over as if it were an argument of its own
            option, values = several
            raise UserError(f"{option} takes one value, got {' '.join(values)}", where=source,
                            fix=f"give one value, e.g. {option} {values[0]}")
        known = {action.dest for action in parser._actions}
        flags = [item for item in remaining if item.startswith("-")] or remaining
        raise UserError(
            f"unknown argument(s) {' '.join(flags)}", where=source,
            fix=f"correct the spelling ({suggestions([flag.lstrip('-') for flag in flags], known)}) or see --help",
        )
    given = given_option_names(parser, argv)
    for arguments in parsed:
        # Which fields the user chose (in the config file or as flags), as opposed to dataclass defaults.
        arguments.explicit_fields = frozenset(field.name for field in dataclasses.fields(arguments) if field.name in given)
    return (*parsed, grid)


def option_given_several_values(parser: HfArgumentParser, argv: list[str]) -> tuple[str, list[str]] | None:
    """The first option of one value that `argv` gives more (`--num_folds 5 10` -> ("--num_folds", ["5", "10"]))."""
    option, values = None, []
    for token in [*argv, "--"]:
        if is_option_token(token):
            if option is not None and len(values) > 1:
                return option, values
            action = parser._option_string_actions.get(token)
            option, values = (token if action is not None and action.nargs is None else None), []
        else:
            values.append(token)
    return None


def is_option_token(token: str) -> bool:
    """`--name` (or `--name=value`), not a negative number such as -1 or -1e-4."""
    if not token.startswith("-"):
        return False
    try:
        float(token)
        return False
    except ValueError:
        return True


def given_option_names(parser: HfArgumentParser, argv: list[str]) -> set[str]:
    """The `dest` of every option that appears in `argv` (`--name value`, `--name=value`, `--no_name`)."""
    given = set()
    for token in argv:
        if not token.startswith("--"):
            continue
        action = parser._option_string_actions.get(token.split("=", 1)[0])
        if action is not None:
            given.add(action.dest)
    return given


class ArgumentParser(HfArgumentParser):
    """`HfArgumentParser` whose errors ("invalid int value: 'x'") are a one-line `UserError` naming the source,
    instead of argparse's page-long usage text."""

    def __init__(self, dataclass_types, source: str = "command line", **kwargs):
        self.source = source
        # No abbreviations: a misspelt flag that is the prefix of a real one (--learning_rat) must not be taken for it.
        super().__init__(dataclass_types, allow_abbrev=False, **kwargs)

    def error(self, message: str):
        raise UserError(message, where=self.source, fix="see --help for the accepted values")


def check_config_value_shapes(config: dict, parser: HfArgumentParser, path: str) -> None:
    """A list in a config file where the argument takes one value (`num_folds: [5, 10]`) would become extra
    command-line words; name the key instead."""
    scalar_options = {action.dest for action in parser._actions if action.nargs in (None, "?")}
    for key, value in config.items():
        if key in scalar_options and isinstance(value, (list, tuple)):
            raise UserError(f"{key}: a list ({value!r}) where one value belongs", where=path,
                            fix=f"give one value, e.g. '{key}: {value[0] if value else ...}'")


def config_to_flags(config: dict) -> list[str]:
    """`{"num_folds": 3, "data_files": ["a.csv"]}` -> `["--num_folds", "3", "--data_files", "a.csv"]`.

    Flags placed after these override them, since argparse keeps the last value it sees.
    """
    flags = []
    for name, value in config.items():
        if value is None:
            continue
        flags.append(f"--{name}")
        if isinstance(value, (list, tuple)):
            flags.extend(str(item) for item in value)
        elif isinstance(value, dict):
            flags.append(json.dumps(value))
        else:
            flags.append(str(value))
    return flags
