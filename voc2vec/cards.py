"""Model cards (`README.md`) for every model folder the toolkit leaves, with huggingface_hub's `ModelCard`.

Two kinds:

- a **classifier card** (`write_classifier_card`) for a fine-tuned model: `run_cv.py`'s `output_dir/model/` with the
  run's `summary.json`, or `run_classification.py`'s output folder with its `metrics.json`. Its metadata holds the
  license, `library_name: transformers`, `pipeline_tag: audio-classification`, tags, `base_model`, the dataset and a
  `model-index` with one result per dataset and metric (UAR, accuracy, macro-F1, or CCC for regression), each the
  value in the results file (the mean over folds for a CV run) with the protocol and number of folds in its name and
  args. Nothing is typed in: every number comes from the file. The body shows the results table, what the protocol
  means, the chance level, the labels, how to use the model (`pipeline`, `AutoModelForAudioClassification`, the
  `voc2vec classify` command), the training hyperparameters and the citation.
- an **encoder card** (`write_encoder_card`) for `run_pretraining.py`'s `final/`: `pipeline_tag: feature-extraction`
  and a plain statement that the model has no trained head.

`voc2vec card DIR` (re)writes the card of a folder, finding its results file itself (see `find_results`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from voc2vec.errors import UserError
from voc2vec.rundir import METRICS_FILE, SUMMARY_FILE, TRAINING_INFO_FILE

CARD_FILE = "README.md"
CLASSIFICATION_METRICS = {"uar": "UAR", "accuracy": "Accuracy", "macro_f1": "Macro-F1"}
REGRESSION_HEADLINE = {"mean_ccc": "CCC (mean over targets)"}
USER_CORPORA = {"csv", "folder"}  # loaders of the user's own files: not a dataset anyone else can look up
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# Arguments worth a line in the card (TrainingArguments, run_pretraining's PretrainingArguments, the model arguments).
HYPERPARAMETERS = (
    "learning_rate", "per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps",
    "num_train_epochs", "max_steps", "max_train_steps", "warmup_steps", "warmup_ratio", "lr_scheduler_type", "optim",
    "weight_decay", "adam_beta1", "adam_beta2", "adam_epsilon", "max_grad_norm", "metric_for_best_model",
    "early_stopping_patience", "max_duration", "max_crop_seconds", "max_batch_seconds", "mixed_precision", "fp16",
    "bf16", "seed", "head", "pooling", "freeze_feature_encoder", "class_weighted_loss", "regression_loss",
    "mask_time_prob", "mask_time_length", "num_clusters", "kmeans_features",
)

CITATION = """@inproceedings{koudounas2025voc2vec,
  title={voc2vec: A Foundation Model for Non-Verbal Vocalization},
  author={Koudounas, Alkis and La Quatra, Moreno and Siniscalchi, Sabato Marco and Baralis, Elena},
  booktitle={ICASSP 2025-2025 IEEE International Conference on Acoustics, Speech and Signal Processing (ICASSP)},
  pages={1--5},
  year={2025},
  organization={IEEE}
}"""


# ---------------------------------------------------------------------------------------------------------------------
# Results files
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class Evaluation:
    """What a card reports, read from a CV run's `summary.json` or a single split's `metrics.json`."""

    source: Path
    dataset: str
    dataset_config: str | None
    task: str  # "classification" or "regression"
    label_names: list[str]
    model_name_or_path: str | None
    head: str | None
    protocol: str
    protocol_note: str | None
    num_folds: int | None  # None: one split (run_classification.py)
    fold_kind: str | None
    seed: int | None
    std_type: str | None
    mean: dict[str, float]
    std: dict[str, float] = field(default_factory=dict)
    pooled: dict[str, float] = field(default_factory=dict)
    per_fold: list[dict] = field(default_factory=list)
    evaluated_on: str | None = None
    class_counts: list[int] | None = None  # test clips per class (CV: every clip once)
    hyperparameters: dict = field(default_factory=dict)

    @property
    def is_cv(self) -> bool:
        return self.num_folds is not None

    def scope(self) -> str:
        """How the values were obtained, for result names: "mean over 10 folds, speaker-cv"."""
        if self.is_cv:
            return f"mean over {self.num_folds} folds, {self.protocol}" if self.num_folds > 1 else self.protocol
        return f"{self.protocol}, {self.evaluated_on}" if self.evaluated_on else self.protocol

    def headline_metrics(self) -> dict[str, str]:
        """`{metric key: display name}` of the metrics the card reports, in order, those present in the file."""
        if self.task == "classification":
            names = dict(CLASSIFICATION_METRICS)
        else:
            names = dict(REGRESSION_HEADLINE)
            names.update({key: f"CCC {key.removeprefix('ccc_')}" for key in self.mean if key.startswith("ccc_")})
            names["mse"] = "MSE"
        return {key: name for key, name in names.items() if key in self.mean}


def read_json_file(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError as error:
        raise UserError("results file not found", where=path, fix="pass the run's summary.json or metrics.json") from error
    except json.JSONDecodeError as error:
        raise UserError(f"not valid JSON ({error.msg}, line {error.lineno})", where=path,
                        fix="pass the summary.json or metrics.json the script wrote") from error


def read_evaluation(results: str | os.PathLike | Mapping) -> Evaluation:
    """An `Evaluation` from a CV run folder, its `summary.json`, or a `metrics.json` (path or loaded dict)."""
    if isinstance(results, Mapping):
        data, source = dict(results), Path("<dict>")
    else:
        source = Path(results)
        if source.is_dir():
            for name in (SUMMARY_FILE, METRICS_FILE):
                if (source / name).is_file():
                    source = source / name
                    break
            else:
                raise UserError(f"holds neither {SUMMARY_FILE} nor {METRICS_FILE}", where=source,
                                fix="pass the run folder of run_cv.py or the output folder of run_classification.py")
        data = read_json_file(source)
    if "mean" in data:  # run_cv.py's summary.json
        if data.get("complete") is False:
            raise UserError("the cross-validation is incomplete (some folds failed or did not run): no mean to report",
                            where=source, fix="rerun the same run_cv.py command to finish the folds, then write the card")
        matrix = data.get("confusion_matrix_summed_over_folds")
        return Evaluation(
            source=source,
            dataset=data["dataset"],
            dataset_config=data.get("dataset_config"),
            task=data["task"],
            label_names=[str(name) for name in data["label_names"]],
            model_name_or_path=data.get("model_name_or_path"),
            head=data.get("head"),
            protocol=data.get("protocol") or "cross-validation",
            protocol_note=data.get("protocol_note"),
            num_folds=int(data["num_folds"]),
            fold_kind=data.get("fold_kind"),
            seed=data.get("seed"),
            std_type=data.get("std_type") or data.get("std_kind"),
            mean={key: float(value) for key, value in data["mean"].items()},
            std={key: float(value) for key, value in data.get("std", {}).items()},
            pooled={key: float(value) for key, value in (data.get("pooled") or {}).items()},
            per_fold=list(data.get("per_fold", [])),
            class_counts=[int(sum(row)) for row in matrix] if matrix else None,
            hyperparameters=dict(data.get("training_hyperparameters") or {}),
        )
    if "test" in data:  # run_classification.py's metrics.json
        matrix = data.get("confusion_matrix")
        return Evaluation(
            source=source,
            dataset=data["dataset"],
            dataset_config=data.get("dataset_config"),
            task=data["task"],
            label_names=[str(name) for name in data["label_names"]],
            model_name_or_path=data.get("model_name_or_path"),
            head=data.get("head"),
            protocol=data.get("protocol") or "holdout",
            protocol_note=data.get("protocol_note"),
            num_folds=None,
            fold_kind=None,
            seed=data.get("seed"),
            std_type=None,
            mean={key: float(value) for key, value in data["test"].items() if isinstance(value, (int, float))},
            evaluated_on=data.get("evaluated_on"),
            class_counts=[int(sum(row)) for row in matrix] if matrix else None,
            hyperparameters=dict(data.get("training_hyperparameters") or {}),
        )
    raise UserError("not a results file of run_cv.py (summary.json) or run_classification.py (metrics.json)", where=source,
                    fix="pass the run's summary.json or metrics.json")


def find_results(model_dir: str | os.PathLike) -> Path | None:
    """The results file of a model folder: `metrics.json` beside the model (run_classification.py writes both into
    its output folder), else the run's `summary.json` one level up (run_cv.py's `output_dir/model/`)."""
    model_dir = Path(model_dir)
    for candidate in (model_dir / METRICS_FILE, model_dir / SUMMARY_FILE, model_dir.parent / SUMMARY_FILE):
        if candidate.is_file():
            return candidate
    return None


# ---------------------------------------------------------------------------------------------------------------------
# Pieces shared by both cards
# ---------------------------------------------------------------------------------------------------------------------


def training_hyperparameters(arguments) -> dict:
    """The hyperparameters worth reporting, from `TrainingArguments`, the scripts' argument dataclasses or a dict.

    Only the names in `HYPERPARAMETERS` are taken from objects, and nothing whose name mentions a token is ever taken
    from a dict, so a Hub token passed as `--hub_token` can never reach a card."""
    if arguments is None:
        return {}
    if isinstance(arguments, Mapping):
        items = dict(arguments)
    else:
        items = {name: getattr(arguments, name) for name in HYPERPARAMETERS if hasattr(arguments, name)}
    result = {}
    for name, value in items.items():
        if "token" in name.lower() or value is None or value == "" or (name == "max_steps" and value == -1):
            continue
        value = getattr(value, "value", value)  # enums (lr_scheduler_type, optim)
        result[name] = value if isinstance(value, (bool, int, float, str)) else str(value)
    return result


def merged_hyperparameters(model_dir: Path, *sources) -> dict:
    """The first source that has any; then `training_info.json`'s `training_hyperparameters`."""
    for source in sources:
        found = training_hyperparameters(source)
        if found:
            return found
    info = model_dir / TRAINING_INFO_FILE
    if info.is_file():
        try:
            return training_hyperparameters(json.loads(info.read_text()).get("training_hyperparameters"))
        except json.JSONDecodeError:
            return {}
    return {}


def is_hub_id(name: str | None) -> bool:
    """A Hub repository id ("org/name"), not a local folder or a config file."""
    return bool(name) and HUB_ID.match(name) is not None and not os.path.exists(name) and not name.endswith((".json", ".yaml"))


def model_config(model_dir: Path) -> dict:
    path = model_dir / "config.json"
    if not path.is_file():
        raise UserError("no config.json: not a saved model folder", where=model_dir,
                        fix="pass the folder a script saved the model to (with config.json and model.safetensors)")
    return json.loads(path.read_text())


def architecture_of(config: dict) -> str:
    """"wav2vec 2.0", "HuBERT", ... for the card's prose; voc2vec's head models describe their encoder."""
    config = config.get("encoder_config") or config
    names = {"wav2vec2": "wav2vec 2.0", "hubert": "HuBERT", "wavlm": "WavLM", "data2vec-audio": "data2vec-audio"}
    return names.get(config.get("model_type", ""), config.get("model_type", "audio encoder"))


def encoder_type(config: dict) -> str:
    return (config.get("encoder_config") or config).get("model_type", "audio")


def is_classifier(config: dict) -> bool:
    architectures = config.get("architectures") or []
    return any(name.endswith(("ForSequenceClassification", "ForAudioClassification")) or name == "AudioModelWithLSTMHead"
               for name in architectures)


def uses_voc2vec_head(config: dict) -> bool:
    return config.get("model_type") == "audio-lstm-head"


def percent(value: float) -> str:
    return f"{100 * value:.1f}"


def hyperparameter_lines(hyperparameters: Mapping) -> list[str]:
    if not hyperparameters:
        return ["Not recorded with this model (write the card from the training script, or pass the hyperparameters)."]
    return ["| hyperparameter | value |", "|---|---|"] + [f"| {name} | {value} |" for name, value in hyperparameters.items()]


def save_card(card, model_dir: Path) -> Path:
    """`README.md` through a temporary file (a killed process never leaves half a card)."""
    path = model_dir / CARD_FILE
    temporary = model_dir / (CARD_FILE + ".tmp")
    card.save(temporary)
    temporary.replace(path)
    return path


def model_name_for(model_dir: Path, repo_id: str | None) -> str:
    if repo_id:
        return repo_id.split("/")[-1]
    return model_dir.resolve().parent.name if model_dir.name == "model" else model_dir.resolve().name


# ---------------------------------------------------------------------------------------------------------------------
# Classifier card
# ---------------------------------------------------------------------------------------------------------------------


def eval_results(evaluation: Evaluation, model_name: str):
    """The model-index: one `EvalResult` per metric of the results file (its mean over folds for a CV run)."""
    from huggingface_hub import EvalResult

    dataset_name = evaluation.dataset + (f" ({evaluation.dataset_config})" if evaluation.dataset_config else "")
    task_name = "Audio classification" if evaluation.task == "classification" else "Audio regression"
    results = []
    for key, display in evaluation.headline_metrics().items():
        args = {"protocol": evaluation.protocol}
        if evaluation.is_cv:
            args.update(num_folds=evaluation.num_folds, statistic="mean over folds")
            if key in evaluation.std:
                args.update(std=evaluation.std[key], std_type=evaluation.std_type)
        elif evaluation.evaluated_on:
            args["evaluated_on"] = evaluation.evaluated_on
        results.append(EvalResult(
            task_type="audio-classification",
            task_name=task_name,
            dataset_type=evaluation.dataset,
            dataset_name=dataset_name,
            dataset_config=evaluation.dataset_config,
            dataset_split=f"{evaluation.num_folds}-fold cross-validation" if evaluation.is_cv else "test",
            metric_type=key,
            metric_name=f"{display} ({evaluation.scope()})",
            metric_value=evaluation.mean[key],
            metric_args=args,
        ))
    return results


def results_table(evaluation: Evaluation) -> list[str]:
    metrics = evaluation.headline_metrics()
    as_percent = evaluation.task == "classification"
    show = (lambda value: percent(value)) if as_percent else (lambda value: f"{value:.3f}")
    unit = " (%)" if as_percent else ""
    if evaluation.is_cv:
        header = f"| metric{unit} | mean ± std over {evaluation.num_folds} folds |" + (" pooled over all folds |" if evaluation.pooled else "")
        lines = [header, "|---|---|" + ("---|" if evaluation.pooled else "")]
        for key, display in metrics.items():
            spread = f" ± {show(evaluation.std[key])}" if key in evaluation.std else ""
            pooled = f" {show(evaluation.pooled[key])} |" if evaluation.pooled else ""
            if evaluation.pooled and key not in evaluation.pooled:
                pooled = " - |"
            lines.append(f"| {display} | {show(evaluation.mean[key])}{spread} |{pooled}")
        if evaluation.std_type:
            lines += ["", f"± is the {evaluation.std_type}."]
        if evaluation.pooled:
            lines += ["Pooled: computed once over the test predictions of all folds together."]
        return lines
    lines = [f"| metric{unit} | test |", "|---|---|"]
    lines += [f"| {display} | {show(evaluation.mean[key])} |" for key, display in metrics.items()]
    return lines


def protocol_lines(evaluation: Evaluation) -> list[str]:
    lines = []
    if evaluation.is_cv:
        lines.append(f"**{evaluation.protocol}**, {evaluation.num_folds} folds" + (f": {evaluation.fold_kind}" if evaluation.fold_kind else "")
                     + (f"; seed {evaluation.seed}" if evaluation.seed is not None else "") + ".")
        lines.append("Every clip of the corpus is tested exactly once, by the model trained on the other folds; the numbers "
                     "above are over those test folds. This folder holds one of the fold models (see `training_info.json`).")
    else:
        lines.append(f"**{evaluation.protocol}**" + (f": scored on {evaluation.evaluated_on}" if evaluation.evaluated_on else "") + ".")
    if evaluation.protocol_note:
        lines.append(evaluation.protocol_note[0].upper() + evaluation.protocol_note[1:])
    return lines


def chance_lines(evaluation: Evaluation) -> list[str]:
    if evaluation.task != "classification":
        return ["A constant prediction scores CCC 0 (CCC rewards agreement in mean, spread and correlation)."]
    classes = len(evaluation.label_names)
    lines = [f"UAR of any constant or random prediction: 1/{classes} = {percent(1 / classes)} %."]
    if evaluation.class_counts and sum(evaluation.class_counts):
        majority = max(range(classes), key=lambda index: evaluation.class_counts[index])
        share = evaluation.class_counts[majority] / sum(evaluation.class_counts)
        macro_f1 = 2 * share / (1 + share) / classes
        lines.append(f"Always predicting the most frequent class (`{evaluation.label_names[majority]}`, "
                     f"{evaluation.class_counts[majority]} of {sum(evaluation.class_counts)} test clips): accuracy "
                     f"{percent(share)} %, macro-F1 {percent(macro_f1)} %.")
    return lines


def classifier_usage(model_id: str, voc2vec_head: bool, regression: bool) -> str:
    head_import = "import voc2vec.heads  # registers voc2vec's heads with the Auto classes\n" if voc2vec_head else ""
    if regression:
        return f'''```python
import torch
{head_import}from transformers import AutoFeatureExtractor, AutoModelForAudioClassification
from voc2vec.audio import load_audio  # pip install voc2vec: soundfile + soxr, no FFmpeg

model_id = "{model_id}"
feature_extractor = AutoFeatureExtractor.from_pretrained(model_id)
model = AutoModelForAudioClassification.from_pretrained(model_id).eval()

audio = load_audio("recording.wav")  # float32 mono at 16 kHz
inputs = feature_extractor(audio, sampling_rate=16000, return_tensors="pt")
with torch.no_grad():
    values = model(**inputs).logits[0]  # one value per target, no softmax
print({{model.config.id2label[i]: float(v) for i, v in enumerate(values)}})
```

Or for a folder of recordings: `voc2vec classify my_recordings/ --model {model_id} --output predictions.csv`.'''
    return f'''```python
import torch
{head_import}from transformers import AutoFeatureExtractor, AutoModelForAudioClassification, pipeline
from voc2vec.audio import load_audio  # pip install voc2vec: soundfile + soxr, no FFmpeg

model_id = "{model_id}"
audio = load_audio("recording.wav")  # float32 mono at 16 kHz

classifier = pipeline("audio-classification", model=model_id)
print(classifier({{"raw": audio, "sampling_rate": 16000}}, top_k=None))

# the same with the model itself
feature_extractor = AutoFeatureExtractor.from_pretrained(model_id)
model = AutoModelForAudioClassification.from_pretrained(model_id).eval()
inputs = feature_extractor(audio, sampling_rate=16000, return_tensors="pt")
with torch.no_grad():
    probabilities = model(**inputs).logits.softmax(-1)[0]
print({{model.config.id2label[i]: float(p) for i, p in enumerate(probabilities)}})
```

Score one recording at a time (as above) or through `voc2vec classify`, which batches clips without letting them
change each other's scores: `voc2vec classify my_recordings/ --model {model_id} --output predictions.csv`.'''


def write_classifier_card(
    model_dir: str | os.PathLike,
    results: str | os.PathLike | Mapping,
    training_args=None,
    *,
    base_model: str | None = None,
    repo_id: str | None = None,
    license: str = "apache-2.0",
    tags: Sequence[str] = (),
) -> Path:
    """Write `model_dir/README.md` for a fine-tuned classifier (or regressor); return its path.

    `results`: the CV run folder or its `summary.json` (run_cv.py), or the `metrics.json` of run_classification.py,
    as a path or a loaded dict. `training_args`: `TrainingArguments` (or the scripts' argument dataclasses, or a dict)
    whose hyperparameters the card lists (else the results file's or `training_info.json`'s
    `training_hyperparameters`). `base_model`: the Hub id fine-tuned from (default: the run's `model_name_or_path`
    when it is a Hub id). `repo_id`: the Hub id the card's usage snippet loads (default: the folder's path).
    """
    from huggingface_hub import ModelCard, ModelCardData

    model_dir = Path(model_dir)
    config = model_config(model_dir)
    evaluation = read_evaluation(results)
    hyperparameters = merged_hyperparameters(model_dir, training_args, evaluation.hyperparameters)
    model_name = model_name_for(model_dir, repo_id)
    source_model = evaluation.model_name_or_path
    base_model = base_model or (source_model if is_hub_id(source_model) else None)
    card_data = ModelCardData(
        model_name=model_name,
        license=license,
        library_name="transformers",
        pipeline_tag="audio-classification",
        tags=list(dict.fromkeys(["audio", "audio-classification", "voc2vec", "non-verbal-vocalization", encoder_type(config), *tags])),
        base_model=base_model,
        datasets=None if evaluation.dataset in USER_CORPORA else [evaluation.dataset],
        metrics=list(evaluation.headline_metrics()),
        eval_results=eval_results(evaluation, model_name),
    )
    regression = evaluation.task != "classification"
    what = "regressor" if regression else "classifier"
    if base_model:
        origin = f"fine-tuned from [`{base_model}`](https://huggingface.co/{base_model})"
    elif source_model and source_model.endswith(".json"):
        origin = f"trained from random initialization (model config `{Path(source_model).name}`)"
    elif source_model:
        origin = f"fine-tuned from the local encoder `{Path(source_model).name}`"
    else:
        origin = "fine-tuned"
    dataset_text = f"`{evaluation.dataset}`" + (f" (config `{evaluation.dataset_config}`)" if evaluation.dataset_config else "")
    label_kind = "targets" if regression else "labels"
    body = [
        f"# {model_name}",
        "",
        f"A {architecture_of(config)} audio {what} of non-verbal vocalizations, {origin}, on the {dataset_text} corpus "
        f"with the [voc2vec](https://github.com/koudounasalkis/voc2vec) toolkit."
        + (f" Head: {evaluation.head}." if evaluation.head else ""),
        "",
        "## Results",
        "",
        *results_table(evaluation),
        "",
        "### Protocol",
        "",
        *protocol_lines(evaluation),
        "",
        "### Chance level",
        "",
        *chance_lines(evaluation),
        "",
        f"## {label_kind.capitalize()}",
        "",
        ", ".join(f"`{index}` {name}" for index, name in enumerate(evaluation.label_names)),
        "",
        "## Usage",
        "",
        classifier_usage(repo_id or model_dir.as_posix(), uses_voc2vec_head(config), regression),
        "",
        "## Training hyperparameters",
        "",
        *hyperparameter_lines(hyperparameters),
        "",
        "## Citation",
        "",
        "If you use this model or the voc2vec protocol, cite the voc2vec paper:",
        "",
        "```bibtex",
        CITATION,
        "```",
        "",
    ]
    card = ModelCard(f"---\n{card_data.to_yaml()}\n---\n\n" + "\n".join(body))
    return save_card(card, model_dir)


# ---------------------------------------------------------------------------------------------------------------------
# Encoder card
# ---------------------------------------------------------------------------------------------------------------------


def encoder_usage(model_id: str) -> str:
    return f'''```python
import torch
from transformers import AutoFeatureExtractor, AutoModel
from voc2vec.audio import load_audio  # pip install voc2vec: soundfile + soxr, no FFmpeg

model_id = "{model_id}"
feature_extractor = AutoFeatureExtractor.from_pretrained(model_id)
encoder = AutoModel.from_pretrained(model_id).eval()

audio = load_audio("recording.wav")  # float32 mono at 16 kHz
inputs = feature_extractor(audio, sampling_rate=16000, return_tensors="pt")
with torch.no_grad():
    hidden_states = encoder(**inputs, output_hidden_states=True).hidden_states
embedding = hidden_states[-1].mean(dim=1)[0]  # one vector for the clip (last layer, mean over frames)
```

Embeddings of a folder of recordings, any layer: `voc2vec embed my_recordings/ --model {model_id} --layer all
--output embeddings.npy`. To train a classifier on it: `python run_cv.py configs/cv/donateacry.yaml
--model_name_or_path {model_id}` (or `run_classification.py`), which adds the head and fine-tunes.'''


def write_encoder_card(
    final_dir: str | os.PathLike,
    training_args=None,
    *,
    base_model: str | None = None,
    datasets: Sequence[str] | None = None,
    training_summary: Mapping | None = None,
    repo_id: str | None = None,
    license: str = "apache-2.0",
    tags: Sequence[str] = (),
) -> Path:
    """Write `final_dir/README.md` for a self-supervised encoder without a trained head; return its path.

    `training_args`: the pretraining arguments (dataclass or dict) whose hyperparameters the card lists.
    `base_model`: the checkpoint pretraining continued from (None: from scratch). `datasets`: what it was pretrained
    on (corpus names, or a Hub dataset id such as the published Voc125 mixture). `training_summary`: a few facts of
    the run to show as they are (e.g. `{"updates": 400000, "audio hours": 125.2}`). Values not given are kept from
    the card already in the folder, so `voc2vec card` can rewrite it without losing them.
    """
    from huggingface_hub import ModelCard, ModelCardData

    final_dir = Path(final_dir)
    config = model_config(final_dir)
    previous = ModelCard.load(final_dir / CARD_FILE).data.to_dict() if (final_dir / CARD_FILE).is_file() else {}
    start = base_model or previous.get("base_model")
    base_model = start if is_hub_id(start) else None  # a local folder is no Hub id: it stays out of the metadata
    datasets = list(datasets) if datasets else previous.get("datasets")
    hyperparameters = merged_hyperparameters(final_dir, training_args)
    model_name = repo_id.split("/")[-1] if repo_id else (final_dir.resolve().parent.name if final_dir.name == "final" else final_dir.resolve().name)
    card_data = ModelCardData(
        model_name=model_name,
        license=license,
        library_name="transformers",
        pipeline_tag="feature-extraction",
        tags=list(dict.fromkeys(["audio", "voc2vec", "non-verbal-vocalization", "self-supervised", encoder_type(config), *tags])),
        base_model=base_model,
        datasets=datasets or None,
    )
    objective = "masked prediction of k-means targets (HuBERT)" if encoder_type(config) == "hubert" else "contrastive + diversity loss (wav2vec 2.0)"
    if base_model:
        origin = f"continued from [`{base_model}`](https://huggingface.co/{base_model})"
    elif start:  # its name only: the card is published, the path is the training machine's
        origin = f"continued from the local checkpoint `{Path(start).name}`"
    else:
        origin = "from random initialization"
    data_text = ", ".join(f"`{name}`" for name in datasets) if datasets else "audio recorded in the run's configuration"
    summary = [f"| {name} | {value} |" for name, value in (training_summary or {}).items()]
    body = [
        f"# {model_name}",
        "",
        f"A {architecture_of(config)} encoder pretrained with self-supervision ({objective}) on non-verbal vocalizations, "
        f"{origin}, on {data_text}, with the [voc2vec](https://github.com/koudounasalkis/voc2vec) toolkit.",
        "",
        "**This model has no trained head.** It is a pretrained encoder: it turns audio into frame-level representations "
        "(feature extraction). To classify vocalizations, fine-tune it first (a classification head on top, trained on "
        "labelled clips); loading it with `AutoModelForAudioClassification` adds a randomly initialized head whose "
        "outputs mean nothing until then.",
        "",
        *(["## Training run", "", "| | |", "|---|---|", *summary, ""] if summary else []),
        "## Usage",
        "",
        encoder_usage(repo_id or final_dir.as_posix()),
        "",
        "## Training hyperparameters",
        "",
        *hyperparameter_lines(hyperparameters),
        "",
        "## Citation",
        "",
        "If you use this model, cite the voc2vec paper:",
        "",
        "```bibtex",
        CITATION,
        "```",
        "",
    ]
    card = ModelCard(f"---\n{card_data.to_yaml()}\n---\n\n" + "\n".join(body))
    return save_card(card, final_dir)


# ---------------------------------------------------------------------------------------------------------------------
# Either
# ---------------------------------------------------------------------------------------------------------------------


def write_card(
    model_dir: str | os.PathLike,
    results: str | os.PathLike | None = None,
    *,
    base_model: str | None = None,
    datasets: Sequence[str] | None = None,
    repo_id: str | None = None,
    license: str = "apache-2.0",
) -> Path:
    """(Re)write the card of any model folder: a classifier card from `results` (default: `find_results`), or an
    encoder card for a folder without a classification head."""
    model_dir = Path(model_dir)
    config = model_config(model_dir)
    if not is_classifier(config):
        return write_encoder_card(model_dir, base_model=base_model, datasets=datasets, repo_id=repo_id, license=license)
    results = results or find_results(model_dir)
    if results is None:
        raise UserError(f"no results file found for this classifier ({METRICS_FILE} beside it, or {SUMMARY_FILE} in the "
                        "folder above)", where=model_dir, fix="pass --results with the run's summary.json or metrics.json")
    return write_classifier_card(model_dir, results, base_model=base_model, repo_id=repo_id, license=license)


def card_for_repo(text: str, repo_id: str) -> str:
    """A card's text with its usage snippet and command lines pointing at `repo_id` instead of a local folder."""
    text = re.sub(r'^model_id = ".*"$', f'model_id = "{repo_id}"', text, flags=re.M)
    return re.sub(r"(--model(?:_name_or_path)? )\S+", rf"\g<1>{repo_id}", text)
