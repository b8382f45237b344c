"""`ctp`: the command-line entry point (`main(argv) -> int`, so tests call it)."""

from ctpipeline.cli.main import entrypoint, main

__all__ = ["entrypoint", "main"]
