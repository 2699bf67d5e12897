"""NNIME: the NTHU-NTUA Chinese Interactive Multimodal Emotion corpus, non-verbal vocal segments (5,596 in voc2vec).

Download: on request from the corpus's maintainers at National Tsing Hua University (BIIC lab); it comes
with a license agreement that governs use and redistribution.

Quirks handled here:
- The distributed layout is unconfirmed, so every audio file below data_dir is read (recursively, any
  format libsndfile reads; others are reported as skipped).
- The speaker id's location is unconfirmed too: the grouping key is the folder the file sits in, relative
  to data_dir (a session or speaker folder in the layouts seen so far); files directly in data_dir get ""
  and cannot be grouped. No label is read: the vocal-event annotations are not part of what voc2vec uses.
- With no confirmed layout of its own to recognize, the loader recognizes the others: a data_dir at or below
  which another corpus's distinctive layout lies (Donate A Cry's class folders, VocalSound's audio_16k/, the
  Voc125 corpora's folders and metadata files, ...: each loader's `holds_corpus`) is refused with the name of
  that corpus, rather than read as NNIME.
"""

from pathlib import Path

from voc2vec.builder import VocalizationBuilder, VocalizationConfig


class Nnime(VocalizationBuilder):
    BUILDER_CONFIGS = [VocalizationConfig(name="default")]
    DEFAULT_CONFIG_NAME = "default"
    DESCRIPTION = "NNIME: Mandarin dyadic interactions; the non-verbal vocal segments used for Voc125 pretraining."
    HOMEPAGE = "https://biic.ee.nthu.edu.tw/"
    LICENSE = "NNIME license agreement (on request)"
    EXPECTED_LAYOUT = """
    <data_dir>/                      the corpus as received (layout unconfirmed), holding no other corpus
      **/*.wav (or flac, ...)        every audio file below is read; speaker = its folder
    """

    def find_root(self, data_dir: Path) -> Path:
        self.refuse_other_corpora(data_dir)
        return data_dir

    def parse(self, path: Path, split: str) -> dict:
        folder = path.parent.relative_to(self.root)
        return {"speaker": "" if folder == Path(".") else folder.as_posix()}
