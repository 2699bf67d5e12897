"""One object per model family: everything the pretraining loop needs to know about wav2vec 2.0, HuBERT, ...

`run_pretraining.py` never asks which family it trains. It calls the objective that the model config's
`model_type` selects, which

- builds the model from a checkpoint or a config, with the CNN stabilizers and freezing applied (`build_model`),
- says what the collator draws (`num_negatives`) and which frame targets the clips carry (`frame_targets`),
- updates what changes with the step count (`before_update`: wav2vec 2.0's Gumbel temperature),
- computes the named loss terms of a micro-batch, summed over masked frames (`losses`),
- turns a logging interval's sums into the metrics row (`log_row`),
- exports the encoder that fine-tuning loads (`export`).

A new family (data2vec-audio, say) is one new module in this package and one entry in `OBJECTIVES`.
"""

from __future__ import annotations

from voc2vec.errors import UserError
from voc2vec.pretraining.objectives.base import PretrainingObjective, load_model_config
from voc2vec.pretraining.objectives.hubert import HubertObjective
from voc2vec.pretraining.objectives.wav2vec2 import Wav2Vec2Objective

OBJECTIVES: dict[str, type[PretrainingObjective]] = {
    Wav2Vec2Objective.model_type: Wav2Vec2Objective,
    HubertObjective.model_type: HubertObjective,
}


def objective_for(args) -> PretrainingObjective:
    """The objective of the model family that `args` names."""
    config = load_model_config(args)
    if config.model_type not in OBJECTIVES:
        raise UserError(
            f"pretraining supports {', '.join(sorted(OBJECTIVES))} models, not {config.model_type!r}",
            where=args.model_name_or_path or args.config_name,
            fix=f"give a {' or '.join(sorted(OBJECTIVES))} checkpoint or config",
        )
    return OBJECTIVES[config.model_type](args, config)
