"""Notifications through Apprise (Slack, e-mail, webhook URLs...): the only module that imports it."""

from ctpipeline.adapters.notify.sender import send

__all__ = ["send"]
