#!/usr/bin/env bash
# What scripts/gpu_reference.sh needs beside the working tree, made here (with a network):
#
#   scripts/prepare_gpu_carry.sh [NAME==VERSION ...]
#
# .carry/fashion-mnist/: the full Fashion-MNIST (Debian's dataset-fashion-mnist, 30 MB gzipped
# IDX, checked against its SHA-256 when loaded); .whl/: wheels for Python 3.12 x86-64 of the
# packages named (the GPU machine's image holds every other dependency; papermill and Jupyter
# are not needed there, the stages run from the command line). Both folders are ignored by
# git: name them in what travels with the tree (64 MiB in all).
set -euo pipefail
cd "$(dirname "$0")/.."
SOURCE=/usr/share/datasets/fashion-mnist
if [ ! -d "$SOURCE" ]; then
    echo "no $SOURCE: sudo apt-get install dataset-fashion-mnist" >&2
    exit 2
fi
mkdir -p .carry/fashion-mnist
cp "$SOURCE"/*-ubyte.gz .carry/fashion-mnist/
if [ "$#" -gt 0 ]; then
    mkdir -p .whl
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform any -d .whl "$@"
fi
du -sh .carry .whl 2>/dev/null || true
