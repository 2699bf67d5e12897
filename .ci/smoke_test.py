"""CI's smoke test of the installed wheel (run by .ci/package_smoke.sh from a folder outside the checkout).

Checks that voc2vec is imported from the virtual environment, that load_corpus finds its loading scripts and the
configs inside the installed package, and leaves a tiny classifier folder and four clips for `voc2vec classify`.
"""

import sys
from pathlib import Path

import numpy as np
import soundfile
import voc2vec
from transformers import AutoConfig, AutoModelForAudioClassification, Wav2Vec2FeatureExtractor
from voc2vec.corpora import load_corpus
from voc2vec.resources import resolve_resource

venv = Path(sys.argv[1]).resolve()
assert Path(voc2vec.__file__).resolve().is_relative_to(venv), f"voc2vec imported from {voc2vec.__file__}, not from {venv}"

demo = load_corpus("demo", num_speakers=2, clips_per_speaker_per_class=1, verbose=False)
assert len(demo) == 12, len(demo)
assert resolve_resource("configs/cv/demo.yaml").resolve().is_relative_to(venv)

config = AutoConfig.from_pretrained(resolve_resource("configs/models/tiny-wav2vec2.json"), num_labels=2,
                                    id2label={0: "laugh", 1: "cry"}, label2id={"laugh": 0, "cry": 1})
AutoModelForAudioClassification.from_config(config).save_pretrained("model")
Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=False).save_pretrained("model")
Path("clips").mkdir(exist_ok=True)
for index, seconds in enumerate([0.5, 0.5, 1.0, 1.3]):
    soundfile.write(f"clips/clip{index}.wav", (0.1 * np.random.default_rng(index).standard_normal(int(16000 * seconds))).astype(np.float32), 16000)
print(f"package smoke test: voc2vec {voc2vec.__version__} from {venv}; demo corpus and shipped configs found")
