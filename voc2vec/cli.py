"""The `voc2vec` command: one entry point for corpora, the mixture, inference, cards, publishing and the scripts.

    voc2vec classify clips/ --model outputs/demo-cv/model --output predictions.csv
    voc2vec embed clips/ --model alkiskoudounas/voc2vec --layer all --output embeddings.npy
    voc2vec detect recording.flac --model outputs/demo-cv/model --output_dir detections/
    voc2vec card outputs/demo-cv/model
    voc2vec push outputs/demo-cv/model --repo_id my-org/voc2vec-demo
    voc2vec stats donateacry --data_dir donateacry-corpus
    voc2vec mixture prepare configs/voc125.yaml | stats DIR | push DIR --repo_id ORG/NAME
    voc2vec cv configs/cv/demo.yaml          # = python run_cv.py ...; also `finetune` and `pretrain`
    voc2vec curves outputs/demo-pretraining

Every command has `--help`. Mistakes the user can fix print `error: <what> (<where>). Fix: <how>` and exit with 2.

Adding a command: `register(Command(name, help, add_arguments, run))`, where `add_arguments(parser)` declares its
options and `run(args) -> exit code` does the work, or `register(Command(name, help, delegate=main))` for a module
whose own `main(argv)` parses its arguments. Each may be a callable or a `"module:function"` string imported only when
the command runs, so that `voc2vec --help` stays fast (no torch import).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from voc2vec import __version__
from voc2vec.errors import UserError, check_writable_dir, exit_on_user_error
from voc2vec.resources import CHECKOUT_DIR, resolve_resource

CONFIG_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class Command:
    """One `voc2vec <name>` subcommand: `add_arguments` + `run`, or a `delegate` that parses its own argv."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None] | str | None = None
    run: Callable[[argparse.Namespace], int | None] | str | None = None
    delegate: Callable[[list[str]], int | None] | str | None = None
    description: str | None = None


COMMANDS: dict[str, Command] = {}


def register(command: Command) -> Command:
    """Add (or replace) a subcommand; the registration point for other modules' commands."""
    if (command.run is None) == (command.delegate is None):
        raise ValueError(f"command {command.name!r} needs exactly one of run= or delegate=.")
    COMMANDS[command.name] = command
    return command


def resolve(target):
    """A callable, or a "module:function" string imported now."""
    if not isinstance(target, str):
        return target
    module_name, _, function = target.partition(":")
    return getattr(importlib.import_module(module_name), function)


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose mistakes ("argument --top_k: invalid int value") are a one-line `UserError` naming the command."""

    def error(self, message: str):
        raise UserError(message, where=self.prog, fix=f"see `{self.prog} --help`")


# ---------------------------------------------------------------------------------------------------------------------
# Helpers shared by the inference commands
# ---------------------------------------------------------------------------------------------------------------------


def add_model_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--model", required=True, help=f"{what}: a model folder (run_cv.py's output_dir/model, run_classification.py's "
                        "output_dir, run_pretraining.py's final/) or a Hub id")
    parser.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads of torch (default: one per core; on a machine "
                        "other jobs keep busy, 1 is often faster)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def check_output(path: str, suffixes: tuple[str, ...], option: str = "--output") -> Path:
    output = Path(path)
    if output.suffix.lower() not in suffixes:
        raise UserError(f"{option} must end in {' or '.join(suffixes)}, got '{output.name}'", where=option,
                        fix=f"name the file e.g. results{suffixes[0]}")
    check_writable_dir(output.parent if str(output.parent) else Path("."), option)
    return output


def quiet_transformers() -> None:
    """No 'Loading weights' bars or warnings from transformers when the CLI loads a model."""
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def prepare_torch(args: argparse.Namespace) -> None:
    """Quiet model loading, and the CPU threads asked for."""
    quiet_transformers()
    if args.threads is not None:
        if args.threads < 1:
            raise UserError(f"--threads must be at least 1, got {args.threads}", where="--threads", fix="pass 1 or more")
        import torch

        torch.set_num_threads(args.threads)


def progress_bar(total: float, unit: str, quiet: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit=unit, disable=quiet, file=sys.stderr, dynamic_ncols=True)


def report_skipped(skipped, output: Path | None, total: int) -> None:
    """Bad files on stderr (the first ten) and in `<output>.skipped.csv`; none decodable at all is an error."""
    from voc2vec.inference import write_skipped

    report = write_skipped(output, skipped) if output is not None else None
    if not skipped:
        return
    if len(skipped) == total:
        first = skipped[0]
        raise UserError(f"none of the {total} file(s) could be decoded; the first: {first.reason}", where=first.path,
                        fix="check the paths; libsndfile reads wav, flac, ogg, mp3, aiff and caf")
    print(f"skipped {len(skipped)} of {total} file(s) that could not be decoded:", file=sys.stderr)
    for item in skipped[:10]:
        print(f"  {item.path}: {item.reason}", file=sys.stderr)
    if len(skipped) > 10:
        print(f"  ... and {len(skipped) - 10} more", file=sys.stderr)
    if report is not None:
        print(f"  (all listed in {report})", file=sys.stderr)


def input_files(inputs: list[str]) -> list[str]:
    from voc2vec.inference import find_audio_files

    paths = find_audio_files(inputs)
    if not paths:
        raise UserError("no audio files found", where=" ".join(inputs),
                        fix="name audio files or folders holding them (wav, flac, ogg, mp3, aiff, caf)")
    return paths


# ---------------------------------------------------------------------------------------------------------------------
# classify / embed / detect
# ---------------------------------------------------------------------------------------------------------------------


def classify_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="FILES_OR_DIRS", help="audio files, and folders searched recursively")
    add_model_arguments(parser, "the classifier")
    parser.add_argument("--output", required=True, help="results file: .csv or .jsonl (columns path, label, score, prob_<class>...)")
    parser.add_argument("--top_k", type=int, default=1, help="labels per file: label/score, then label_2/score_2, ... (default 1)")
    parser.add_argument("--batch_size", type=int, default=8, help="clips scored together (only equal-length clips share a batch "
                        "for models without attention mask: scores never depend on batch mates)")
    parser.add_argument("--max_duration", type=float, default=None, help="score only the first N seconds of each file (default: whole files)")


def run_classify(args: argparse.Namespace) -> int:
    output = check_output(args.output, (".csv", ".jsonl"))
    paths = input_files(args.inputs)
    prepare_torch(args)
    from voc2vec.inference import classify_files, load_classifier, write_rows

    model, feature_extractor = load_classifier(args.model, args.device)
    with progress_bar(len(paths), "file", args.quiet) as bar:
        rows, skipped = classify_files(paths, model, feature_extractor, args.batch_size, args.top_k, args.max_duration, bar.update)
    report_skipped(skipped, output, len(paths))
    write_rows(output, rows)
    print(f"{len(rows)} file(s) classified -> {output}", file=sys.stderr)
    return 0


def embed_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="FILES_OR_DIRS", help="audio files, and folders searched recursively")
    add_model_arguments(parser, "the encoder (a classifier's head is dropped)")
    parser.add_argument("--output", required=True, help=".npy (with <name>.files.txt listing the files in row order) or .parquet "
                        "(a path column and one layer_<i> column per layer)")
    parser.add_argument("--layer", default="last", help="hidden state: 'last' (default), 'all', an index (0 = before the first "
                        "transformer layer) or a comma-separated list, e.g. 0,6,12")
    parser.add_argument("--pooling", default="mean", choices=["mean", "mean+std"], help="over each clip's true frames (default mean)")
    parser.add_argument("--batch_size", type=int, default=8, help="clips embedded together (scores never depend on batch mates)")
    parser.add_argument("--max_duration", type=float, default=None, help="embed only the first N seconds of each file")


def run_embed(args: argparse.Namespace) -> int:
    output = check_output(args.output, (".npy", ".parquet"))
    paths = input_files(args.inputs)
    prepare_torch(args)
    from voc2vec.embeddings import load_encoder, num_hidden_states, select_layers
    from voc2vec.inference import default_device, embed_files, file_list_path, write_embeddings

    try:
        encoder, feature_extractor = load_encoder(args.model, args.device or default_device())
    except (OSError, ValueError, KeyError) as error:
        raise UserError(f"cannot load an audio encoder from '{args.model}': {str(error).strip().splitlines()[0]}", where="--model",
                        fix="pass a model folder or a Hub id of an audio model (wav2vec 2.0, HuBERT, WavLM, ...)") from error
    try:
        layers = select_layers(args.layer, num_hidden_states(encoder))
    except ValueError as error:
        raise UserError(str(error), where="--layer", fix="pass 'last', 'all', an index or a list such as 0,6,12") from error
    with progress_bar(len(paths), "file", args.quiet) as bar:
        kept, vectors, skipped = embed_files(paths, encoder, feature_extractor, layers, args.pooling, args.batch_size, args.max_duration, bar.update)
    report_skipped(skipped, output, len(paths))
    metadata = {"model": args.model, "layers": layers, "pooling": args.pooling, "sampling_rate": feature_extractor.sampling_rate}
    write_embeddings(output, kept, vectors, layers, metadata)
    shape = vectors.shape if len(layers) > 1 else (vectors.shape[0], vectors.shape[2])
    listing = f" and {file_list_path(output)}" if output.suffix == ".npy" else ""
    print(f"{len(kept)} file(s), layer(s) {','.join(map(str, layers))}, {args.pooling} pooling: {tuple(shape)} -> {output}{listing}", file=sys.stderr)
    return 0


def detect_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="a recording of any length (streamed from disk, never decoded whole)")
    add_model_arguments(parser, "the classifier")
    parser.add_argument("--output_dir", required=True, help="where segments.csv, scores.csv and timeline.png go")
    parser.add_argument("--window", type=float, default=2.0, help="window length in seconds (default 2.0)")
    parser.add_argument("--hop", type=float, default=0.5, help="seconds between window starts (default 0.5; at most --window)")
    parser.add_argument("--threshold", type=float, default=0.5, help="a class's score from which a stretch belongs to a segment (default 0.5)")
    parser.add_argument("--batch_size", type=int, default=16, help="windows scored together (each as if alone)")


def run_detect(args: argparse.Namespace) -> int:
    output_dir = check_writable_dir(args.output_dir, "--output_dir")
    prepare_torch(args)
    from voc2vec.audio import AudioDecodeError, audio_info
    from voc2vec.inference import detect, load_classifier

    try:  # a missing or unreadable file fails here, before the model loads
        duration = audio_info(args.file).duration
    except AudioDecodeError as error:
        raise UserError(error.what, where=error.path, fix=error.fix or "check the path to the recording") from error
    model, feature_extractor = load_classifier(args.model, args.device)
    with progress_bar(round(duration, 1), "audio s", args.quiet) as bar:
        result = detect(args.file, model, feature_extractor, output_dir, args.window, args.hop, args.threshold, args.batch_size,
                        progress=lambda seconds: bar.update(round(seconds, 3)))
    print(f"{result.windows} windows over {result.duration:.1f} s, {len(result.segments)} segment(s) -> "
          f"{output_dir / 'segments.csv'}, scores.csv, timeline.png", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------------------------------------------------
# card / push / mixture push / curves
# ---------------------------------------------------------------------------------------------------------------------


def card_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir", metavar="DIR", help="a model folder (a classifier, or run_pretraining.py's final/)")
    parser.add_argument("--results", help="a classifier's summary.json or metrics.json (default: metrics.json beside the model, "
                        "or summary.json in the folder above)")
    parser.add_argument("--base_model", help="the Hub id the model was trained from (default: the run's model when it is a Hub id)")
    parser.add_argument("--dataset", nargs="+", help="encoder cards: what it was pretrained on (default: kept from the current card)")
    parser.add_argument("--repo_id", help="the Hub id the usage snippet loads (default: the folder's path)")
    parser.add_argument("--license", default="apache-2.0", help="the model's license (default apache-2.0)")


def run_card(args: argparse.Namespace) -> int:
    from voc2vec.cards import write_card

    path = write_card(args.model_dir, args.results, base_model=args.base_model, datasets=args.dataset, repo_id=args.repo_id,
                      license=args.license)
    print(f"card written: {path}", file=sys.stderr)
    return 0


def push_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir", metavar="DIR", help="the model folder to upload")
    parser.add_argument("--repo_id", required=True, help="ORG/NAME of the model repository (created when missing)")
    parser.add_argument("--private", action="store_true", help="create the repository private")
    parser.add_argument("--commit_message", help="the commit's message")


def run_push(args: argparse.Namespace) -> int:
    from voc2vec.hub import push_model

    url = push_model(args.model_dir, args.repo_id, private=args.private or None, commit_message=args.commit_message)
    print(f"uploaded {args.model_dir} -> {url}", file=sys.stderr)
    return 0


def mixture_push_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("mixture_dir", metavar="DIR", help="a prepared mixture (the output_dir of `voc2vec mixture prepare`)")
    parser.add_argument("--repo_id", required=True, help="ORG/NAME of the dataset repository (created when missing)")
    parser.add_argument("--redistribute", default="", help="comma-separated corpora whose license you have checked lets you "
                        "republish them (by default only corpora with such a license are uploaded: human_voice, vocalsound, demo)")
    parser.add_argument("--private", action="store_true", help="create the repository private")
    parser.add_argument("--shards_per_commit", type=int, default=20, help="shards per commit (default 20)")


def run_mixture_push(args: argparse.Namespace) -> int:
    from voc2vec.hub import push_mixture

    corpora = [name.strip() for name in args.redistribute.split(",") if name.strip()]
    url = push_mixture(args.mixture_dir, args.repo_id, redistribute=corpora, private=args.private or None,
                       shards_per_commit=args.shards_per_commit)
    print(f"uploaded {args.mixture_dir} -> {url}", file=sys.stderr)
    return 0


def curves_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run_pretraining.py output_dir (holding metrics.jsonl)")
    parser.add_argument("--output", help="the figure's path (default: RUN_DIR/curves.png)")


def run_curves(args: argparse.Namespace) -> int:
    from voc2vec.pretraining.curves import main as curves_main

    return curves_main([args.run_dir] + (["--output", args.output] if args.output else []))


# ---------------------------------------------------------------------------------------------------------------------
# Delegates: commands whose module parses its own arguments
# ---------------------------------------------------------------------------------------------------------------------


def resolve_config_argument(argv: list[str], position: int = 0) -> list[str]:
    """A config path given as the first argument (`configs/cv/demo.yaml`) resolved to voc2vec's shipped copy when the
    working directory has none."""
    argv = list(argv)
    if len(argv) > position and argv[position].endswith(CONFIG_SUFFIXES):
        argv[position] = str(resolve_resource(argv[position]))
    return argv


def script_main(name: str) -> Callable[[list[str]], int | None]:
    """`main` of a top-level script (run_cv, run_classification, run_pretraining): installed as a module with the
    package, or read from the checkout beside it."""
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name != name:
            raise
        path = CHECKOUT_DIR / f"{name}.py"
        if not path.is_file():
            raise UserError(f"the script {name}.py is not installed", where=name, fix="reinstall voc2vec (pip install voc2vec)") from error
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return module.main


def delegate_to_script(name: str, command: str) -> Callable[[list[str]], int | None]:
    return lambda argv: script_main(name)(resolve_config_argument(argv), prog=f"voc2vec {command}")


def run_stats(argv: list[str]) -> int | None:
    from voc2vec.corpora import main

    return main(["stats", *argv], prog="voc2vec")


def run_tsne(argv: list[str]) -> int | None:
    from voc2vec.tsne import main

    return main(argv, prog="voc2vec tsne")


def run_mixture(argv: list[str]) -> int | None:
    """`prepare` and `stats` are voc2vec.mixture's own; `push` is voc2vec.hub's."""
    if argv and argv[0] == "push":
        parser = ArgumentParser(prog="voc2vec mixture push", description="Publish a prepared mixture as a Hub dataset repository.")
        mixture_push_arguments(parser)
        return run_mixture_push(parser.parse_args(argv[1:]))
    if argv and argv[0] in ("prepare", "stats"):
        from voc2vec.mixture import main

        return main(resolve_config_argument(argv, 1) if argv[0] == "prepare" else argv, prog="voc2vec mixture")
    parser = ArgumentParser(prog="voc2vec mixture", description="The Voc125 pretraining mixture.")
    commands = parser.add_subparsers(dest="command", metavar="{prepare,stats,push}")
    commands.add_parser("prepare", help="write (or resume writing) the mixture a YAML config describes (see `voc2vec mixture prepare --help`)")
    commands.add_parser("stats", help="print Table I of a written mixture")
    commands.add_parser("push", help="publish the shards of redistributable corpora as a Hub dataset repository with a card")
    if not argv:
        parser.print_help()
        return 2
    parser.parse_args(argv[:1])  # --help exits here; anything else is an invalid choice (a UserError)
    return 2


for _command in (
    Command("classify", "label audio files with a trained classifier (CSV or JSON Lines)", classify_arguments, run_classify),
    Command("embed", "pooled embeddings of any layer of an encoder (.npy or Parquet)", embed_arguments, run_embed),
    Command("detect", "find vocalizations in a long recording: sliding windows, segments, a timeline", detect_arguments, run_detect),
    Command("card", "(re)write a model folder's card (README.md)", card_arguments, run_card),
    Command("push", "upload a model folder to the Hugging Face Hub", push_arguments, run_push),
    Command("stats", "a corpus's Table II row, per-class counts and speakers (voc2vec stats NAME --data_dir DIR)", delegate=run_stats),
    Command("mixture", "the Voc125 pretraining mixture: prepare, stats, push", delegate=run_mixture),
    Command("cv", "k-fold cross-validation (= python run_cv.py ...)", delegate=delegate_to_script("run_cv", "cv")),
    Command("finetune", "fine-tune on one split (= python run_classification.py ...)", delegate=delegate_to_script("run_classification", "finetune")),
    Command("pretrain", "self-supervised pretraining (= python run_pretraining.py ...)", delegate=delegate_to_script("run_pretraining", "pretrain")),
    Command("curves", "plot a pretraining run's metrics.jsonl", curves_arguments, run_curves),
    Command("tsne", "t-SNE (or UMAP) of pooled embeddings, one panel per model, coloured by class (the paper's Figure 1)",
            delegate=run_tsne),
):
    register(_command)


# ---------------------------------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------------------------------


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="voc2vec", description=__doc__.split("\n\n")[0],
                            epilog="`voc2vec COMMAND --help` describes each command.")
    parser.add_argument("--version", action="version", version=f"voc2vec {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    for command in COMMANDS.values():
        sub = commands.add_parser(command.name, help=command.help, description=command.description or command.help)
        if command.add_arguments is not None:
            resolve(command.add_arguments)(sub)
    return parser


@exit_on_user_error
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(format="%(message)s", level=logging.WARNING)
    logging.getLogger("voc2vec").setLevel(logging.INFO)  # upload plans and what was left out
    if argv and argv[0] in COMMANDS and COMMANDS[argv[0]].delegate is not None:
        result = resolve(COMMANDS[argv[0]].delegate)(argv[1:])
        return int(result) if isinstance(result, int) else 0
    parser = build_parser()
    if not argv:
        parser.print_help()
        return 2
    args = parser.parse_args(argv)
    result = resolve(COMMANDS[args.command].run)(args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
