"""`python -m ctpipeline ...` is `ctp ...`."""

from ctpipeline.cli import entrypoint

entrypoint()
