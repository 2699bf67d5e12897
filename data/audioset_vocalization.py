"""AudioSet, human non-speech vocalization subset: 10 s YouTube clips whose labels hit a vocalization class.

Download: the segment lists `balanced_train_segments.csv`, `unbalanced_train_segments.csv` and
`eval_segments.csv` from https://research.google.com/audioset/download.html; the audio itself must be fetched
from YouTube by the user (or taken from a mirror). License: the labels are CC BY 4.0; the audio belongs to
the YouTube uploaders.

Quirks handled here:
- Segment CSVs have three '#' header lines, then `YTID, start_seconds, end_seconds, "positive_labels"` with
  spaces after the commas and the labels a quoted, comma-separated list of ontology MIDs. Every CSV whose
  name ends in `segments.csv` anywhere below data_dir is read.
- Which classes the paper kept is unconfirmed: `VOCALIZATION_CLASSES` below is the documented default
  (the ontology's non-speech human vocalizations: laughter, crying, baby cry, whimper, wail, sigh, groan,
  grunt, yawn, shouting, screaming, and the respiratory sounds; speech, whispering, singing, humming,
  whistling, hiccup and burping are left out). Pass `classes=[...]` (MIDs or names from this table, or a
  {MID: name} dict for other ontology classes) to `load_corpus` to choose others.
- Clips whose labels hit none of the classes are not part of this corpus and are left out before probing
  (a full AudioSet download would otherwise flood the skip report); a clip whose YouTube id is in no CSV is
  skipped and reported.
- Downloaders name clips differently: `<YTID>.wav`, `<YTID>_<start>.wav`, `Y<YTID>.wav` (the `Y` keeps names
  from starting with '-') and `<YTID>_<start>_<end>.wav`, with times in seconds (`30`, `30.000`) or
  milliseconds (`30000`). YouTube ids are exactly 11 characters of [A-Za-z0-9_-] and may themselves contain
  '_' and '-' or start with 'Y', so the name is never split on '_': the id is the first 11 characters (or
  the 11 after a leading 'Y'), accepted only if the rest of the name is empty or '_<number>' once or twice.
  When both readings are listed ids, the one whose start time matches the CSV wins.
- Speaker = the YouTube id (one 10 s segment per video, so the grouping key keeps a video in one fold);
  `labels` lists the names of the vocalization classes the clip carries.
"""

import re
from dataclasses import dataclass
from pathlib import Path

import csv

import datasets

from voc2vec.builder import SkipFile, VocalizationBuilder, VocalizationConfig, find_audio_files

# AudioSet ontology MID -> display name: the default vocalization classes (edit, or pass classes=...).
VOCALIZATION_CLASSES = {
    "/m/01j3sz": "Laughter",
    "/t/dd00001": "Baby laughter",
    "/m/07r660_": "Giggle",
    "/m/07s04w4": "Snicker",
    "/m/07sq110": "Belly laugh",
    "/m/07rgt08": "Chuckle, chortle",
    "/m/0463cq4": "Crying, sobbing",
    "/t/dd00002": "Baby cry, infant cry",
    "/m/07qz6j3": "Whimper",
    "/m/07qw_06": "Wail, moan",
    "/m/07plz5l": "Sigh",
    "/m/07s2xch": "Groan",
    "/m/07r4k75": "Grunt",
    "/m/01j423": "Yawn",
    "/m/07p6fty": "Shout",
    "/m/07q4ntr": "Bellow",
    "/m/07rwj3x": "Whoop",
    "/m/07sr1lc": "Yell",
    "/m/04gy_2": "Battle cry",
    "/t/dd00135": "Children shouting",
    "/m/03qc9zr": "Screaming",
    "/m/0lyf6": "Breathing",
    "/m/07mzm6": "Wheeze",
    "/m/01d3sd": "Snoring",
    "/m/07s0dtb": "Gasp",
    "/m/07pyy8b": "Pant",
    "/m/07q0yl5": "Snort",
    "/m/01b_21": "Cough",
    "/m/0dl9sf8": "Throat clearing",
    "/m/01hsr_": "Sneeze",
    "/m/07ppn3j": "Sniff",
}
SEGMENT_CSV_SUFFIX = "segments.csv"
OFFICIAL_SEGMENT_CSVS = ("balanced_train_segments.csv", "unbalanced_train_segments.csv", "eval_segments.csv")
YTID_LENGTH = 11
YTID = re.compile(r"[A-Za-z0-9_-]{11}")
TIME_SUFFIX = re.compile(r"(?:_(\d+(?:\.\d+)?)){0,2}")


@dataclass(frozen=True)
class Segment:
    start_seconds: float
    end_seconds: float
    mids: tuple[str, ...]


@dataclass
class AudioSetConfig(VocalizationConfig):
    """`classes`: the vocalization classes to keep (MIDs or names of VOCALIZATION_CLASSES, or {MID: name});
    None keeps VOCALIZATION_CLASSES."""

    classes: list[str] | dict[str, str] | None = None


def resolve_classes(classes: list[str] | dict[str, str] | None) -> dict[str, str]:
    """The {MID: name} table to filter by; names and MIDs of VOCALIZATION_CLASSES are both accepted."""
    if classes is None:
        return dict(VOCALIZATION_CLASSES)
    if isinstance(classes, dict):
        return dict(classes)
    by_name = {name.lower(): mid for mid, name in VOCALIZATION_CLASSES.items()}
    resolved = {}
    for item in classes:
        if item.startswith(("/m/", "/t/", "/g/")):
            resolved[item] = VOCALIZATION_CLASSES.get(item, item)
        elif item.lower() in by_name:
            resolved[by_name[item.lower()]] = VOCALIZATION_CLASSES[by_name[item.lower()]]
        else:
            raise ValueError(f"AudioSet class '{item}' is neither an ontology MID nor one of {sorted(VOCALIZATION_CLASSES.values())}")
    return resolved


def read_segments(csv_path: Path) -> dict[str, Segment]:
    """YTID -> segment of one official segment CSV ('#' header lines, quoted label list)."""
    segments = {}
    with open(csv_path, newline="", encoding="utf-8") as handle:
        for row in csv.reader((line for line in handle if not line.startswith("#")), skipinitialspace=True):
            if len(row) >= 4:
                segments[row[0].strip()] = Segment(float(row[1]), float(row[2]), tuple(mid.strip() for mid in row[3].split(",")))
    return segments


def name_readings(stem: str) -> list[tuple[str, float | None]]:
    """Every (YTID, start in seconds or None) a clip name can be read as."""
    readings = []
    for prefix in ("", "Y") if stem.startswith("Y") else ("",):
        ytid, rest = stem[len(prefix) : len(prefix) + YTID_LENGTH], stem[len(prefix) + YTID_LENGTH :]
        times = TIME_SUFFIX.fullmatch(rest)
        if YTID.fullmatch(ytid) and times:
            numbers = re.findall(r"_(\d+(?:\.\d+)?)", rest)
            readings.append((ytid, float(numbers[0]) if numbers else None))
    return readings


def start_matches(name_start: float | None, segment: Segment) -> bool:
    # Names give the start in seconds or in milliseconds.
    return name_start is not None and (abs(name_start - segment.start_seconds) < 0.5 or abs(name_start / 1000 - segment.start_seconds) < 0.5)


class AudioSetVocalization(VocalizationBuilder):
    BUILDER_CONFIG_CLASS = AudioSetConfig
    BUILDER_CONFIGS = [AudioSetConfig(name="default")]
    DEFAULT_CONFIG_NAME = "default"
    DESCRIPTION = "AudioSet clips labelled with a human non-speech vocalization class of the ontology."
    HOMEPAGE = "https://research.google.com/audioset/"
    LICENSE = "labels CC BY 4.0; audio: the YouTube uploaders'"
    EXPECTED_LAYOUT = """
    <data_dir>/
      balanced_train_segments.csv  unbalanced_train_segments.csv  eval_segments.csv   (any of them, any depth)
      **/<YTID>.wav | <YTID>_<start>.wav | Y<YTID>.wav | <YTID>_<start>_<end>.wav       (flac, ogg, ... too)
    """

    def extra_features(self):
        return {
            "labels": datasets.Sequence(datasets.Value("string")),
            "positive_labels": datasets.Value("string"),
            "start_seconds": datasets.Value("float32"),
        }

    @staticmethod
    def holds_corpus(folder: Path) -> bool:
        return any((folder / name).is_file() for name in OFFICIAL_SEGMENT_CSVS)

    def find_root(self, data_dir: Path) -> Path:
        self.csv_paths = sorted(path for path in data_dir.rglob(f"*{SEGMENT_CSV_SUFFIX}") if not path.name.startswith("._"))
        if not self.csv_paths:
            raise self.layout_error(f"no AudioSet segment CSV (*{SEGMENT_CSV_SUFFIX}) at or below '{data_dir}'.")
        return data_dir

    def split_files(self, root: Path) -> dict[str, list[Path]]:
        self.classes = resolve_classes(self.config.classes)
        self.segments = {}
        for csv_path in self.csv_paths:
            self.segments.update(read_segments(csv_path))
        self.matches = {}  # path -> (YTID, segment), read by parse
        files = []
        for path in find_audio_files(root):
            match = self.match(path)
            if match is None or any(mid in self.classes for mid in match[1].mids):
                files.append(path)  # unmatched names go on to parse, which reports them
                if match is not None:
                    self.matches[path] = match
        return {"train": files}

    def match(self, path: Path) -> tuple[str, Segment] | None:
        listed = [(ytid, start) for ytid, start in name_readings(path.stem) if ytid in self.segments]
        if len(listed) > 1:
            listed = [(ytid, start) for ytid, start in listed if start_matches(start, self.segments[ytid])] or listed[:1]
        return (listed[0][0], self.segments[listed[0][0]]) if listed else None

    def parse(self, path: Path, split: str) -> dict:
        if path not in self.matches:
            raise SkipFile("no YouTube id of the segment CSVs found in the file name")
        ytid, segment = self.matches[path]
        return {
            "speaker": ytid,
            "labels": [self.classes[mid] for mid in segment.mids if mid in self.classes],
            "positive_labels": ",".join(segment.mids),
            "start_seconds": segment.start_seconds,
        }
