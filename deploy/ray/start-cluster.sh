#!/usr/bin/env bash
# A Ray cluster by hand (no launcher, no Docker): the head on one machine, workers on the
# others, then one hpsearch run on the head that places its workers as Ray actors.
#
# Start it:
#   on the head:          bash deploy/ray/start-cluster.sh head
#   on every GPU machine: bash deploy/ray/start-cluster.sh worker HEAD_HOST
#   on the head:          HPSEARCH_STORAGE=postgresql://hpsearch:SECRET@db-host:5432/hpsearch \
#                         bash deploy/ray/start-cluster.sh run studies/mnist_cnn.yaml 8
# Stop it (every machine): bash deploy/ray/start-cluster.sh stop
# Each machine needs `pip install 'hpsearch[postgres,ray]'` in the environment that runs
# this script, and the study file and its data at the same path.
set -euo pipefail

PORT="${RAY_PORT:-6379}"

case "${1:-}" in
    head)
        ray start --head --port="$PORT"
        ;;
    worker)
        head="${2:?usage: start-cluster.sh worker HEAD_HOST}"
        ray start --address="$head:$PORT"  # Ray counts this machine's CPUs and GPUs
        ;;
    run)
        study="${2:?usage: start-cluster.sh run STUDY.yaml N_WORKERS}"
        workers="${3:?usage: start-cluster.sh run STUDY.yaml N_WORKERS}"
        : "${HPSEARCH_STORAGE:?set HPSEARCH_STORAGE to a postgresql:// URL every node reaches}"
        # GPUs Ray reserves per worker: HPSEARCH_GPUS_PER_WORKER=1 on GPU machines
        gpus="${HPSEARCH_GPUS_PER_WORKER:-0}"
        exec hpsearch run "$study" --workers "$workers" --ray auto \
            --storage "$HPSEARCH_STORAGE" --set "workers.ray.num_gpus=$gpus"
        ;;
    stop)
        ray stop
        ;;
    *)
        echo "usage: start-cluster.sh head | worker HEAD_HOST | run STUDY.yaml N | stop" >&2
        exit 2
        ;;
esac
