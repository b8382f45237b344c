"""Entry point for `prefect deploy` / `prefect.yaml` users: the flow itself lives in `ctpipeline.flow`.

prefect deploy flows/continuous_training.py:continuous_training -n my-pipeline
"""

from ctpipeline.flow import continuous_training

__all__ = ["continuous_training"]
