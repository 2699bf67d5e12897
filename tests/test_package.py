"""The installable package: shipped files found from anywhere, and a wheel that works outside the checkout.

The wheel tests build it from a copy of this working tree (so no build/ folder lands in the checkout), install it
with `pip install --target` (no dependencies: they are this environment's) and run Python from another folder with
only that install on the path, as a user who ran `pip install voc2vec` would.
"""

import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from model_fixtures import save_classifier, write_clips
from voc2vec.resources import CHECKOUT_DIR, resolve_resource, shipped_dir

SOURCES = ["setup.py", "pyproject.toml", "README.md", "voc2vec", "data", "configs", "run_cv.py", "run_classification.py", "run_pretraining.py"]
SHARED_DONATEACRY = CHECKOUT_DIR.parent / "shared" / "corpora" / "donateacry-corpus"


def requirement_name(line: str) -> str:
    return re.split(r"[<>=!~;\[ ]", line.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_shipped_files_resolve_from_any_working_directory(tmp_path, monkeypatch):
    assert (shipped_dir("data") / "demo.py").is_file()
    assert (shipped_dir("configs") / "cv" / "demo.yaml").is_file()
    monkeypatch.chdir(tmp_path)
    assert resolve_resource("configs/cv/demo.yaml") == shipped_dir("configs") / "cv" / "demo.yaml"
    assert resolve_resource("./configs/models/tiny-wav2vec2.json") == shipped_dir("configs") / "models" / "tiny-wav2vec2.json"
    (tmp_path / "configs" / "cv").mkdir(parents=True)
    (tmp_path / "configs" / "cv" / "demo.yaml").write_text("num_folds: 3\n")
    assert resolve_resource("configs/cv/demo.yaml") == Path("configs/cv/demo.yaml")  # the user's own copy wins
    assert resolve_resource("configs/cv/nonexistent.yaml") == Path("configs/cv/nonexistent.yaml")  # unchanged: caller reports it
    assert resolve_resource("facebook/wav2vec2-base") == Path("facebook/wav2vec2-base")
    with pytest.raises(ValueError):
        shipped_dir("outputs")


def test_shipped_configs_name_shipped_files_from_any_working_directory(tmp_path, monkeypatch):
    """The paths inside shipped configs (`model_name_or_path: configs/models/...`, pretraining's `config_name:`, grid
    entries) and on the command line resolve to the shipped files outside the checkout, as the configs do; a copy in
    the working directory wins, and anything else is left as typed."""
    import run_cv
    import run_pretraining
    from voc2vec.arguments import parse_arguments
    from voc2vec.config_files import read_config_file
    from voc2vec.models import check_model_source

    models = shipped_dir("configs") / "models"
    monkeypatch.chdir(tmp_path)
    model_args, *_, training_args, _ = parse_arguments(run_cv.ARGUMENT_TYPES, ["configs/cv/demo.yaml", "--output_dir", "configs/cv"])
    assert model_args.model_name_or_path == str(models / "tiny-wav2vec2.json")
    assert check_model_source(model_args)[0].model_type == "wav2vec2"  # what failed: "cannot load model 'configs/models/...'"
    assert training_args.output_dir == "configs/cv"  # a shipped folder, not a file: the user's output folder, as typed
    assert run_pretraining.parse_arguments(["configs/pretraining/demo-hubert.yaml"])[0].config_name == str(models / "tiny-hubert.json")
    assert read_config_file("configs/cv/demo-grid.yaml")["grid"]["models"] == {
        "tiny-wav2vec2": str(models / "tiny-wav2vec2.json"), "tiny-hubert": str(models / "tiny-hubert.json")}
    flags = ["configs/cv/demo.yaml", "--model_name_or_path", "configs/models/tiny-hubert.json"]
    assert parse_arguments(run_cv.ARGUMENT_TYPES, flags)[0].model_name_or_path == str(models / "tiny-hubert.json")
    assert parse_arguments(run_cv.ARGUMENT_TYPES, ["--model_name_or_path", "configs/models/absent.json"])[0].model_name_or_path \
        == "configs/models/absent.json"
    (tmp_path / "configs" / "models").mkdir(parents=True)
    (tmp_path / "configs" / "models" / "tiny-wav2vec2.json").write_text("{}")
    assert parse_arguments(run_cv.ARGUMENT_TYPES, ["configs/cv/demo.yaml"])[0].model_name_or_path == "configs/models/tiny-wav2vec2.json"


def test_every_requirement_is_a_declared_dependency():
    project = tomllib.loads((CHECKOUT_DIR / "pyproject.toml").read_text())["project"]
    declared = {requirement_name(line) for line in project["dependencies"]}
    extras = {requirement_name(line) for lines in project["optional-dependencies"].values() for line in lines}
    required = {requirement_name(line) for line in (CHECKOUT_DIR / "requirements.txt").read_text().splitlines()
                if line.strip() and not line.startswith("#")}
    assert required - declared <= extras, f"in requirements.txt but not declared: {sorted(required - declared - extras)}"
    assert {"opensmile", "kaldi-native-fbank", "soundfile", "soxr", "huggingface-hub"} <= declared
    assert project["scripts"]["voc2vec"] == "voc2vec.cli:main"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    root = tmp_path_factory.mktemp("wheel")
    source = root / "src"
    source.mkdir()
    for name in SOURCES:
        origin = CHECKOUT_DIR / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(origin, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(root / "dist"), str(source)],
                   check=True, capture_output=True)
    return next((root / "dist").glob("voc2vec-*.whl"))


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
    """`(site folder, environment, working folder)` of the wheel installed outside the checkout."""
    root = tmp_path_factory.mktemp("installed")
    site = root / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)], check=True, capture_output=True)
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "HF_DATASETS_CACHE": str(root / "datasets"), "VOC2VEC_CACHE": str(root / "voc2vec")}
    return site, env, elsewhere


@pytest.mark.slow
def test_wheel_holds_the_corpus_scripts_configs_scripts_and_dependencies(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for script in (CHECKOUT_DIR / "data").glob("*.py"):
        assert f"voc2vec/data/{script.name}" in names
    for config in (CHECKOUT_DIR / "configs").rglob("*"):
        if config.is_file():
            assert f"voc2vec/configs/{config.relative_to(CHECKOUT_DIR / 'configs').as_posix()}" in names
    assert {"run_cv.py", "run_classification.py", "run_pretraining.py", "voc2vec/cli.py"} <= names
    assert not [name for name in names if "__pycache__" in name]
    metadata = zipfile.ZipFile(wheel).read(next(name for name in names if name.endswith("METADATA"))).decode()
    requires = {requirement_name(line.split(":", 1)[1]) for line in metadata.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line}
    assert {"torch", "transformers", "datasets", "soundfile", "soxr", "opensmile", "kaldi-native-fbank"} <= requires


@pytest.mark.slow
def test_installed_wheel_works_outside_the_checkout(installed, tmp_path):
    """load_corpus finds the shipped loading scripts, configs resolve inside the package, and the installed `voc2vec`
    command classifies files (one Python process for all of it: each start imports torch)."""
    site, env, elsewhere = installed
    help_run = subprocess.run([str(site / "bin" / "voc2vec"), "--help"], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert help_run.returncode == 0 and "classify" in help_run.stdout
    model = save_classifier(tmp_path / "model")
    write_clips(tmp_path / "clips")
    donateacry = f"load_corpus('donateacry', data_dir={str(SHARED_DONATEACRY)!r}, verbose=False)" if SHARED_DONATEACRY.is_dir() else "None"
    script = f"""
import voc2vec, run_cv
from voc2vec.cli import main
from voc2vec.corpora import load_corpus
from voc2vec.resources import resolve_resource
assert voc2vec.__file__.startswith({str(site)!r}), voc2vec.__file__
assert run_cv.__file__.startswith({str(site)!r})
demo = load_corpus("demo", num_speakers=2, clips_per_speaker_per_class=1, verbose=False)
print("demo", len(demo))
print("config", resolve_resource("configs/cv/demo.yaml"))
cries = {donateacry}
print("donateacry", None if cries is None else len(cries))
print("classify", main(["classify", {str(tmp_path / "clips")!r}, "--model", {str(model)!r}, "--output", "labels.csv", "--quiet"]))
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "demo 12" in result.stdout  # 2 speakers x 6 classes x 1 clip
    assert f"config {site}/voc2vec/configs/cv/demo.yaml" in result.stdout
    if SHARED_DONATEACRY.is_dir():
        assert "donateacry 457" in result.stdout
    assert "classify 0" in result.stdout
    labels = (elsewhere / "labels.csv").read_text().splitlines()
    assert labels[0] == "path,label,score,prob_laugh,prob_cry,prob_scream" and len(labels) == 8
