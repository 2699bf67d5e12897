"""The shape every corpus loader in `data/` shares.

A corpus file defines one `VocalizationBuilder` subclass and says only what is particular to that corpus:
where its root lies inside the user's `data_dir` (`find_root`), which audio files belong to which split
(`split_files`), and how one file's name or metadata becomes its fields (`parse`). The base class does the
rest the same way for every corpus: it checks the folder, probes every file (`voc2vec.audio.audio_info`: the
header, and the samples of floating-point files, which alone can hold NaN/Inf), skips and reports unreadable
files (corrupt, empty, unsupported, no permission, broken or looping symbolic links) and unknown label codes,
and emits the common columns

    path (str)  label (ClassLabel, or the corpus's float targets)  speaker (str, "" when none)
    duration (float seconds)  sampling_rate (int, the file's own rate)

plus whatever else the corpus encodes (intensity, gender, age, ...), declared in `extra_features`.

datasets 5 no longer runs loading scripts, so `voc2vec.corpora.load_corpus` imports the file and drives
`download_and_prepare()` / `as_dataset()` itself; users still get datasets' Arrow cache and fingerprints.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import textwrap
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import datasets

from voc2vec.audio import AudioDecodeError, audio_info
from voc2vec.errors import UserError

logger = logging.getLogger(__name__)

# libsndfile reads these; anything else in a corpus folder (csv, txt, images, macOS '._' files) is ignored.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".aif", ".aiff", ".caf")
# Containers some corpora mix in that libsndfile cannot read: reported as skipped, never ignored silently.
UNREADABLE_AUDIO_EXTENSIONS = (".3gp", ".m4a", ".mp4", ".webm", ".aac", ".amr", ".wma")


class CorpusLayoutError(UserError, FileNotFoundError):
    """`data_dir` is missing, empty, or holds something other than the corpus asked for.

    A `UserError` (`what (where). Fix: how`, exit code 2 at entry points, a `ValueError`), and still the
    `FileNotFoundError` it always was, so `except FileNotFoundError` sites keep catching it.
    """

    def __new__(cls, *args, **kwargs):
        return FileNotFoundError.__new__(cls)  # OSError.__new__ would read (what, where, fix) as (errno, strerror, ...)

    def __str__(self) -> str:
        return self.message()  # OSError's own __str__ would print "[Errno None] ..."

    def __reduce__(self):
        return type(self), (self.what, self.where, self.fix)


class SkipFile(Exception):
    """Raised by `parse` for a file that belongs to no class (e.g. an unknown label code)."""


@dataclass
class SkippedFile:
    path: str
    reason: str


@dataclass
class CorpusReport:
    """What preparation kept and what it skipped, file by file: printed, returned, and saved beside the cache.

    Skipped paths are stored relative to `root`, the corpus folder recorded once (the folder splits.csv's paths are
    relative to), so a saved report can be shared and moved; a path outside it stays absolute. Printed, each path is
    whole again, so the user can open the file at once.
    """

    corpus: str
    config: str
    kept: int = 0
    skipped: list[SkippedFile] = field(default_factory=list)
    root: str | None = None

    def skip(self, path: str | os.PathLike, reason: str) -> None:
        self.skipped.append(SkippedFile(self.relative(path), reason))

    def relative(self, path: str | os.PathLike) -> str:
        path = os.fspath(path)
        if self.root and os.path.isabs(path):
            relative = os.path.relpath(path, self.root)
            if not relative.startswith(".."):
                return Path(relative).as_posix()
        return path

    def __str__(self) -> str:
        lines = [f"{self.corpus} ({self.config}): {self.kept} clips kept, {len(self.skipped)} skipped"]
        lines += [f"  skipped {os.path.join(self.root or '', item.path)}: {item.reason}" for item in self.skipped]
        return "\n".join(lines)

    def save(self, path: str | os.PathLike) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "CorpusReport":
        data = json.loads(Path(path).read_text())
        return cls(data["corpus"], data["config"], data["kept"], [SkippedFile(**item) for item in data["skipped"]], data.get("root"))


@dataclass
class VocalizationConfig(datasets.BuilderConfig):
    """A corpus configuration. `class_names` None means the corpus has regression targets instead
    (`target_columns`), or a label set discovered from the data (the generic folder/csv loaders)."""

    class_names: list[str] | None = None
    target_columns: list[str] | None = None


def find_audio_files(root: Path) -> list[Path]:
    """Every audio file below `root`, sorted, case-insensitive extensions, macOS resource forks skipped.

    A symbolic link with an audio name that leads nowhere (broken, or a loop) is listed too, so that the probe
    reports it instead of it vanishing silently. Links to folders are not followed (a link to a parent folder
    would make the listing endless).
    """
    extensions = AUDIO_EXTENSIONS + UNREADABLE_AUDIO_EXTENSIONS
    return sorted(
        path
        for path in root.rglob("*")
        if path.suffix.lower() in extensions and not path.name.startswith("._") and (path.is_file() or _dead_link(path))
    )


def _dead_link(path: Path) -> bool:
    """A symbolic link whose target cannot be reached (missing, or a loop of links)."""
    return path.is_symlink() and not path.exists()


class VocalizationBuilder(datasets.GeneratorBasedBuilder):
    """Base class of every corpus loader. Subclasses set the class attributes and implement `parse`."""

    BUILDER_CONFIG_CLASS = VocalizationConfig
    #: Shown whenever data_dir does not look like the corpus: say where to download it and what it holds.
    EXPECTED_LAYOUT: str = ""
    #: The corpus has no files to point at (the synthetic demo); data_dir is then optional.
    REQUIRES_DATA_DIR: bool = True
    DESCRIPTION: str = ""
    HOMEPAGE: str = ""
    LICENSE: str = ""
    CITATION: str = ""

    # ---- what a corpus file implements -------------------------------------------------------------

    def extra_features(self) -> dict[str, datasets.features.FeatureType]:
        """Columns beyond the common ones (all values `parse` returns must be declared here)."""
        return {}

    def find_root(self, data_dir: Path) -> Path:
        """The corpus root inside the user's data_dir; raise `self.layout_error(...)` when it is not there."""
        return data_dir

    def split_files(self, root: Path) -> dict[str, list[Path]]:
        """Audio files per split name. Default: one 'train' split with every audio file below the root."""
        return {"train": find_audio_files(root)}

    def parse(self, path: Path, split: str) -> dict:
        """The example's fields from its file name (label, speaker, extras); raise SkipFile for unknown codes.
        `self.root` is the folder `find_root` returned, for loaders that read labels from folders below it."""
        raise NotImplementedError(f"{type(self).__name__} must implement parse(path, split)")

    @staticmethod
    def holds_corpus(folder: Path) -> bool:
        """Whether `folder` is this corpus's root as its owners distribute it, judged by what sets it apart from
        every other corpus (its class folders, a named subfolder, a metadata file). Loaders of corpora whose
        layout is unconfirmed (nnime) cannot recognize their own and use the other loaders' answers instead
        (`refuse_other_corpora`). False for the generic loaders, which accept any corpus."""
        return False

    def label_feature(self) -> datasets.features.FeatureType | None:
        """The `label` column: a ClassLabel of the config's class names (None: no `label` column)."""
        names = self.config.class_names
        return datasets.ClassLabel(names=list(names)) if names else None

    # ---- the common machinery ----------------------------------------------------------------------

    def layout_error(self, problem: str, where: str | None = None) -> CorpusLayoutError:
        """The corpus is not where the user pointed: the problem, the folder (or option), and the layout expected."""
        data_dir = self.config.data_dir
        layout = textwrap.dedent(self.EXPECTED_LAYOUT).strip()
        return CorpusLayoutError(
            f"{self.dataset_name}: {problem}",
            where=where or (f"data_dir {data_dir}" if data_dir else "data_dir"),
            fix=f"point data_dir at the corpus as its owners distribute it. Expected layout for '{self.dataset_name}' "
            f"(config '{self.config.name}'):\n{layout}",
        )

    def refuse_other_corpora(self, data_dir: Path) -> None:
        """For a corpus whose own layout is unconfirmed: refuse a data_dir at or below which another corpus's
        distinctive layout lies (see `holds_corpus`), instead of reading that corpus as this one."""
        from voc2vec.corpora import builder_class, corpus_names  # corpora imports this module

        for name in corpus_names():
            if name == self.dataset_name:
                continue
            other = builder_class(name)
            if other.holds_corpus is VocalizationBuilder.holds_corpus:
                continue
            found = find_corpus_root(data_dir, other.holds_corpus)
            if found is not None:
                raise self.layout_error(
                    f"'{data_dir}' holds another corpus, {name} (at '{found}'), not {self.dataset_name}; "
                    f"load it as '{name}'"
                )

    def _info(self) -> datasets.DatasetInfo:
        features = {"path": datasets.Value("string")}
        label = self.label_feature()
        if label is not None:
            features["label"] = label
        for column in self.config.target_columns or []:
            features[column] = datasets.Value("float32")
        features.update(speaker=datasets.Value("string"), duration=datasets.Value("float32"), sampling_rate=datasets.Value("int32"))
        features.update(self.extra_features())
        return datasets.DatasetInfo(
            description=self.DESCRIPTION,
            features=datasets.Features(features),
            homepage=self.HOMEPAGE,
            license=self.LICENSE,
            citation=self.CITATION,
        )

    def find_named_folder(self, data_dir: Path, name: str, note: str = "") -> Path:
        """For corpora rooted at a folder of a known name (`Audio/`, `full_set/`, `audio_16k/`, ...): data_dir
        itself when the user pointed at that folder, else the shallowest `name/` at or below data_dir."""
        if data_dir.name == name:
            return data_dir
        parent = find_corpus_root(data_dir, lambda folder: (folder / name).is_dir())
        if parent is None:
            raise self.layout_error(f"no '{name}/' folder at or below '{data_dir}'{note}.")
        return parent / name

    def checked_data_dir(self) -> Path:
        data_dir = self.config.data_dir
        if not data_dir:
            raise self.layout_error("no data_dir given; download the corpus and pass data_dir=<the unpacked folder>.")
        path = Path(data_dir).expanduser()
        if not path.is_dir():
            raise self.layout_error(f"data_dir '{path}' does not exist or is not a folder.")
        if not any(path.iterdir()):
            raise self.layout_error(f"data_dir '{path}' is empty.")
        return path

    def _split_generators(self, dl_manager):
        self.report = CorpusReport(corpus=self.dataset_name, config=self.config.name)
        root = self.find_root(self.checked_data_dir()) if self.REQUIRES_DATA_DIR else self.find_root(None)
        self.root = root  # parse may read a file's folders relative to it
        self.report.root = self.report_root(root)
        files_per_split = self.split_files(root)
        if not any(files_per_split.values()):
            raise self.layout_error(f"no audio files found under '{root}'.")
        return [
            datasets.SplitGenerator(name=split, gen_kwargs={"files": files, "split": split, "root": root})
            for split, files in files_per_split.items()
        ]

    def report_root(self, root: Path | None) -> str | None:
        """The folder the report's paths are relative to, the one result files use (`voc2vec.tasks.corpus_root`):
        the csv loader's audio_root, the user's data_dir (not the corpus root found inside it), the first CSV's
        folder, or the loader's own root (the generated demo)."""
        if getattr(self.config, "audio_root", None) and root is not None:
            return os.fspath(root)
        if self.config.data_dir:
            return os.fspath(Path(self.config.data_dir).expanduser().resolve())
        csv_files = [file for files in (self.config.data_files or {}).values() for file in files]
        if csv_files:
            return os.fspath(Path(csv_files[0]).expanduser().resolve().parent)
        return os.fspath(root) if root is not None else None

    def _generate_examples(self, files: Iterable[Path], split: str, root: Path) -> Iterator[tuple[str, dict]]:
        # One bad file is recorded and passed over: it never costs the files read before or after it.
        for path in files:
            try:
                fields = self.parse(Path(path), split)
                info = audio_info(path)
            except (SkipFile, AudioDecodeError) as problem:
                self.report.skip(path, problem.reason if isinstance(problem, AudioDecodeError) else str(problem))
                continue
            example = {"path": os.fspath(path), "speaker": "", "duration": info.duration, "sampling_rate": info.sampling_rate}
            example.update(fields)
            self.report.kept += 1
            yield os.fspath(path), example


def split_fields(stem: str, separator: str) -> list[str]:
    """A file name's fields, split on the separator with whitespace stripped (some names carry stray spaces)."""
    return [part.strip() for part in stem.split(separator)]


def find_corpus_root(data_dir: Path, is_root: Callable[[Path], bool], max_depth: int = 3) -> Path | None:
    """The shallowest folder at or below `data_dir` that `is_root` accepts, or None.

    Archives unpack with or without their wrapper folder (Kaggle mirrors often add one more), so loaders
    look a few levels down, breadth-first in sorted order; hidden folders and `__MACOSX` are never entered.
    """
    queue = deque([(Path(data_dir), 0)])
    while queue:
        folder, depth = queue.popleft()
        if is_root(folder):
            return folder
        if depth < max_depth:
            queue.extend((child, depth + 1) for child in subfolders(folder))
    return None


def subfolders(folder: Path) -> list[Path]:
    """The folders directly inside `folder`, sorted, without hidden ones and `__MACOSX`; none if it cannot be read."""
    try:
        return sorted(child for child in folder.iterdir() if child.is_dir() and not child.name.startswith((".", "__MACOSX")))
    except OSError:  # no permission: the folder is passed over like an empty one
        return []


def read_csv_table(path: str | os.PathLike) -> tuple[list[str], list[dict[str, str]]]:
    """A CSV file's column names and rows, with a UTF-8 BOM dropped and names and cells stripped of whitespace.

    UTF-8 is expected; a file that is not UTF-8 (a CSV saved by Excel on Windows) is read as cp1252 with a
    warning rather than failing on one accented cell. A binary file (audio passed as data_files) is an error.
    """
    raw = Path(path).read_bytes()
    if b"\0" in raw[:4096]:
        raise ValueError(f"'{path}' is not a CSV text file (it holds binary data): pass the CSV that lists the audio.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        logger.warning("'%s' is not UTF-8 (%s): read as cp1252.", path, error)
        text = raw.decode("cp1252", errors="replace")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [name.strip() for name in next(reader, [])]
    # Short rows get "" for their missing cells, so every row has every column of the header.
    rows = [
        {name: row[index].strip() if index < len(row) else "" for index, name in enumerate(header)}
        for row in reader
        if any(cell.strip() for cell in row)
    ]
    return header, rows
