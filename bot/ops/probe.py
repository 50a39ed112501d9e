"""`python -m bot health`: the running bot's /healthz asked over loopback, for a container's
health check, a systemd timer or a script. One line says what it answered (the problems, when
unhealthy), and the exit code is 0 when healthy, 1 otherwise: a health check that fails shows
its reasons in `docker inspect`, not a traceback."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request

from bot.config import load_settings
from bot.observability import ObservabilitySettings

# Over the 4 s the bot takes at most to say a database or Redis does not answer
# (bot.ops.health.ANSWER_TIMEOUT), so a hang is reported as its reason; under the image's
# HEALTHCHECK timeout (10 s) with the command's start, which imports the settings (pydantic,
# SQLAlchemy, cryptography: 1.3 s, more on a busy host).
TIMEOUT = 6.0
# Where a server listening on every address is reached from the same machine.
_LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def healthz_url(settings: ObservabilitySettings) -> str | None:
    """The URL of the bot's /healthz as seen from its own machine; None when it serves none."""
    if settings.http_port is None:
        return None
    host = _LOOPBACK.get(settings.http_host, settings.http_host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.http_port}/healthz"


def probe() -> int:
    url = healthz_url(load_settings(ObservabilitySettings))
    if url is None:
        print("error: HTTP_PORT is not set, so the bot serves no /healthz", file=sys.stderr)
        return 1
    # Never through HTTP_PROXY, which Docker hands containers from its daemon's settings: a
    # proxy cannot reach the container's loopback, so a healthy bot was reported unhealthy.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=TIMEOUT) as answer:
            status, body = answer.status, answer.read()
    except urllib.error.HTTPError as error:  # 503: unhealthy, and why
        status, body = error.code, error.read()
    except (OSError, ValueError) as error:  # refused, timed out, a host that does not resolve
        reason = getattr(error, "reason", None) or error
        print(f"error: no answer from {url}: {reason}", file=sys.stderr)
        return 1
    try:
        problems = json.loads(body).get("problems", []) if status in (200, 503) else None
    except (ValueError, AttributeError):
        problems = None
    if problems is None:
        print(f"error: {url} answered {status}, not the bot's health", file=sys.stderr)
        return 1
    if status == 200:
        print("healthy")
        return 0
    print("unhealthy: " + "; ".join(map(str, problems)))
    return 1
