"""Load any corpus of `data/` by name: `load_corpus("donateacry", data_dir=...)`.

datasets 5 dropped `load_dataset("script.py")`, so this module imports `data/<name>.py`, instantiates its
builder and runs `download_and_prepare()` / `as_dataset()` in the normal datasets cache. The cache is keyed
by the builder code and by a fingerprint of the corpus folder (every file's relative path, size and
modification time), so an edited loader or a changed download is prepared again, and an unchanged one is
read back from Arrow at once. A read-only cache folder or a full disk is a one-line error that names the
folder, not a traceback.

Command line: `python -m voc2vec.corpora stats NAME --data_dir DIR [--config C]` prints the corpus's
Table II row (classes, hours, clips, mean duration), per-class counts and the number of speakers.
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import importlib.util
import inspect
import os
import sys
from collections import Counter
from pathlib import Path

import datasets

from voc2vec.builder import CorpusLayoutError, CorpusReport, VocalizationBuilder
from voc2vec.errors import (
    UserError,
    check_writable_dir,
    exit_on_user_error,
    os_error_to_user_error,
)
from voc2vec.resources import shipped_dir

# The loading scripts live beside the package in the repository, one file per corpus.
DATA_SCRIPTS_DIR = shipped_dir("data")  # data/ in a checkout, voc2vec/data/ once installed
REPORT_FILE = "voc2vec_report.json"


def corpus_names() -> list[str]:
    """Every corpus with a loading script in data/."""
    return sorted(path.stem for path in DATA_SCRIPTS_DIR.glob("*.py") if not path.stem.startswith("_"))


# Loading scripts already imported, by path, with the source they were imported from: a script is executed
# again only when it changed, so the classes other modules hold stay the ones in sys.modules.
_LOADED_SCRIPTS: dict[Path, tuple[bytes, type]] = {}


def builder_class(name: str) -> type[VocalizationBuilder]:
    """Import `data/<name>.py` (or a path to a loading script) and return its builder class."""
    script = Path(name) if name.endswith(".py") else DATA_SCRIPTS_DIR / f"{name}.py"
    if not script.is_file():
        raise UserError(f"unknown corpus '{name}': no loading script {script}", where="corpus name",
                        fix=f"use one of the known corpora: {', '.join(corpus_names())}")
    source = script.read_bytes()
    loaded = _LOADED_SCRIPTS.get(script.resolve())
    if loaded is not None and loaded[0] == source:
        return loaded[1]
    module_name = f"voc2vec_data_{script.stem}"
    spec = importlib.util.spec_from_file_location(module_name, script)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    builders = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, VocalizationBuilder) and obj.__module__ == module_name
    ]
    if len(builders) != 1:
        raise ValueError(f"{script} must define exactly one VocalizationBuilder subclass, found {len(builders)}.")
    _LOADED_SCRIPTS[script.resolve()] = (source, builders[0])
    return builders[0]


def folder_fingerprint(folder: str | os.PathLike | None, exclude: tuple[str | os.PathLike, ...] = ()) -> str:
    """Hash of every file's relative path, size and mtime below `folder`: cheap, and changes with the corpus.

    A file that cannot be reached (a broken symbolic link, a loop of links, no permission on the way) is hashed
    by its name and link target instead: preparation then reports it like any unreadable file, and fixing the
    link changes the fingerprint. Links to folders are not followed, as in `find_audio_files`. Folders in
    `exclude` are left out: a cache kept inside the corpus folder changes with every preparation, and would
    otherwise make every load prepare again.
    """
    digest = hashlib.sha256()
    excluded = {os.path.realpath(path) for path in exclude}
    if folder and os.path.isdir(folder):
        for directory, subdirs, files in os.walk(folder):
            subdirs[:] = sorted(name for name in subdirs if os.path.realpath(os.path.join(directory, name)) not in excluded)
            for file_name in sorted(files):
                path = os.path.join(directory, file_name)
                try:
                    stat = os.stat(path)
                    state = f"{stat.st_size}\0{stat.st_mtime_ns}"
                except OSError:
                    state = f"unreachable\0{_link_target(path)}"
                digest.update(f"{os.path.relpath(path, folder)}\0{state}\n".encode())
    return digest.hexdigest()[:16]


def _link_target(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


def _data_file_list(data_files) -> list:
    """`data_files` as given to a builder (one path, a list, or a {split: path or list} dict) as a flat list."""
    if data_files is None:
        return []
    if isinstance(data_files, (str, os.PathLike)):
        return [data_files]
    if isinstance(data_files, dict):
        return [file for files in data_files.values() for file in _data_file_list(files)]
    return list(data_files)


def _builder_fingerprint(cls: type, data_dir, data_files, audio_root=None, cache_root=None) -> str:
    # The loader's own code, the shared base class, and the corpus on disk (less the cache) all key the cache.
    digest = hashlib.sha256()
    for source in (inspect.getfile(cls), inspect.getfile(VocalizationBuilder)):
        digest.update(Path(source).read_bytes())
    exclude = (cache_root,) if cache_root else ()
    for folder in (data_dir, audio_root):  # audio_root: where the csv loader finds the files a CSV lists
        digest.update(folder_fingerprint(folder, exclude).encode())
    for file in _data_file_list(data_files):
        digest.update(folder_fingerprint(Path(file).parent, exclude).encode())
    return digest.hexdigest()[:16]


def load_corpus(
    name: str,
    data_dir: str | os.PathLike | None = None,
    config: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    return_report: bool = False,
    verbose: bool = True,
    **config_kwargs,
):
    """Prepare a corpus and return it as a `Dataset` (a `DatasetDict` when the corpus has official splits).

    `config_kwargs` go to the corpus's builder config (e.g. `speaker_regex=` for the `folder` loader,
    `data_files=`, `label_column=` for `csv`). Files that could not be read or carry unknown label codes
    are skipped and listed in a report, printed when `verbose`; `return_report=True` returns
    `(dataset, report)`.
    """
    cls = builder_class(name)
    data_dir = os.fspath(Path(data_dir).expanduser().resolve()) if data_dir else None
    # The cache must take the Arrow files: say so before any work, naming the folder and the setting.
    if cache_dir:
        cache_root = check_writable_dir(cache_dir, "cache_dir")
    else:
        cache_root = check_writable_dir(datasets.config.HF_DATASETS_CACHE, "HF_DATASETS_CACHE")
    builder = cls(
        dataset_name=cls.__module__.removeprefix("voc2vec_data_"),
        config_name=config,
        data_dir=data_dir,
        cache_dir=os.fspath(cache_dir) if cache_dir else None,
        hash=_builder_fingerprint(cls, data_dir, config_kwargs.get("data_files"), config_kwargs.get("audio_root"), cache_root),
        **config_kwargs,
    )
    report_path = Path(builder.cache_dir) / REPORT_FILE
    try:
        builder.download_and_prepare()
        if getattr(builder, "report", None) is not None:  # prepared just now rather than read from the cache
            builder.report.save(report_path)
    except UserError:
        raise
    except Exception as error:  # datasets wraps what goes wrong while writing in DatasetGenerationError
        converted = preparation_os_error(error, cache_root)
        if converted is None:
            raise
        raise converted from error
    report = CorpusReport.load(report_path) if report_path.exists() else CorpusReport(builder.dataset_name, builder.config.name)
    if verbose and report.skipped:
        print(report, file=sys.stderr)
    # A split whose files were all skipped has no data to read back: it is left out (the report says why).
    kept = [split for split, info in builder.info.splits.items() if info.num_examples]
    if not kept:
        raise CorpusLayoutError(
            f"{name}: none of the corpus's files could be used", where=f"data_dir {data_dir}" if data_dir else name,
            fix=f"replace or remove the files the report lists:\n{report}",
        )
    splits = datasets.DatasetDict({split: builder.as_dataset(split=split) for split in kept})
    dataset = splits["train"] if list(splits) == ["train"] else splits
    return (dataset, report) if return_report else dataset


def preparation_os_error(error: BaseException, cache_root: str | os.PathLike) -> UserError | None:
    """A `UserError` for the OS error behind a failed preparation (raised directly, or wrapped by datasets):
    a full disk or an unwritable folder in the cache names the cache folder; a corpus file the user may not read
    names that file. None for anything else (a bug: its traceback stays)."""
    chain, seen = [], error
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    os_error = next((item for item in chain if isinstance(item, OSError) and not isinstance(item, UserError)), None)
    if os_error is None:
        return None
    filename = os_error.filename
    outside_cache = bool(filename) and not Path(os.path.realpath(filename)).is_relative_to(os.path.realpath(cache_root))
    if outside_cache and os_error.errno in (errno.EACCES, errno.EPERM):
        return UserError("permission denied: cannot read it", where=filename,
                         fix="give read permission (chmod a+r) or run as a user who can read the corpus")
    if outside_cache and os_error.errno != errno.ENOSPC:
        return None
    return os_error_to_user_error(os_error, cache_root)


# ---- stats ------------------------------------------------------------------------------------------


def corpus_stats(dataset: datasets.Dataset) -> dict:
    """The corpus's Table II row plus per-class counts and speakers, from its prepared columns."""
    durations = dataset["duration"]
    hours = sum(durations) / 3600
    stats = {
        "clips": len(dataset),
        "hours": round(hours, 2),
        "mean_duration": round(sum(durations) / max(len(durations), 1), 2),
        "speakers": len({speaker for speaker in dataset["speaker"] if speaker}),
        "sampling_rates": dict(sorted(Counter(dataset["sampling_rate"]).items())),
    }
    label = dataset.features.get("label")
    if isinstance(label, datasets.ClassLabel):
        counts = Counter(dataset["label"])
        stats["classes"] = len(counts)
        stats["class_counts"] = {label.int2str(index): counts.get(index, 0) for index in range(label.num_classes)}
    return stats


def format_stats(name: str, stats: dict) -> str:
    lines = [
        "| corpus | #cls | hours | clips | avg s |",
        "|---|---|---|---|---|",
        f"| {name} | {stats.get('classes', '-')} | {stats['hours']:.2f} | {stats['clips']} | {stats['mean_duration']:.2f} |",
        "",
        f"speakers: {stats['speakers']}",
        "original sampling rates: " + ", ".join(f"{rate} Hz x {count}" for rate, count in stats["sampling_rates"].items()),
    ]
    if "class_counts" in stats:
        lines.append("per-class counts:")
        lines += [f"  {label}: {count}" for label, count in stats["class_counts"].items()]
    return "\n".join(lines)


@exit_on_user_error
def main(argv: list[str] | None = None, prog: str = "python -m voc2vec.corpora") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    stats_parser = commands.add_parser("stats", help="print a corpus's Table II row, per-class counts and speakers")
    commands.add_parser("list", help="list the corpora with a loading script")
    stats_parser.add_argument("name", help=f"corpus name: one of {', '.join(corpus_names())}")
    stats_parser.add_argument("--data_dir", help="the unpacked corpus folder")
    stats_parser.add_argument("--config", help="builder config, e.g. 'babies' for asvp_esd")
    stats_parser.add_argument("--cache_dir", help="datasets cache folder (default: the datasets cache)")
    args = parser.parse_args(argv)
    if args.command == "list":
        print("\n".join(corpus_names()))
        return 0
    try:
        dataset = load_corpus(args.name, data_dir=args.data_dir, config=args.config, cache_dir=args.cache_dir)
    except UserError:
        raise  # printed by exit_on_user_error
    except ValueError as error:  # a loader's refusal of its options (e.g. a speaker_regex without a group)
        parser.exit(2, f"error: {error}\n")
    splits = dataset.items() if isinstance(dataset, datasets.DatasetDict) else [(None, dataset)]
    for split, part in splits:
        title = f"{args.name}" + (f" ({args.config})" if args.config else "") + (f" [{split}]" if split else "")
        print(format_stats(title, corpus_stats(part)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
