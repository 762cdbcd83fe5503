#!/usr/bin/env bash
# Time the studies on a GPU machine: the full seed2020 grid (300 runs) and the main setting of
# `best` (75 runs). Nothing GPU-specific is asked for: every run picks the GPU up by itself
# (digitpair.lab.training.pick_device) and the --workers processes share it. Records go to
# train/runs/evidence/<study>-gpu, reports (wall time, GPU named) to train/results/evidence/<study>-gpu.
#
#   bash benchmarks/gpu_studies.sh [WORKERS] [SECONDS_PER_STUDY]
#
# A study cut short by the time limit is resumable: run the same command again.
set -uo pipefail
workers=${1:-8}
limit=${2:-3600}
train=${DIGITPAIR_TRAIN:-digitpair-train}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
study() {   # study NAME [extra options]
    local name=$1; shift
    timeout -k 10 "$limit" $train study --preset "$name" --workers "$workers" "$@" \
        --out "train/runs/evidence/$name-gpu"
    echo "study $name: exit $?"   # timeout signals the whole process group, workers included
}
study seed2020
study best --setting adam_safe
