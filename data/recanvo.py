"""ReCANVo: real-world non-verbal vocalizations of 8 minimally speaking individuals, labelled by caregivers.

Download: Zenodo record 5786860 (Johnson et al., 2023): a flat folder of wav files plus
`dataset_file_directory.csv`. License: as stated on the Zenodo record; check it.

Quirks handled here:
- The audio files sit in one flat folder; the authoritative metadata is `dataset_file_directory.csv` with
  header `Filename,Participant,Label` (7,077 rows). Names encode date, time and the clip's time span
  (e.g. `200126_2142_00-13-04.06--00-13-04.324.wav`): they are matched whole, never split.
- Speaker = `Participant`; label = `Label`, kept as a string (the caregiver's free-form category set is not
  a closed class list in the release). A file the CSV does not list is skipped and reported.
"""

from pathlib import Path

import datasets

from voc2vec.builder import SkipFile, VocalizationBuilder, VocalizationConfig, find_audio_files, find_corpus_root, read_csv_table

METADATA_CSV = "dataset_file_directory.csv"


class ReCANVo(VocalizationBuilder):
    BUILDER_CONFIGS = [VocalizationConfig(name="default")]
    DEFAULT_CONFIG_NAME = "default"
    DESCRIPTION = "ReCANVo: real-world communicative and affective non-verbal vocalizations of minimally speaking individuals."
    HOMEPAGE = "https://zenodo.org/records/5786860"
    LICENSE = "see Zenodo record 5786860"
    EXPECTED_LAYOUT = f"""
    <data_dir>/                      the unpacked Zenodo download
      {METADATA_CSV}     Filename,Participant,Label (7,077 rows)
      *.wav                          e.g. 200126_2142_00-13-04.06--00-13-04.324.wav (a subfolder is fine)
    """

    def label_feature(self):
        return datasets.Value("string")

    @staticmethod
    def holds_corpus(folder: Path) -> bool:
        return (folder / METADATA_CSV).is_file()

    def find_root(self, data_dir: Path) -> Path:
        root = find_corpus_root(data_dir, self.holds_corpus)
        if root is None:
            raise self.layout_error(f"no '{METADATA_CSV}' at or below '{data_dir}'.")
        return root

    def split_files(self, root: Path) -> dict[str, list[Path]]:
        self.rows = {row.get("Filename", ""): row for row in read_csv_table(root / METADATA_CSV)[1]}
        return {"train": find_audio_files(root)}

    def parse(self, path: Path, split: str) -> dict:
        row = self.rows.get(path.name)
        if row is None:
            raise SkipFile(f"not listed in {METADATA_CSV}")
        return {"label": row.get("Label", ""), "speaker": row.get("Participant", "")}
