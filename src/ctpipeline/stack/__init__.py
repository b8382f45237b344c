"""The team stack (`ctp stack up | down | status | env`): PostgreSQL, `mlflow server` (basic auth, proxied
artifacts), `prefect server start`, Prefect workers on a process work pool, and the webhook receiver, all on
127.0.0.1 with every file in one folder (default `<state-dir>/stack`). docs/stack.md has the picture.

* layout: the folder's layout and the topology (ports, pipelines, workers) recorded in ``stack.json``;
* credentials: passwords and keys from environment variables, or generated into a 0600 file;
* processes: starting, identifying (pid files), health-waiting and stopping one process tree;
* postgres: the unprivileged cluster (initdb, postgres, roles and databases);
* services: what each server is started with, and how its health is checked;
* up: `up`, `down`, `status`, `env` over all of it.
"""
