"""Error replies of the Bot API, and the faults a test asks the fake to play."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from tests.fake_telegram.constants import Json


class ApiError(Exception):
    """An error reply: ``{"ok": false, "error_code": status, "description": ..., "parameters"}``."""

    def __init__(self, status: int, description: str, **parameters: int | None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = {k: v for k, v in parameters.items() if v is not None}

    def response(self) -> web.Response:
        body: Json = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return web.json_response(body, status=self.status)


async def _redirect_loop(request: web.Request) -> web.Response:
    # 307 keeps the POST a POST, so the client follows it as it came, until it gives up.
    return web.Response(status=307, headers={"Location": REDIRECT_LOOP})


def bad_request(text: str) -> ApiError:
    return ApiError(400, f"Bad Request: {text}")


# How a fault is answered: Telegram's JSON error; the HTML page its front servers send during
# incidents (with the error's status); no answer at all until the client gives up or the fake
# stops; the connection closed after `delay` seconds without an answer; a redirect into a loop
# (aiohttp gives up with TooManyRedirects, its message quoting the first URL, bot token and all).
FAULT_BODIES = ("json", "html", "hang", "drop", "redirect")
REDIRECT_LOOP = "/redirect-loop"
HTML_PAGE = (
    "<html>\r\n<head><title>{status} {phrase}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {phrase}</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


@dataclass(slots=True)
class _Fault:
    error: ApiError
    chat_id: int | None
    times: int
    body: str = "json"
    delay: float = 0.0


class _Misbehave(Exception):
    """Not an error of the fake: a fault it plays (see _Fault.body)."""

    def __init__(self, fault: _Fault) -> None:
        self.fault = fault
