#!/usr/bin/env bash
# The installed package, as a user gets it: the wheel built from this checkout, installed with its declared
# dependencies into a fresh virtual environment, and used from a folder outside the checkout.
#   .ci/package_smoke.sh install DIR   build the wheel and install it into DIR/venv (a minute or two: .ci/run starts
#                                      it in the background while the tests run)
#   .ci/package_smoke.sh test DIR      the smoke test, from DIR/work (about half a minute): imports, configs, corpus
#                                      scripts, then `voc2vec cv` -> a model with its card -> `voc2vec classify`
# Dependencies come from pip's cache and the local index (torch==2.13.0 from local disk); requirements.txt serves
# as constraints only, so a dependency missing from pyproject.toml makes the smoke test fail.
set -euo pipefail
stage=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)
checkout=$(cd "$(dirname "$0")/.." && pwd)

case "$stage" in
install)
    # Build from a copy, so that no build/ folder lands in the checkout.
    mkdir -p "$dir/src"
    for item in setup.py pyproject.toml README.md voc2vec data configs run_cv.py run_classification.py run_pretraining.py; do
        cp -r "$checkout/$item" "$dir/src/"
    done
    find "$dir/src" -name __pycache__ -prune -exec rm -rf {} +
    python -m pip wheel -q --no-deps --no-build-isolation -w "$dir/dist" "$dir/src"
    python3 -m venv "$dir/venv"
    # --no-compile: byte-compiling every installed module (torch has thousands) took two thirds of the install
    "$dir/venv/bin/python" -m pip install -q --no-compile "$dir"/dist/voc2vec-*.whl -c "$checkout/requirements.txt"
    ;;
test)
    mkdir -p "$dir/work"
    cd "$dir/work"
    export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
    export HF_HOME="$dir/hf-home" VOC2VEC_CACHE="$dir/voc2vec-cache"
    "$dir/venv/bin/voc2vec" --help > /dev/null
    "$dir/venv/bin/python" "$checkout/.ci/smoke_test.py" prepare "$dir/venv"
    # The issue's end state: the shipped demo config (its model a shipped config file too) on a tiny corpus, two folds
    # of one epoch; then the model it leaves labels a folder of files, and its card matches summary.json.
    "$dir/venv/bin/voc2vec" cv configs/cv/demo.yaml --dataset_name csv --data_files corpus/meta.csv --speaker_column speaker \
        --num_folds 2 --validation_fraction 0.5 --num_train_epochs 1 --max_duration 0.5 --output_dir cv-run \
        --print_results false > cv.log 2>&1 || { tail -n 30 cv.log >&2; exit 1; }
    "$dir/venv/bin/voc2vec" classify corpus/clips --model cv-run/model --output labels.csv --quiet
    "$dir/venv/bin/python" "$checkout/.ci/smoke_test.py" check cv-run labels.csv
    ;;
*)
    echo "usage: $0 install|test DIR" >&2
    exit 2
    ;;
esac
