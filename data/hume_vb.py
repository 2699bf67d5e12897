"""HUME-VB (the A-VB 2022 / ExVo 2022 vocal-burst data): 59,201 vocal bursts from 1,702 speakers, 4 countries.

Download: given by Hume AI on request (https://www.competitions.hume.ai/avb2022); license: Hume AI's
end-user license agreement for research use (not redistributable).

Configs, one per A-VB task; every config carries every target, `target_columns` names the task's:
- `high`    (default) the 10 emotion intensities in [0, 1]: Awe, Excitement, ..., Surprise
- `two`     Valence and Arousal
- `culture` the 40 `<country>_<emotion>` columns (China, United States, South Africa, Venezuela)
- `type`    `label` = the 8-class `Voc_Type` (Gasp, Laugh, Cry, Scream, Grunt, Groan, Pant, Other)

Quirks handled here:
- Splits are the official ones from the `Split` column: Train -> `train`, Val -> `validation`, Test -> `test`.
  Test labels are withheld, so test rows have NaN in every float target, `label` -1 (no label) in `type`,
  and `voc_type` "". Train/Val rows missing a value get the same NaN / -1.
- `File_ID` is bracketed (`[10119]` -> `audio/wav/10119.wav`). Audio is indexed recursively below `audio/` by
  file stem, so `audio/<id>.wav` also works; a listed id with no audio is reported as skipped, audio that no
  CSV lists is ignored.
- The label CSVs (`high_info`, `two_info`, `culture_info`, `type_info`, `data_info`) are merged by File_ID and
  columns are selected by name (case-insensitive), never by position: column order differs between copies.
  The config's own target columns must exist; the others are NaN where their CSV is absent (with a warning).
- Speaker: `Subject_ID` from the CSVs when present (ExVo's data_info has it; A-VB's is unconfirmed); otherwise
  speaker is "" and a warning says that folds cannot be speaker-independent. `Country` is kept as `country`.
"""

import logging
import math
from pathlib import Path

import datasets

from voc2vec.builder import SkipFile, VocalizationBuilder, VocalizationConfig, find_audio_files, find_corpus_root, read_csv_table

logger = logging.getLogger(__name__)

EMOTIONS = ["Awe", "Excitement", "Amusement", "Awkwardness", "Fear", "Horror", "Distress", "Triumph", "Sadness", "Surprise"]
DIMENSIONS = ["Valence", "Arousal"]
COUNTRIES = ["China", "United States", "South Africa", "Venezuela"]
CULTURE = [f"{country}_{emotion}" for country in COUNTRIES for emotion in EMOTIONS]
VOC_TYPES = ["Gasp", "Laugh", "Cry", "Scream", "Grunt", "Groan", "Pant", "Other"]
ALL_TARGETS = EMOTIONS + DIMENSIONS + CULTURE
SPLITS = {"train": "train", "val": "validation", "validation": "validation", "test": "test"}
SPEAKER_COLUMNS = ["Subject_ID", "Speaker_ID", "Speaker"]
LABEL_FILES = ["data_info.csv", "high_info.csv", "two_info.csv", "culture_info.csv", "type_info.csv"]


class HumeVb(VocalizationBuilder):
    BUILDER_CONFIGS = [
        VocalizationConfig(name="high", target_columns=EMOTIONS, description="A-VB High: 10 emotion intensities"),
        VocalizationConfig(name="two", target_columns=DIMENSIONS, description="A-VB Two: valence and arousal"),
        VocalizationConfig(name="culture", target_columns=CULTURE, description="A-VB Culture: 10 emotions x 4 countries"),
        VocalizationConfig(name="type", class_names=VOC_TYPES, description="A-VB Type: 8 vocal burst types"),
    ]
    DEFAULT_CONFIG_NAME = "high"
    DESCRIPTION = "HUME-VB vocal bursts as released for the ACII 2022 A-VB competition (emotion, culture and type tasks)."
    HOMEPAGE = "https://www.competitions.hume.ai/avb2022"
    LICENSE = "Hume AI research EULA (on request; not redistributable)"
    EXPECTED_LAYOUT = """
    <data_dir>/                      the A-VB release from Hume AI
      audio/wav/<id>.wav
      labels/data_info.csv           File_ID ([10119]), Split (Train/Val/Test), Country (, Subject_ID)
      labels/high_info.csv           File_ID, the 10 emotions
      labels/two_info.csv            File_ID, Valence, Arousal
      labels/culture_info.csv        File_ID, the 40 <country>_<emotion> columns
      labels/type_info.csv           File_ID, Voc_Type
    """

    def extra_features(self):
        floats = {column: datasets.Value("float32") for column in ALL_TARGETS if column not in (self.config.target_columns or [])}
        strings = {name: datasets.Value("string") for name in ("file_id", "voc_type", "country")}
        return {**floats, **strings}

    @staticmethod
    def holds_corpus(folder: Path) -> bool:
        return (folder / "labels" / "data_info.csv").is_file() and (folder / "audio").is_dir()

    def find_root(self, data_dir: Path) -> Path:
        root = find_corpus_root(data_dir, self.holds_corpus)
        if root is None:
            raise self.layout_error(f"no folder at or below '{data_dir}' holds labels/data_info.csv and audio/.")
        return root

    def split_files(self, root: Path) -> dict[str, list[Path]]:
        rows = self.merged_rows(root / "labels")
        audio = {path.stem: path for path in find_audio_files(root / "audio")}
        self.examples, files = {}, {}
        for file_id, row in rows.items():
            split = SPLITS.get(row.get("split", "").lower())
            path = audio.get(file_id, root / "audio" / "wav" / f"{file_id}.wav")  # a missing file is reported by the base class
            if split is None:
                self.report.skip(path, f"Split '{row.get('split', '')}' is not Train, Val or Test")
                continue
            self.examples[path] = row
            files.setdefault(split, []).append(path)
        return files

    def merged_rows(self, labels: Path) -> dict[str, dict[str, str]]:
        """Every labels CSV merged by File_ID, column names lower-cased (selection by name, any order)."""
        rows: dict[str, dict[str, str]] = {}
        columns: set[str] = set()
        for csv_path in [labels / name for name in LABEL_FILES if (labels / name).is_file()]:
            header, table = read_csv_table(csv_path)
            if "file_id" not in (name.lower() for name in header):
                raise self.layout_error(f"'{csv_path}' has no File_ID column; its columns are {header}.")
            columns.update(name.lower() for name in header)
            for row in table:
                row = {name.lower(): value for name, value in row.items()}
                rows.setdefault(row["file_id"].strip("[]").strip(), {}).update(row)
        needed = self.config.target_columns or (["Voc_Type"] if self.config.class_names else [])
        missing = [name for name in needed + ["Split"] if name.lower() not in columns]
        if missing:
            raise self.layout_error(f"the CSVs in '{labels}' lack the columns {missing}; they have {sorted(columns)}.")
        absent = [name for name in ALL_TARGETS + ["Voc_Type"] if name.lower() not in columns]
        if absent:
            shown = ", ".join(absent[:6]) + (f" and {len(absent) - 6} more" if len(absent) > 6 else "")
            logger.warning("HUME-VB: no column for %s in '%s': those targets are NaN.", shown, labels)
        self.speaker_column = next((name.lower() for name in SPEAKER_COLUMNS if name.lower() in columns), None)
        if self.speaker_column is None:
            logger.warning("HUME-VB: no Subject_ID column in '%s': speaker is empty, folds cannot be speaker-independent.", labels)
        return rows

    def parse(self, path: Path, split: str) -> dict:
        row = self.examples[path]
        voc_type = row.get("voc_type", "")
        voc_type = next((name for name in VOC_TYPES if name.lower() == voc_type.lower()), voc_type)  # 'laugh' -> 'Laugh'
        if self.config.class_names and voc_type and voc_type not in VOC_TYPES:
            raise SkipFile(f"Voc_Type '{voc_type}' is not one of {VOC_TYPES}")
        fields = {column: to_float(row.get(column.lower(), "")) for column in ALL_TARGETS}
        if self.config.class_names:
            fields["label"] = voc_type if voc_type else -1
        return {
            **fields,
            "speaker": row.get(self.speaker_column, "") if self.speaker_column else "",
            "file_id": row["file_id"].strip("[]").strip(),
            "voc_type": voc_type,
            "country": row.get("country", ""),
        }


def to_float(cell: str) -> float:
    """A target cell as a float; empty (withheld test labels) or unparsable cells are NaN."""
    try:
        return float(cell)
    except ValueError:
        return math.nan
