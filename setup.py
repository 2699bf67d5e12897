"""The wheel's layout (metadata and dependencies are in pyproject.toml).

The corpus loading scripts (`data/`) and the configs (`configs/`) stay at the repository's top level, where users
and the README expect them, and are installed inside the package as `voc2vec/data/` and `voc2vec/configs/`, where
`voc2vec.resources.shipped_dir` finds them. The three scripts install as top-level modules (`import run_cv`), which
`voc2vec cv|finetune|pretrain` call; `python -m run_cv` works too. Mapping folders into the package needs
`package_dir`, which pyproject.toml's `packages.find` cannot combine with the discovered subpackages: hence this file.
"""

from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).resolve().parent
SHIPPED = {"data": "voc2vec.data", "configs": "voc2vec.configs"}

# Every folder of data/ and configs/ becomes a (data) package, so that setuptools installs its files as package data.
shipped_packages = {}
for folder, package in SHIPPED.items():
    for directory in sorted([ROOT / folder, *(path for path in (ROOT / folder).rglob("*") if path.is_dir())]):
        if directory.name != "__pycache__":
            relative = directory.relative_to(ROOT / folder)
            shipped_packages[".".join([package, *relative.parts])] = directory.relative_to(ROOT).as_posix()

setup(
    packages=find_packages(include=["voc2vec", "voc2vec.*"]) + list(shipped_packages),
    package_dir=shipped_packages,
    package_data={package: ["*.yaml", "*.yml", "*.json"] for package in shipped_packages},
    py_modules=["run_cv", "run_classification", "run_pretraining"],
)
