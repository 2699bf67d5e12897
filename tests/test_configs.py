"""Every file in configs/ parses and builds what it is for: the CV configs (every grid cell, with the protocol's
declared settings applied), the pretraining configs, the Voc125 mixture config, the model configs, and the
accelerate / DeepSpeed launcher configs."""

import json
from pathlib import Path

import pytest
import yaml
from accelerate.commands.config.config_args import load_config_from_file
from transformers import AutoConfig, AutoModel

import run_cv
import run_pretraining
from voc2vec.arguments import config_to_flags, parse_arguments
from voc2vec.mixture import read_config
from voc2vec.protocols import PROTOCOLS, apply_declared_settings

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def cv_cells(path: Path) -> list[list[str]]:
    """The argv of the config itself, or of each model x dataset cell of its grid (as run_cv.run_grid builds them)."""
    grid = yaml.safe_load(path.read_text()).get("grid")
    if not grid:
        return [[str(path)]]
    return [[str(path), *config_to_flags(model if isinstance(model, dict) else {"model_name_or_path": model}),
             *config_to_flags(dataset if isinstance(dataset, dict) else {"dataset_name": dataset})]
            for model in grid["models"].values() for dataset in grid["datasets"].values()]


@pytest.mark.parametrize("path", sorted((CONFIGS / "cv").glob("*.yaml")), ids=lambda path: path.name)
def test_cv_configs_parse_and_agree_with_their_protocol(path, monkeypatch):
    monkeypatch.chdir(CONFIGS.parent)  # configs name paths relative to the repository, as the README runs them
    for argv in cv_cells(path):
        model_args, data_args, protocol_args, cv_args, training_args, _ = parse_arguments(run_cv.ARGUMENT_TYPES, argv)
        assert training_args.output_dir.startswith("outputs/")
        if protocol_args.protocol in PROTOCOLS:  # 'auto' is resolved against the corpus
            protocol = PROTOCOLS[protocol_args.protocol](protocol_args, training_args.seed)
            apply_declared_settings(protocol, {"model": model_args, "data": data_args, "protocol": protocol_args,
                                               "training": training_args})
        if model_args.model_name_or_path.endswith(".json"):
            assert (CONFIGS.parent / model_args.model_name_or_path).is_file()


@pytest.mark.parametrize("path", sorted((CONFIGS / "pretraining").glob("*.yaml")), ids=lambda path: path.name)
def test_pretraining_configs_parse(path, monkeypatch):
    monkeypatch.chdir(CONFIGS.parent)
    model_args, data_args, training_args = run_pretraining.parse_arguments([str(path)])
    assert training_args.output_dir


def test_voc125_mixture_config_is_valid():
    config = read_config(CONFIGS / "voc125.yaml")
    assert len(config["corpora"]) == 10


@pytest.mark.parametrize("path", sorted((CONFIGS / "models").glob("*.json")), ids=lambda path: path.name)
def test_model_configs_build_a_model(path):
    model = AutoModel.from_config(AutoConfig.from_pretrained(path))
    assert sum(parameter.numel() for parameter in model.parameters()) < 5_000_000  # tiny, for tests and the demo


@pytest.mark.parametrize("path", sorted((CONFIGS / "accelerate").glob("*.yaml")), ids=lambda path: path.name)
def test_accelerate_configs_load(path):
    config = load_config_from_file(str(path))
    if config.deepspeed_config.get("deepspeed_config_file"):
        assert (CONFIGS.parent / config.deepspeed_config["deepspeed_config_file"]).is_file()


@pytest.mark.parametrize("path", sorted((CONFIGS / "deepspeed").glob("*.json")), ids=lambda path: path.name)
def test_deepspeed_configs_are_json(path):
    assert json.loads(path.read_text())["zero_optimization"]["stage"] == 2
