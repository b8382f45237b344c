-- One PostgreSQL server, two databases (MLflow's and Prefect's), owned by one login role.
-- Idempotent, and the same file inside and outside Docker:
--   * Docker: the postgres image runs it once, on an empty data volume, as POSTGRES_USER (the role `ctp`,
--     created with POSTGRES_PASSWORD_FILE's password): only the databases are created.
--   * Outside Docker: run it as a superuser, e.g.  sudo -u postgres psql -v ON_ERROR_STOP=1 -f 01-databases.sql
--     It creates the role `ctp` (LOGIN, no password) when missing; give it one without it showing in `ps`:
--     sudo -u postgres psql -c '\password ctp'   (psql prompts for it)
--   Another owner: psql -v owner=NAME ... (default ctp).
-- Running it again changes nothing: a role or database that exists is left as it is (never altered or dropped).
\set ON_ERROR_STOP on
\if :{?owner}
\else
  \set owner ctp
\endif

SELECT format('CREATE ROLE %I LOGIN', :'owner')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'owner') \gexec

SELECT format('CREATE DATABASE %I OWNER %I', db, :'owner')
  FROM unnest(ARRAY['mlflow', 'prefect']) AS db
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = db) \gexec
