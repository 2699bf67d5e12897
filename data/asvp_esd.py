"""ASVP-ESD: 12,625 emotional non-speech and speech sounds in 13 classes, and a 7-class babies subset (16 kHz).

Download: Zenodo record 7132783, `ASVP-ESD-Update.zip` (also on Kaggle). License: CC BY 4.0 (as stated by
mirrors). Configs: `default` = the 13 emotion classes of `Audio/` (12,625 files); `babies` = the 1,339 baby
vocalizations of `Bonus/` with the 7 codes found there (01, 02, 03, 04, 06, 11, 17). The renamed re-upload on
the Hub (underscores, reordered fields) is not this layout and is refused by `find_root`.

Quirks handled here:
- The file name is 8 to 12 hyphen-separated numeric fields; five Bonus names have a space before the last
  field (`03-02-04-01-52-150-04-01-00-14 -03.wav`), so fields are split on '-' and stripped, never sliced.
- The label is field 2 (emotion), mapped through the corpus's emotion table; a code outside the config's
  table is skipped and reported. Code 17 appears once in Bonus and is in no official table: it is its own
  class, named by its code.
- The speaker is field 5 (actor), as an integer without leading zeros, even where it disagrees with the
  folder (187 files) and for the 171 files in a folder named just `actor_`; the folder is kept as
  `actor_folder`. Bonus has only 3 pseudo-actors (collection batches 50, 150, 200): speaker-independent
  folds are not possible on `babies`.
- An optional trailing 77 (noisy) or 66 (mixed voices) after the language field is read as `condition`
  and removed before the remaining optional fields are assigned: 8 language, 9 sub-code, and whatever
  follows (`further_codes`, e.g. the `-03` of the spaced Bonus names; their meaning is undocumented).
- Files are globbed recursively below `Audio/` or `Bonus/`, so the actor folders' names do not matter.
"""

from pathlib import Path

import datasets

from voc2vec.builder import SkipFile, VocalizationBuilder, VocalizationConfig, split_fields

EMOTIONS = {
    "01": "boredom/sigh",
    "02": "neutral/calm",
    "03": "happy/laugh/gaggle",
    "04": "sad/cry",
    "05": "angry/grunt/frustration",
    "06": "fearful/scream/panic",
    "07": "disgust/dislike/contempt",
    "08": "surprised/gasp/amazed",
    "09": "excited",
    "10": "pleasure",
    "11": "pain/groan",
    "12": "disappointment/disapproval",
    "13": "breath",
    "17": "17",  # only in Bonus/ (one file), outside the official table
}
AUDIO_CODES = [f"{code:02d}" for code in range(1, 14)]
BABIES_CODES = ["01", "02", "03", "04", "06", "11", "17"]
CHANNELS = {"01": "speech", "02": "non-speech"}
AGES = {"01": ">65", "02": "20-64", "03": "<20", "04": "baby"}  # dirty values exist: kept raw when unknown
CONDITIONS = {"77": "noisy", "66": "mixed voices"}
SUBFOLDER = {"default": "Audio", "babies": "Bonus"}


class AsvpEsd(VocalizationBuilder):
    BUILDER_CONFIGS = [
        VocalizationConfig(name="default", class_names=[EMOTIONS[code] for code in AUDIO_CODES],
                           description="13 emotion classes of Audio/ (12,625 clips)"),
        VocalizationConfig(name="babies", class_names=[EMOTIONS[code] for code in BABIES_CODES],
                           description="7 classes of the baby vocalizations in Bonus/ (1,339 clips)"),
    ]
    DEFAULT_CONFIG_NAME = "default"
    DESCRIPTION = "ASVP-ESD: Audio, Speech and Vision Processing Lab Emotional Sound Database (non-speech emotional sounds)."
    HOMEPAGE = "https://zenodo.org/records/7132783"
    LICENSE = "CC BY 4.0"
    EXPECTED_LAYOUT = """
    <data_dir>/                      the unpacked ASVP-ESD-Update.zip (or the ASVP-ESD-Update folder itself)
      ASVP-ESD-Update/
        Audio/actor_<N>/*.wav        12,625 files, config 'default' (13 classes)
        Bonus/actor_{50,150,200}/*.wav  1,339 files, config 'babies' (7 classes)
    File names: hyphen-separated numeric fields, e.g. 03-01-09-01-06-36-02-02-01-39.wav (field 2 = emotion,
    field 5 = actor).
    """

    def extra_features(self):
        return {
            "vocal_channel": datasets.Value("string"),
            "intensity": datasets.Value("string"),
            "statement": datasets.Value("string"),
            "age": datasets.Value("string"),
            "source": datasets.Value("string"),
            "language": datasets.Value("string"),
            "subcode": datasets.Value("string"),
            "further_codes": datasets.Value("string"),
            "condition": datasets.Value("string"),
            "actor_folder": datasets.Value("string"),
        }

    @staticmethod
    def holds_corpus(folder: Path) -> bool:
        # Audio/ or Bonus/ alone are common names; with actor_<N> folders inside they are ASVP-ESD's.
        return any(any((folder / name).glob("actor_*")) for name in SUBFOLDER.values() if (folder / name).is_dir())

    def find_root(self, data_dir: Path) -> Path:
        return self.find_named_folder(data_dir, SUBFOLDER[self.config.name])

    def parse(self, path: Path, split: str) -> dict:
        fields = split_fields(path.stem, "-")
        if not 8 <= len(fields) <= 12 or not all(field.isdigit() for field in fields):
            raise SkipFile(f"file name has {len(fields)} '-'-separated fields, expected 8 to 12 numeric fields")
        condition = ""
        if len(fields) > 8 and fields[-1] in CONDITIONS:
            condition = CONDITIONS[fields.pop()]
        _modality, channel, emotion, intensity, statement, actor, age, source, *optional = fields
        label = EMOTIONS.get(emotion)
        if label not in self.config.class_names:
            codes = AUDIO_CODES if self.config.name == "default" else BABIES_CODES
            raise SkipFile(f"emotion code '{emotion}' (field 2) is not one of config '{self.config.name}''s codes {codes}")
        language, subcode, *further_codes = optional + ["", ""]
        return {
            "label": label,
            "speaker": str(int(actor)),
            "vocal_channel": CHANNELS.get(channel, channel),
            "intensity": intensity,
            "statement": statement,
            "age": AGES.get(age, age),
            "source": source,
            "language": language,
            "subcode": subcode,
            "further_codes": "-".join(code for code in further_codes if code),
            "condition": condition,
            "actor_folder": path.parent.name,
        }
