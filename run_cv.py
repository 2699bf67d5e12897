#!/usr/bin/env python
"""k-fold cross-validation of an audio encoder on a vocalization corpus, and model x dataset grids.

    python run_cv.py configs/cv/demo.yaml                         # 10 speaker-grouped folds on the demo corpus
    python run_cv.py configs/cv/demo.yaml --num_folds 5           # a config file, then flags that override it
    python run_cv.py configs/cv/demo.yaml --fold 3                # one fold per process (cluster jobs) ...
    python run_cv.py configs/cv/demo.yaml --merge_only            # ... then merge their results from files
    python run_cv.py configs/cv/demo-grid.yaml                    # models x datasets -> a Table IV-shaped table

The protocol (`--protocol`, voc2vec/protocols.py) decides which clips train, which pick the best epoch and which
are scored: leak-free speaker-grouped folds by default, the corpus's official split when it has one, the seed
repo's own protocol (`voc2vec-paper`) for comparison with the paper's Table IV, leave-one-speaker-out, or your
own folds (`--splits_csv`).

Writes to --output_dir (voc2vec/rundir.py): cv_config.json, splits.csv, fold_XX/{metrics.json,predictions.csv},
summary.json, results.md, results.csv, confusion_matrix.png, and model/ (fold 0's best model, unless
--final_model none). A rerun skips finished folds; a failed fold makes the run exit non-zero and no mean is
reported.
"""

import logging
import sys
from pathlib import Path

import transformers

from voc2vec.arguments import (
    CrossValidationArguments,
    DataArguments,
    FineTuningTrainingArguments,
    ModelArguments,
    ProtocolArguments,
    config_to_flags,
    parse_arguments,
)
from voc2vec.distributed import Launch, OtherRankFailed, main_process_first, share_folds, start
from voc2vec.errors import UserError, check_writable_dir, exit_on_user_error, user_error_types
from voc2vec.evaluation import decode, headline, plan_evaluation, publish_model, run_split
from voc2vec.results import IncompleteResults, merge_folds, write_grid
from voc2vec.rundir import (
    CV_CONFIG_FILE,
    MODEL_DIR,
    SPLITS_FILE,
    fold_dir,
    is_finished,
    record_failure,
    splits_table,
    write_or_check_run_config,
    write_or_check_splits,
)

logger = logging.getLogger("run_cv")
ARGUMENT_TYPES = (ModelArguments, DataArguments, ProtocolArguments, CrossValidationArguments, FineTuningTrainingArguments)


def cross_validate(model_args, data_args, protocol_args, cv_args, training_args, launch: Launch | None = None) -> dict | None:
    """One model on one corpus: every fold (or just --fold), then the merged summary (rank 0 of a launch)."""
    launch = launch or Launch.single()
    output_dir = Path(training_args.output_dir)
    if cv_args.merge_only:
        return merge_folds(output_dir) if launch.is_main else None
    key = f"run_cv:{output_dir.resolve()}"

    def plan_and_decode(write_run_files: bool):
        # Everything that can be wrong with the input fails here, before any audio is decoded or model trained.
        plan = plan_evaluation(model_args, data_args, protocol_args, training_args, single_split=False)
        if cv_args.fold is not None and cv_args.fold not in plan.runs:
            folds = sorted(plan.runs)
            raise UserError(f"--fold {cv_args.fold} is out of range: this run has folds {folds[0]}..{folds[-1]}",
                            where="--fold", fix=f"pass a fold between {folds[0]} and {folds[-1]}")
        if not write_run_files:
            return plan, decode(plan, data_args)
        started_here = not (output_dir / SPLITS_FILE).exists()
        output_dir.mkdir(parents=True, exist_ok=True)
        write_or_check_splits(output_dir / SPLITS_FILE, splits_table(plan.corpus, plan.assignment, plan.runs))
        write_or_check_run_config(output_dir / CV_CONFIG_FILE, run_config(plan, model_args, data_args, cv_args, training_args))
        try:
            return plan, decode(plan, data_args)
        except BaseException:
            if started_here:  # a run that stopped before training keeps no splits: the same command can start over
                (output_dir / SPLITS_FILE).unlink(missing_ok=True)
                (output_dir / CV_CONFIG_FILE).unlink(missing_ok=True)
            raise

    if training_args.push_to_hub and cv_args.final_model == "none":
        raise UserError("--push_to_hub publishes output_dir/model, which --final_model none does not keep",
                        where="--final_model none", fix="drop --final_model none, or --push_to_hub")
    if launch.is_main:
        check_writable_dir(output_dir, "--output_dir")
    plan, decoded = main_process_first(launch, f"{key}:planned", lambda: plan_and_decode(True), lambda: plan_and_decode(False))
    folds = sorted(plan.runs)
    fold_numbers = [cv_args.fold] if cv_args.fold is not None else folds
    pending = [fold for fold in fold_numbers if not is_finished(fold_dir(output_dir, fold))]
    for fold in sorted(set(fold_numbers) - set(pending)):
        logger.info("fold %d: finished before, skipped (delete %s to run it again).", fold, fold_dir(output_dir, fold))
    # Which rank runs which fold: decided once by rank 0 (the others would see folds finishing meanwhile).
    if launch.mode == "folds":
        if launch.is_main:
            owners = share_folds(pending, launch.world_size)
            launch.publish(f"{key}:owners", {str(fold): rank for fold, rank in owners.items()})
            logger.info("folds per rank: %s", {rank: [f for f, r in owners.items() if r == rank] for rank in range(launch.world_size)})
        else:
            owners = {int(fold): rank for fold, rank in launch.receive(f"{key}:owners").items()}
        pending = [fold for fold in pending if owners[fold] == launch.rank]

    for fold in pending:
        run_fold(plan, decoded, fold, folds[0], model_args, data_args, cv_args, training_args, output_dir, launch)

    launch.report_done(f"{key}:done")
    if not launch.is_main:
        status = launch.receive(f"{key}:merged")
        if status["error"]:
            raise IncompleteResults(status["error"])
        return None
    launch.wait_all_done(f"{key}:done")
    try:
        summary = finish(output_dir, cv_args)
    except IncompleteResults as error:
        launch.publish(f"{key}:merged", {"error": str(error)})
        raise
    launch.publish(f"{key}:merged", {"error": None})
    if summary is not None and (output_dir / MODEL_DIR).is_dir():
        publish_model(output_dir / MODEL_DIR, output_dir, model_args, data_args, training_args)
    return summary


def run_config(plan, model_args, data_args, cv_args, training_args) -> dict:
    """cv_config.json: what the run is; a rerun must match it to resume (voc2vec.rundir)."""
    return {
        "dataset": data_args.dataset_name,
        "dataset_config": data_args.dataset_config_name,
        "model_name_or_path": model_args.model_name_or_path,
        "protocol": plan.protocol.name,
        "protocol_note": plan.protocol.note,
        "num_folds": len(plan.runs),
        "fold_kind": plan.fold_kind,
        "seed": training_args.seed,
        "std_kind": cv_args.std,
        "uar_over": plan.protocol.uar_over,
        "corpus_root": plan.corpus.root,
        "final_model": "output_dir/model: fold 0's best model, trained on fold 0's training part"
        if cv_args.final_model == "fold0" and plan.keeps_model else None,
        "settings": plan.settings,
    }


def run_fold(plan, decoded, fold, first_fold, model_args, data_args, cv_args, training_args, output_dir, launch) -> None:
    """Train and score one fold; a failure is recorded in fold_XX/failed.json and reported, never averaged over."""
    folder = fold_dir(output_dir, fold)
    split = plan.runs[fold]
    save_model_dir = None
    if fold == first_fold and cv_args.final_model == "fold0":
        save_model_dir = output_dir / MODEL_DIR
    elif cv_args.save_fold_models:
        save_model_dir = folder / MODEL_DIR
    rank = f" on rank {launch.rank}" if launch.distributed else ""
    logger.info("fold %d%s: %d train, %d validation, %d test clips", fold, rank, len(split.train), len(split.validation), len(split.test))
    try:
        metrics = run_split(plan, decoded, split, model_args, data_args, training_args, folder,
                            save_model_dir=save_model_dir, extra_metadata={"fold": fold}, log_prefix=f"fold {fold}: ",
                            write_files=launch.is_main or launch.mode == "folds")
    except Exception as error:  # a fold's failure is recorded and reported, never dropped from the mean silently
        logger.error("fold %d failed%s: %s", fold, rank, error)
        if launch.is_main or launch.mode == "folds":
            record_failure(folder, error)
        return
    logger.info("fold %d%s: test %s", fold, rank, headline(metrics))


def finish(output_dir: Path, cv_args) -> dict | None:
    """After the folds: one fold of a cluster job says so; a whole run is merged from the fold files."""
    if cv_args.fold is not None:
        if not is_finished(fold_dir(output_dir, cv_args.fold)):
            raise IncompleteResults(f"fold {cv_args.fold} failed (see {fold_dir(output_dir, cv_args.fold)}/failed.json).")
        logger.info("fold %d done; when every fold is, merge with --merge_only.", cv_args.fold)
        return None
    return merge_folds(output_dir)


def run_grid(argv: list[str], grid: dict, training_args, launch: Launch) -> int:
    """Every model x dataset of the config's `grid:` section as its own run, then one Table IV-shaped table.

    `grid.models` / `grid.datasets` map a display name to argument overrides (or just a model path / corpus name).
    Overrides go between the config file and the command-line flags, so flags still win.
    """
    for section in ("models", "datasets"):
        if not isinstance(grid.get(section), dict) or not grid[section]:
            raise UserError(f"the grid: section needs a non-empty '{section}:' mapping", where=argv[0],
                            fix=f"add 'grid: {{{section}: {{name: ...}}}}' (see configs/cv/demo-grid.yaml)")
    models = {name: value if isinstance(value, dict) else {"model_name_or_path": value} for name, value in grid["models"].items()}
    datasets = {name: value if isinstance(value, dict) else {"dataset_name": value} for name, value in grid["datasets"].items()}
    # Every cell's arguments are parsed first, so a typo in the last cell stops the grid before the first trains.
    cells = {}
    for model_name, model_overrides in models.items():
        for dataset_name, dataset_overrides in datasets.items():
            cell_argv = [argv[0], *config_to_flags(model_overrides), *config_to_flags(dataset_overrides), *argv[1:],
                         "--output_dir", str(Path(training_args.output_dir) / model_name / dataset_name)]
            cells[(model_name, dataset_name)] = parse_arguments(ARGUMENT_TYPES, cell_argv)[:-1]
    summaries, exit_code = {}, 0
    for (model_name, dataset_name), arguments in cells.items():
        logger.info("grid: %s on %s", model_name, dataset_name)
        try:
            summaries[(model_name, dataset_name)] = cross_validate(*arguments, launch=launch)
        except OtherRankFailed:  # rank 0 reports it
            summaries[(model_name, dataset_name)], exit_code = None, 1
        except (IncompleteResults, *user_error_types()) as error:
            logger.error("grid: %s on %s failed: %s", model_name, dataset_name, error)
            summaries[(model_name, dataset_name)], exit_code = None, 1
    one_fold = next(iter(cells.values()))[3].fold
    if one_fold is not None:  # a cluster job's share: the table comes from the merge job (--merge_only)
        logger.info("grid: fold %d of every cell done; when every fold is, merge with --merge_only.", one_fold)
    elif launch.is_main:
        print(write_grid(training_args.output_dir, summaries, list(models), list(datasets)))
    return exit_code


@exit_on_user_error
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    launch = start(argv)  # under accelerate launch / torchrun: before the training arguments pick a device
    model_args, data_args, protocol_args, cv_args, training_args, grid = parse_arguments(ARGUMENT_TYPES, argv)
    rank = f" [rank {launch.rank}]" if launch.distributed else ""
    logging.basicConfig(format=f"%(asctime)s %(levelname)s %(name)s{rank}: %(message)s", level=logging.INFO, force=True)
    transformers.utils.logging.set_verbosity_warning()
    logging.getLogger("accelerate").setLevel(logging.WARNING)  # its per-evaluation gather notes are noise here
    if training_args.disable_tqdm:  # also the per-checkpoint "Writing model shards" bars, one per epoch and fold
        transformers.utils.logging.disable_progress_bar()

    if grid:
        return run_grid(argv, grid, training_args, launch)
    try:
        summary = cross_validate(model_args, data_args, protocol_args, cv_args, training_args, launch)
    except OtherRankFailed:  # rank 0 prints the error
        return 2
    except IncompleteResults as error:
        if launch.is_main:
            logger.error("%s", error)
        return 1
    if summary is not None and cv_args.print_results:
        print((Path(training_args.output_dir) / "results.md").read_text())
        if summary.get("final_model") and (Path(training_args.output_dir) / MODEL_DIR).is_dir():
            print(f"Model: {Path(training_args.output_dir) / MODEL_DIR} ({summary['final_model'].split(': ', 1)[1]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
