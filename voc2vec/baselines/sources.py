"""Feature baselines named in the model's place: `opensmile:<feature set>` and `emotion2vec:<model id>`.

Only names and checks live here (no audio, no heavy imports), so `voc2vec.models.check_model_source` can refuse an
unknown feature set or a missing optional dependency before any audio is decoded.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from voc2vec.errors import UserError
from voc2vec.tasks import CLASSIFICATION

FEATURE_BASELINE_KINDS = ("opensmile", "emotion2vec")
EMOTION2VEC_INSTALL = "pip install 'voc2vec[emotion2vec]' (or: pip install funasr modelscope)"


@dataclass
class FeatureBaselineInput:
    """Stands in for a feature extractor where a feature baseline takes the model's place: clips are decoded at
    `sampling_rate` (what `voc2vec.evaluation.decode` reads), the baseline computes its own features."""

    source: str
    sampling_rate: int = 16000


def feature_baseline_kind(source: str) -> str | None:
    """'opensmile', 'emotion2vec', or None for a model."""
    kind = source.split(":", 1)[0]
    return kind if ":" in source and kind in FEATURE_BASELINE_KINDS else None


def feature_baseline_argument(source: str) -> str:
    """What follows the prefix: the openSMILE feature set or the emotion2vec model id."""
    return source.split(":", 1)[1]


def feature_baseline_name(source: str) -> str:
    """How tables name the baseline: 'openSMILE eGeMAPSv02', 'emotion2vec iic/emotion2vec_base'."""
    kind = feature_baseline_kind(source)
    return f"{'openSMILE' if kind == 'opensmile' else kind} {feature_baseline_argument(source)}"


def default_probe_head(source: str) -> str:
    """The head a probe gets without --probe_head: the voc2vec paper's for its feature baselines ("features passed
    through two linear layers with ReLU"), SUPERB's linear probe for an encoder's layers."""
    return "mlp" if feature_baseline_kind(source) else "linear"


def resolve_probe_head(model_args, task: str) -> str:
    """`--probe_head`, or its default for the source; refuses logistic regression for a regression task (it
    classifies) when the run probes, so the mistake stops the plan rather than every fold."""
    head = model_args.probe_head or default_probe_head(model_args.model_name_or_path)
    probing = model_args.method == "probe" or feature_baseline_kind(model_args.model_name_or_path)
    if probing and head == "logreg" and task != CLASSIFICATION:
        raise UserError(f"logistic regression classifies, and this is a {task} task", where="--probe_head logreg",
                        fix="use --probe_head mlp or linear (both regress with the task's loss)")
    return head


def opensmile_feature_sets() -> list[str]:
    import opensmile

    return [feature_set.name for feature_set in opensmile.FeatureSet]


def check_feature_baseline(source: str, probe_layer: str = "weighted") -> FeatureBaselineInput:
    """Refuse an unknown openSMILE set, an empty emotion2vec id, FunASR missing, or a layer index (a feature
    baseline has one 'layer': its feature vector)."""
    kind, argument = feature_baseline_kind(source), feature_baseline_argument(source)
    if kind == "opensmile":
        known = opensmile_feature_sets()
        if argument not in known:
            raise UserError(f"unknown openSMILE feature set {argument!r}", where="--model_name_or_path",
                            fix=f"use one of opensmile:{', opensmile:'.join(known)} (eGeMAPSv02 and ComParE_2016 are the usual baselines)")
    else:
        if not argument:
            raise UserError("emotion2vec needs a model id", where="--model_name_or_path",
                            fix="pass e.g. emotion2vec:iic/emotion2vec_base")
        check_funasr_installed()
    if probe_layer not in ("weighted", "last", "0", "-1"):
        raise UserError(f"{source} gives one feature vector per clip, not layers", where=f"--probe_layer {probe_layer}",
                        fix="drop --probe_layer (it applies to encoders)")
    return FeatureBaselineInput(source)


def check_funasr_installed() -> None:
    if importlib.util.find_spec("funasr") is None:
        raise UserError("emotion2vec is published in FunASR's format and FunASR is not installed",
                        where="--model_name_or_path emotion2vec:...", fix=EMOTION2VEC_INSTALL)
