#!/usr/bin/env python
"""Fine-tune an audio encoder on one split of a vocalization corpus (classification or multi-output regression).

    python run_classification.py --model_name_or_path alkiskoudounas/voc2vec --dataset_name donateacry \
        --data_dir corpora/donateacry-corpus --output_dir outputs/donateacry
    python run_classification.py configs/cv/demo.yaml --output_dir outputs/demo-single   # a config file + overrides
    python run_classification.py --dataset_name hume_vb --dataset_config_name high --data_dir A-VB \
        --head lstm --pooling mean --output_dir outputs/avb-high                          # A-VB High, CCC loss

The one-split case of `run_cv.py`, on the same path (voc2vec/evaluation.py). The split comes from the protocol:
the corpus's official Train/Val/Test when it has one (`official`; with the test labels withheld, as in A-VB,
the official validation split is scored and early stopping uses a speaker-disjoint part of Train), otherwise one
speaker-disjoint, stratified test part (`holdout`, --test_fraction) with a validation part carved from the rest
(--validation_fraction), or the train/validation/test of your own --splits_csv. The best epoch is chosen on the
validation part by --metric_for_best_model (UAR; mean CCC for regression); the test part is scored once.

Writes to --output_dir: the model (config, weights, feature extractor, label names), so that
`AutoModelForAudioClassification.from_pretrained(output_dir)` and `pipeline("audio-classification",
model=output_dir)` load it; metrics.json; predictions.csv (path, speaker, label, prediction, probabilities).
"""

import logging
import sys
from pathlib import Path

from voc2vec.arguments import DataArguments, FineTuningTrainingArguments, ModelArguments, ProtocolArguments, parse_arguments
from voc2vec.distributed import OtherRankFailed, main_process_first, start
from voc2vec.errors import check_writable_dir, exit_on_user_error
from voc2vec.evaluation import decode, headline, plan_evaluation, publish_model, run_split
from voc2vec.logs import configure_logging
from voc2vec.rundir import METRICS_FILE

logger = logging.getLogger("run_classification")


@exit_on_user_error
def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    launch = start(argv, data_parallel_only=True)  # under accelerate launch / torchrun: DDP, rank 0 writes
    model_args, data_args, protocol_args, training_args, _ = parse_arguments(
        (ModelArguments, DataArguments, ProtocolArguments, FineTuningTrainingArguments), argv, prog
    )
    configure_logging(quiet_libraries=True)
    output_dir = Path(training_args.output_dir)
    if launch.is_main:
        check_writable_dir(output_dir, "--output_dir")

    # Load the labels, choose the split and check the model before any audio is decoded or step trained; decode
    # every clip once (rank 0 first, into the cache the other ranks then read).
    def plan_and_decode():
        plan = plan_evaluation(model_args, data_args, protocol_args, training_args, single_split=True)
        return plan, decode(plan, data_args)

    try:
        plan, decoded = main_process_first(launch, f"run_classification:{output_dir.resolve()}", plan_and_decode)
    except OtherRankFailed:  # rank 0 prints the error
        return 2
    split = plan.runs[0]
    logger.info("%s (%s, --protocol %s): %d train, %d validation, %d test clips; test = %s", plan.corpus.name,
                plan.corpus.task, plan.protocol.name, len(split.train), len(split.validation), len(split.test), split.evaluated_on)
    metrics = run_split(plan, decoded, split, model_args, data_args, training_args, output_dir, save_model_dir=output_dir,
                        write_files=launch.is_main)
    if not launch.is_main:
        return 0
    if (output_dir / "config.json").is_file():  # a probe keeps no model folder
        publish_model(output_dir, output_dir / METRICS_FILE, model_args, data_args, training_args)
    logger.info("test (%s): %s", metrics["evaluated_on"], headline(metrics))
    logger.info("model, metrics.json and predictions.csv written to %s", output_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
