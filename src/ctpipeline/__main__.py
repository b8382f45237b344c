"""`python -m ctpipeline ...` is `ctp ...`."""

from ctpipeline.cli.main import entrypoint

entrypoint()
