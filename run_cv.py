#!/usr/bin/env python
"""k-fold cross-validation of an audio encoder on a vocalization corpus, and model x dataset grids.

    python run_cv.py configs/cv/demo.yaml                         # 10 speaker-grouped folds on the demo corpus
    python run_cv.py configs/cv/demo.yaml --num_folds 5           # a config file, then flags that override it
    python run_cv.py configs/cv/demo.yaml --fold 3                # one fold per process (cluster jobs) ...
    python run_cv.py configs/cv/demo.yaml --merge_only            # ... then merge their results from files
    python run_cv.py configs/cv/demo-grid.yaml                    # models x datasets -> a Table IV-shaped table
    torchrun --nproc_per_node 8 run_cv.py configs/cv/demo-grid.yaml   # the folds of every cell shared by 8 processes

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
from typing import NamedTuple

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
from voc2vec.cards import write_classifier_card
from voc2vec.evaluation import decode, headline, plan_evaluation, publish_model, run_hyperparameters, run_split
from voc2vec.logs import configure_logging
from voc2vec.results import IncompleteResults, merge_folds, write_grid
from voc2vec.rundir import (
    CV_CONFIG_FILE,
    METRICS_FILE,
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


RUN = "run"  # the one cell of a plain run; a grid's cells are named (model, dataset)


class Cell(NamedTuple):
    """One model on one corpus with an --output_dir of its own: a plain run is one cell, a grid one per model x dataset."""

    model_args: ModelArguments
    data_args: DataArguments
    protocol_args: ProtocolArguments
    cv_args: CrossValidationArguments
    training_args: FineTuningTrainingArguments

    @property
    def output_dir(self) -> Path:
        return Path(self.training_args.output_dir)


def cross_validate(model_args, data_args, protocol_args, cv_args, training_args, launch: Launch | None = None) -> dict | None:
    """One model on one corpus: every fold (or just --fold), then the merged summary (rank 0 of a launch)."""
    launch = launch or Launch.single()
    output_dir = Path(training_args.output_dir)
    if cv_args.merge_only:
        return merge_and_publish(output_dir, model_args, data_args, training_args) if launch.is_main else None
    summaries, failures = cross_validate_cells({RUN: Cell(model_args, data_args, protocol_args, cv_args, training_args)}, launch)
    if RUN in failures:
        raise IncompleteResults(failures[RUN])
    return summaries.get(RUN)


def cross_validate_cells(cells: dict, launch: Launch) -> tuple[dict, dict]:
    """Every pending fold of every cell, shared across the processes of a launch, then each cell's summary.

    Rank 0 plans every cell first (so a mistake in the last cell stops the run before anything trains) and lists the
    pending (cell, fold) pairs; in folds mode each rank runs its share of all of them, whichever cell they belong to,
    in ddp mode every rank runs each one. When every rank is done, rank 0 merges every cell. Returns
    `(summaries, failures)`: each merged cell's summary (rank 0; None for a --fold k job), and, on every rank, why
    each cell whose folds did not all finish has none.
    """
    names = list(cells)
    key = f"run_cv:{cells[names[0]].output_dir.resolve()}"
    for cell in cells.values():
        check_keeps_model(cell)
    planned = main_process_first(launch, f"{key}:planned", lambda: plan_cells(cells), dict)
    pending = pending_folds(cells, planned, launch, f"{key}:pending")
    for index, fold in my_share(pending, names, launch):
        name, cell = names[index], cells[names[index]]
        if name not in planned:  # another rank: plans and decodes (from rank 0's cache) only the cells it has folds of
            plan = plan_cell(cell)
            planned[name] = plan, decode(plan, cell.data_args)
        plan, decoded = planned[name]
        if name != RUN:
            logger.info("grid: %s, fold %d%s", cell_title(name), fold, f" on rank {launch.rank}" if launch.distributed else "")
        run_fold(plan, decoded, fold, min(plan.runs), cell.model_args, cell.data_args, cell.cv_args, cell.training_args,
                 cell.output_dir, launch)
    return merge_when_every_rank_is_done(cells, launch, key)


def cell_title(name: tuple[str, str]) -> str:
    """A grid cell as the log names it: 'tiny-a on tones'."""
    return f"{name[0]} on {name[1]}"


def check_keeps_model(cell: Cell) -> None:
    if cell.training_args.push_to_hub and cell.cv_args.final_model == "none":
        raise UserError("--push_to_hub publishes output_dir/model, which --final_model none does not keep",
                        where="--final_model none", fix="drop --final_model none, or --push_to_hub")


def plan_cell(cell: Cell):
    """The cell's folds; everything that can be wrong with the input fails here, before any audio is decoded."""
    plan = plan_evaluation(cell.model_args, cell.data_args, cell.protocol_args, cell.training_args, single_split=False)
    fold = cell.cv_args.fold
    if fold is not None and fold not in plan.runs:
        folds = sorted(plan.runs)
        raise UserError(f"--fold {fold} is out of range: this run has folds {folds[0]}..{folds[-1]}",
                        where="--fold", fix=f"pass a fold between {folds[0]} and {folds[-1]}")
    return plan


def plan_cells(cells: dict) -> dict:
    """Rank 0: plan every cell and write its splits.csv and cv_config.json, then decode every corpus; `{name: (plan,
    decoded)}`. A run that stops here removes the run files it wrote (never one that was there before), so the same
    command can start over."""
    for cell in cells.values():
        check_writable_dir(cell.output_dir, "--output_dir")
    plans = {name: plan_cell(cell) for name, cell in cells.items()}
    new_files = [path for cell in cells.values() for path in (cell.output_dir / SPLITS_FILE, cell.output_dir / CV_CONFIG_FILE)
                 if not path.exists()]
    try:
        for name, cell in cells.items():
            plan = plans[name]
            cell.output_dir.mkdir(parents=True, exist_ok=True)
            write_or_check_splits(cell.output_dir / SPLITS_FILE, splits_table(plan.corpus, plan.assignment, plan.runs))
            write_or_check_run_config(cell.output_dir / CV_CONFIG_FILE, run_config(plan, cell.model_args, cell.data_args, cell.cv_args, cell.training_args))
        return {name: (plans[name], decode(plans[name], cell.data_args)) for name, cell in cells.items()}
    except BaseException:
        for path in new_files:
            path.unlink(missing_ok=True)
        raise


def pending_folds(cells: dict, planned: dict, launch: Launch, key: str) -> list[tuple[int, int]]:
    """(cell index, fold) of every fold still to run, listed once by rank 0 (the others would see folds finishing
    meanwhile) and published to the others."""
    if not launch.is_main:
        return [tuple(pair) for pair in launch.receive(key)["pending"]]
    pending = []
    for index, (name, cell) in enumerate(cells.items()):
        plan, _ = planned[name]
        for fold in [cell.cv_args.fold] if cell.cv_args.fold is not None else sorted(plan.runs):
            folder = fold_dir(cell.output_dir, fold)
            if is_finished(folder):
                logger.info("%sfold %d: finished before, skipped (delete %s to run it again).",
                            "" if name == RUN else f"grid: {cell_title(name)}, ", fold, folder)
            else:
                pending.append((index, fold))
    launch.publish(key, {"pending": pending})
    return pending


def my_share(pending: list[tuple[int, int]], names: list, launch: Launch) -> list[tuple[int, int]]:
    """The (cell, fold) pairs this process runs: every one in one process and in ddp mode (all ranks train each fold
    together); in folds mode a round-robin share (independent folds: the speedup is linear)."""
    if launch.mode != "folds":
        return pending
    owners = share_folds(pending, launch.world_size)
    if launch.is_main:
        shares = {rank: [fold if names[index] == RUN else f"{cell_title(names[index])} fold {fold}"
                         for (index, fold), owner in owners.items() if owner == rank] for rank in range(launch.world_size)}
        logger.info("folds per rank: %s", shares)
    return [pair for pair in pending if owners[pair] == launch.rank]


def merge_when_every_rank_is_done(cells: dict, launch: Launch, key: str) -> tuple[dict, dict]:
    """After every rank's folds: rank 0 merges every cell (and writes its model card), and tells the other ranks which
    cells have no summary and why."""
    names = list(cells)
    launch.report_done(f"{key}:done")
    if not launch.is_main:
        failures = launch.receive(f"{key}:merged")["failures"]
        return {}, {names[int(index)]: error for index, error in failures.items()}
    launch.wait_all_done(f"{key}:done")
    summaries, failures = {}, {}
    for name, cell in cells.items():
        try:
            summaries[name] = finish(cell.output_dir, cell.cv_args)
        except IncompleteResults as error:
            failures[name] = str(error)
    launch.publish(f"{key}:merged", {"failures": {names.index(name): error for name, error in failures.items()}})
    for name, summary in summaries.items():
        cell = cells[name]
        if summary is not None and (cell.output_dir / MODEL_DIR).is_dir():
            publish_model(cell.output_dir / MODEL_DIR, cell.output_dir, cell.model_args, cell.data_args, cell.training_args)
    return summaries, failures


def merge_and_publish(output_dir: Path, model_args, data_args, training_args) -> dict:
    """--merge_only, the cluster workflow's last job: the summary from the fold files, then output_dir/model's card
    and --push_to_hub, which the fold jobs (--fold k) leave to it."""
    summary = merge_folds(output_dir)  # IncompleteResults when a fold is missing or failed: no card, no upload
    if (output_dir / MODEL_DIR).is_dir():
        publish_model(output_dir / MODEL_DIR, output_dir, model_args, data_args, training_args)
    elif training_args.push_to_hub:
        raise UserError(f"--push_to_hub publishes {output_dir / MODEL_DIR}, which the fold jobs did not keep", where="--push_to_hub",
                        fix="drop --push_to_hub, or rerun fold 0 without --final_model none (a probe keeps no model)")
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
    if save_model_dir == folder / MODEL_DIR and save_model_dir.is_dir() and (launch.is_main or launch.mode == "folds"):
        # --save_fold_models: every kept model has its card, with its own fold's results (output_dir/model's is
        # written from summary.json once every fold is merged).
        write_classifier_card(save_model_dir, folder / METRICS_FILE, run_hyperparameters(model_args, data_args, training_args))


def finish(output_dir: Path, cv_args) -> dict | None:
    """After the folds: one fold of a cluster job says so; a whole run is merged from the fold files."""
    if cv_args.fold is not None:
        if not is_finished(fold_dir(output_dir, cv_args.fold)):
            raise IncompleteResults(f"fold {cv_args.fold} failed (see {fold_dir(output_dir, cv_args.fold)}/failed.json).")
        logger.info("fold %d done; when every fold is, merge with --merge_only.", cv_args.fold)
        return None
    return merge_folds(output_dir)


def run_grid(argv: list[str], grid, training_args, launch: Launch) -> int:
    """Every model x dataset of the config's `grid:` section as its own run, then one Table IV-shaped table.

    `grid.models` / `grid.datasets` map a display name to argument overrides (or just a model path / corpus name).
    Overrides go between the config file and the command-line flags, so flags still win. Under a launcher the
    folds of all cells are shared across the processes (cross_validate_cells).
    """
    models, datasets = grid_sections(argv, grid)
    # Every cell's arguments are parsed first, so a typo in the last cell stops the grid before the first trains.
    cells = {}
    for model_name, model_overrides in models.items():
        for dataset_name, dataset_overrides in datasets.items():
            cell_argv = [argv[0], *config_to_flags(model_overrides), *config_to_flags(dataset_overrides), *argv[1:],
                         "--output_dir", str(Path(training_args.output_dir) / model_name / dataset_name)]
            cells[(model_name, dataset_name)] = Cell(*parse_arguments(ARGUMENT_TYPES, cell_argv)[:-1])
    check_one_repository_per_cell(cells)
    first = next(iter(cells.values())).cv_args
    summaries, failures = merge_grid(cells, launch) if first.merge_only else cross_validate_cells(cells, launch)
    for (model_name, dataset_name), error in failures.items():
        if launch.is_main:
            logger.error("grid: %s on %s failed: %s", model_name, dataset_name, error)
    if first.fold is not None:  # a cluster job's share: the table comes from the merge job (--merge_only)
        logger.info("grid: fold %d of every cell done; when every fold is, merge with --merge_only.", first.fold)
    elif launch.is_main:
        print(write_grid(training_args.output_dir, summaries, list(models), list(datasets)))
    return 1 if failures else 0


def grid_sections(argv: list[str], grid) -> tuple[dict, dict]:
    """`grid.models` and `grid.datasets` as {name: argument overrides}."""
    if not isinstance(grid, dict):
        raise UserError(f"the grid: section must be a mapping with 'models:' and 'datasets:', not a {type(grid).__name__}",
                        where=argv[0], fix="write 'grid: {models: {name: MODEL}, datasets: {name: CORPUS}}' (see configs/cv/demo-grid.yaml)")
    for section in ("models", "datasets"):
        if not isinstance(grid.get(section), dict) or not grid[section]:
            raise UserError(f"the grid: section needs a non-empty '{section}:' mapping", where=argv[0],
                            fix=f"add 'grid: {{{section}: {{name: ...}}}}' (see configs/cv/demo-grid.yaml)")
    models = {name: value if isinstance(value, dict) else {"model_name_or_path": value} for name, value in grid["models"].items()}
    datasets = {name: value if isinstance(value, dict) else {"dataset_name": value} for name, value in grid["datasets"].items()}
    return models, datasets


def check_one_repository_per_cell(cells: dict) -> None:
    """Each grid cell keeps a model of its own: one --hub_model_id for several would upload each over the last."""
    pushing = {}
    for (model_name, dataset_name), cell in cells.items():
        if cell.training_args.push_to_hub:
            pushing.setdefault(cell.training_args.hub_model_id, []).append(f"{model_name} on {dataset_name}")
    for repo_id, cell_names in pushing.items():
        if len(cell_names) > 1:
            raise UserError(f"--push_to_hub would upload the models of {len(cell_names)} grid cells ({', '.join(cell_names)}) "
                            f"to the one --hub_model_id {repo_id}, each overwriting the last", where="--push_to_hub",
                            fix="drop --push_to_hub, then publish the cells you want one by one: "
                                "voc2vec push OUTPUT_DIR/MODEL/DATASET/model --repo_id ORG/NAME")


def merge_grid(cells: dict, launch: Launch) -> tuple[dict, dict]:
    """--merge_only: each cell's summary from the fold files its cluster jobs wrote."""
    summaries, failures = {}, {}
    for name, cell in cells.items():
        try:
            summaries[name] = cross_validate(*cell, launch=launch)
        except (IncompleteResults, *user_error_types()) as error:
            failures[name] = str(error)
    return summaries, failures


@exit_on_user_error
def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    launch = start(argv)  # under accelerate launch / torchrun: before the training arguments pick a device
    model_args, data_args, protocol_args, cv_args, training_args, grid = parse_arguments(ARGUMENT_TYPES, argv, prog)
    rank = f" [rank {launch.rank}]" if launch.distributed else ""
    configure_logging(fmt=f"%(asctime)s %(levelname)s %(name)s{rank}: %(message)s", quiet_libraries=True)
    if training_args.disable_tqdm:  # also the per-checkpoint "Writing model shards" bars, one per epoch and fold
        transformers.utils.logging.disable_progress_bar()

    try:
        if grid is not None:
            return run_grid(argv, grid, training_args, launch)
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
