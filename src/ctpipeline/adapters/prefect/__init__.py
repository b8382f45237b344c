"""Prefect adapter: the training slot, deployments, how a cycle's outcome shows in Prefect, and (launcher) creating
flow runs for the webhook receiver. Every Prefect import is inside a function: no work at import time."""
