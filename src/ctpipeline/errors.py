"""Exceptions with messages a user can act on. The CLI maps them to exit codes."""

from __future__ import annotations


class CtpError(Exception):
    """Base class: an expected failure with a clear message (CLI exit code 1)."""

    exit_code = 1


class ConfigError(CtpError):
    """A configuration file is missing, unreadable or invalid (CLI exit code 2).

    The message always names the file, and where possible the key path and the reason.
    """

    exit_code = 2

    def __init__(self, file: str, problems: list[tuple[str, str]] | str):
        self.file = str(file)
        if isinstance(problems, str):
            problems = [("", problems)]
        self.problems = problems
        lines = [f"invalid configuration in {self.file}:"]
        for key, reason in problems:
            lines.append(f"  - {key}: {reason}" if key else f"  - {reason}")
        super().__init__("\n".join(lines))


class QualitySuiteError(ConfigError):
    """An expectations suite file is missing or not a valid GX suite."""


class DataError(CtpError):
    """Input data cannot be read or does not have the shape the config declares."""


class RegistryError(CtpError):
    """The model registry is in a state the pipeline cannot act on."""
