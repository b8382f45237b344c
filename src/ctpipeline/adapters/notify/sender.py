"""One message to one Apprise URL, bounded in time, never raising. Apprise is imported here and nowhere else.

While a message is sent, the log lines of Apprise and of the HTTP connection pool are dropped: a plugin or
urllib3's debug line may word the URL, and the URL carries the destination's token. The caller says what failed,
naming the URL's scheme only.
"""

from __future__ import annotations

import contextvars
import logging

_sending: contextvars.ContextVar[bool] = contextvars.ContextVar("ctp_notify_sending", default=False)
QUIET_LOGGERS = ("apprise", "urllib3.connectionpool")


class _WhileSending(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _sending.get()


_FILTER = _WhileSending()
for _name in QUIET_LOGGERS:
    logging.getLogger(_name).addFilter(_FILTER)


def send(url: str, title: str, body: str, level: str, timeout: float) -> str | None:
    """Send `title` / `body` (notify type `level`: info, success, warning, failure) to `url`, waiting at most
    `timeout` seconds to connect and as long to read. None when the destination took it, else why not (never the
    URL, never raises). Apprise is imported on the first message (a third of a second, for cycles that send)."""
    token = _sending.set(True)
    try:
        import apprise

        asset = apprise.AppriseAsset(async_mode=False, secure_logging=True, storage_mode="memory")
        plugin = apprise.Apprise.instantiate(url, asset=asset)
        if plugin is None:
            return "not a URL Apprise can use (unknown scheme, or a part missing or malformed)"
        plugin.socket_connect_timeout = float(timeout)
        plugin.socket_read_timeout = float(timeout)
        dispatcher = apprise.Apprise(asset=asset)
        dispatcher.add(plugin)
        if dispatcher.notify(body=body, title=title, notify_type=apprise.NotifyType(level)):
            return None
        return f"the destination refused it or did not answer within {timeout:g} s"
    except Exception as exc:  # a plugin's bug must not end the cycle; its text may hold the URL: type only
        return f"{type(exc).__name__} while sending"
    finally:
        _sending.reset(token)
