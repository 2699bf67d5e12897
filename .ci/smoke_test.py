"""CI's smoke test of the installed wheel, run by .ci/package_smoke.sh from a folder outside the checkout.

    smoke_test.py prepare VENV   voc2vec is imported from VENV, load_corpus finds its loading scripts and the configs
                                 inside the installed package; writes corpus/ (labelled clips and meta.csv) for
                                 `voc2vec cv configs/cv/demo.yaml --dataset_name csv ...`
    smoke_test.py check RUN_DIR LABELS_CSV
                                 the run's model/ holds a card whose model-index matches its summary.json, and
                                 `voc2vec classify` labelled every clip of corpus/ with it
"""

import csv
import json
import sys
from pathlib import Path

import numpy as np
import soundfile

CORPUS = Path("corpus")
LABELS = {"laugh": 300.0, "cry": 900.0, "scream": 2000.0}  # a tone per class
SPEAKERS, CLIPS_PER_SPEAKER_PER_CLASS = 4, 2


def prepare(venv: Path) -> None:
    import voc2vec
    from voc2vec.corpora import load_corpus
    from voc2vec.resources import resolve_resource

    assert Path(voc2vec.__file__).resolve().is_relative_to(venv), f"voc2vec imported from {voc2vec.__file__}, not from {venv}"
    demo = load_corpus("demo", num_speakers=2, clips_per_speaker_per_class=1, verbose=False)
    assert len(demo) == 12, len(demo)
    assert resolve_resource("configs/cv/demo.yaml").resolve().is_relative_to(venv)
    write_corpus(CORPUS)
    print(f"package smoke test: voc2vec {voc2vec.__version__} from {venv}; demo corpus and shipped configs found")


def write_corpus(root: Path) -> None:
    """A corpus small enough for a two-fold run in seconds: one tone per class, shifted per speaker."""
    rows = []
    for speaker in range(SPEAKERS):
        for label, frequency in LABELS.items():
            for clip in range(CLIPS_PER_SPEAKER_PER_CLASS):
                rng = np.random.default_rng(len(rows))
                time = np.arange(int(16000 * (0.4 + 0.1 * clip))) / 16000
                samples = 0.3 * np.sin(2 * np.pi * frequency * (1 + 0.03 * speaker) * time) + 0.05 * rng.standard_normal(len(time))
                path = root / "clips" / f"spk{speaker}_{label}_{clip}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                soundfile.write(path, samples.astype(np.float32), 16000)
                rows.append({"path": str(path.resolve()), "label": label, "speaker": f"spk{speaker}"})
    with open(root / "meta.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "label", "speaker"])
        writer.writeheader()
        writer.writerows(rows)


def check(run_dir: Path, labels_csv: Path) -> None:
    from huggingface_hub import ModelCard

    summary = json.loads((run_dir / "summary.json").read_text())
    card = ModelCard.load(run_dir / "model" / "README.md")
    model_index = {result.metric_type: result.metric_value for result in card.data.eval_results}
    assert model_index == {metric: summary["mean"][metric] for metric in ("uar", "accuracy", "macro_f1")}, (model_index, summary["mean"])
    assert all(result.metric_args["num_folds"] == summary["num_folds"] == 2 for result in card.data.eval_results)
    with open(labels_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    expected = len(LABELS) * SPEAKERS * CLIPS_PER_SPEAKER_PER_CLASS
    assert len(rows) == expected and list(rows[0])[:3] == ["path", "label", "score"], rows[:1]
    assert {name.removeprefix("prob_") for name in rows[0] if name.startswith("prob_")} == set(LABELS)
    print(f"package smoke test: run_cv's model/ card matches summary.json; voc2vec classify labelled {len(rows)} files with it")


if __name__ == "__main__":
    if sys.argv[1] == "prepare":
        prepare(Path(sys.argv[2]).resolve())
    else:
        check(Path(sys.argv[2]), Path(sys.argv[3]))
