"""The Apache Spark adapter (`engine: spark`, docs/spark.md): the only place pyspark and xgboost.spark are imported.

* :mod:`.session`: the driver's SparkSession (Java and pyspark checked: a config error naming `engine`);
* :mod:`.frames`: landed Parquet batches as Spark DataFrames with pandas' row positions, samples pulled to the driver;
* :mod:`.scoring`: fitted scikit-learn Pipelines (challenger, champion, baselines) scored inside Spark;
* :mod:`.training`: the front feature transforms fitted on the driver, XGBoost trained by ``xgboost.spark``, and
  the same scikit-learn Pipeline the pandas engine logs, carrying the trained booster.

pyspark takes seconds to import and start: nothing here is imported by the pandas engine.
"""
