#!/bin/sh
# The compose `worker` service: make sure the process work pool, the training slot and the deployments exist
# on the Prefect server, then run a Prefect worker on that pool (with its health endpoint on 127.0.0.1:8080).
# Every step is idempotent, so each replica (`docker compose up --scale worker=3`) may run it.
#   CTP_WORK_POOL       work pool name (default ctp-pool, as `ctp stack up`); the deployments in $CTP_PREFECT_FILE name the same pool
#   CTP_PREFECT_FILE    Prefect's deployment file (default /app/docker/prefect.yaml)
#   CTP_PIPELINES       pipeline names whose one-slot training limit `train-<name>` must exist (default flights-delay)
set -eu

pool=${CTP_WORK_POOL:-ctp-pool}
prefect_file=${CTP_PREFECT_FILE:-/app/docker/prefect.yaml}

if ! prefect work-pool inspect "$pool" >/dev/null 2>&1; then
    # a replica starting at the same moment may have created it: check again before failing
    prefect work-pool create "$pool" --type process >/dev/null || prefect work-pool inspect "$pool" >/dev/null
fi
for name in ${CTP_PIPELINES:-flights-delay}; do
    if ! prefect global-concurrency-limit inspect "train-$name" >/dev/null 2>&1; then
        prefect global-concurrency-limit create "train-$name" --limit 1 >/dev/null \
            || prefect global-concurrency-limit inspect "train-$name" >/dev/null
    fi
done
prefect --no-prompt deploy --all --prefect-file "$prefect_file"
exec prefect worker start --pool "$pool" --type process --with-healthcheck
