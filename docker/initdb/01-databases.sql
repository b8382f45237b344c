-- One PostgreSQL server, one database per service.
CREATE DATABASE mlflow OWNER ctp;
CREATE DATABASE prefect OWNER ctp;
