"""The door of /slack/events: nothing of a request is read, parsed or logged before Slack's signature checks out.

In order, each step cheaper than the next:

1. the headers: a body declared over `MAX_BODY` (64 KiB; Slack's own payloads are a few KiB) is
   refused with 413; a timestamp or signature not even shaped like Slack's, or a stale timestamp,
   leaves only Slack's tiny certificate probe (`ssl_check=1`, which Bolt also answers unverified)
   to look for: at most 96 bytes are read, then 401;
2. the body, read as a stream and refused with 413 the moment it passes `MAX_BODY` (chunked
   bodies declare no length), so no body is ever held whole beyond the limit;
3. Slack's signature (slack_sdk's `SignatureVerifier`: HMAC of the timestamp and the raw bytes,
   5-minute window) -> 401;
4. only then the payload, by its content type rather than by guessing (Bolt's own parser reads
   any form body containing the substring "payload" as an interaction): JSON must be an object of
   bounded depth; a form is `payload=<JSON object>` (an interaction) or plain fields (a slash
   command). Anything else -> 400.

Bolt then gets the verified payload as canonical JSON, so its own signature check is off (it would
check bytes it never sees). Refusals are counted (`headroom_rejected_requests_total{reason}`),
never logged: a flood of junk must not become a flood of log lines.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl

from slack_bolt.adapter.starlette.async_handler import to_starlette_response
from slack_bolt.async_app import AsyncApp, AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from bot.metrics import Metrics

MAX_BODY = 64 * 1024
MAX_DEPTH = 32  # Slack's deepest payloads (a block_actions with its message's rich text) nest ~12 levels
MAX_FIELDS = 100
_DIGITS = re.compile(r"[0-9]{1,12}")
REPLAY_WINDOW_S = 300  # Slack's: a request signed more than 5 minutes ago (or ahead) is refused
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")
_SSL_CHECK = re.compile(rb"ssl_check=1(?:&token=[A-Za-z0-9]{0,64})?")
_SSL_CHECK_MAX = 96
#: what Bolt may read from the original headers (retries); everything else stays here
_FORWARDED = ("x-slack-retry-num", "x-slack-retry-reason")


class Refused(Exception):
    """A request that goes no further: its status and a reason from `metrics.REJECTIONS`."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason

    def response(self) -> Response:
        headers = {"connection": "close"} if self.status == 413 else None  # don't read the rest of it either
        return JSONResponse({"error": self.reason}, status_code=self.status, headers=headers)


class SlackGate:
    """Admits a request as Slack's verified payload (a dict), or raises `Refused`."""

    def __init__(self, signing_secret: str, max_body: int = MAX_BODY, max_depth: int = MAX_DEPTH) -> None:
        self.verifier = SignatureVerifier(signing_secret)
        self.max_body = max_body
        self.max_depth = max_depth

    async def admit(self, request: Request) -> dict[str, Any]:
        signed = self._check_headers(request)
        # a request without a well-formed, fresh signature may only be Slack's certificate probe: read
        # no more of it than that probe could be
        raw = await self._read(request, self.max_body if signed else _SSL_CHECK_MAX)
        if signed is None or not self._verified(raw, *signed):
            if _SSL_CHECK.fullmatch(raw):  # Slack's certificate probe, answered before any check (as Bolt does)
                return {"ssl_check": "1"}
            raise Refused(401, "bad_signature")
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        text = raw.decode("utf-8")  # the verifier has decoded it already
        if kind == "application/json":
            return self._object(text)
        if kind == "application/x-www-form-urlencoded":
            return self._form(text)
        raise Refused(400, "malformed")

    def _check_headers(self, request: Request) -> tuple[str, str] | None:
        """413 for a declared body over the limit; the timestamp and signature if they are shaped like
        Slack's and the timestamp is within the replay window, else None."""
        declared = request.headers.get("content-length")
        if declared is not None:
            if not _DIGITS.fullmatch(declared):  # digits, and not absurdly many
                raise Refused(400, "malformed")
            if int(declared) > self.max_body:
                raise Refused(413, "too_large")
        timestamp = request.headers.get("x-slack-request-timestamp", "")
        signature = request.headers.get("x-slack-signature", "")
        if not _DIGITS.fullmatch(timestamp) or not _SIGNATURE.fullmatch(signature):
            return None
        if abs(time.time() - int(timestamp)) > REPLAY_WINDOW_S:  # stale
            return None
        return timestamp, signature

    def _verified(self, raw: bytes, timestamp: str, signature: str) -> bool:
        try:
            return self.verifier.is_valid(raw, timestamp, signature)
        except UnicodeDecodeError:  # Slack signs UTF-8 text; other bytes cannot carry its signature
            return False

    async def _read(self, request: Request, limit: int) -> bytes:
        """The body, refused as soon as it passes `limit` (413 for a signed-looking request, 401 otherwise)."""
        chunks, size = [], 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise Refused(413, "too_large") if limit == self.max_body else Refused(401, "bad_signature")
                chunks.append(chunk)
        except ClientDisconnect:
            raise Refused(400, "malformed") from None  # nobody is left to read the answer
        return b"".join(chunks)

    def _object(self, text: str) -> dict[str, Any]:
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            raise Refused(400, "malformed") from None
        if not isinstance(value, dict) or too_deep(value, self.max_depth) or not _bolt_shaped(value):
            raise Refused(400, "malformed")
        return value

    def _form(self, text: str) -> dict[str, Any]:
        try:
            fields = dict(parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS, errors="strict"))
        except (ValueError, UnicodeDecodeError):
            raise Refused(400, "malformed") from None
        if fields.keys() == {"payload"}:  # an interaction: the whole form is one JSON field
            return self._object(fields["payload"])
        return fields  # a slash command (or Slack's ssl_check): flat text fields, whatever they contain


def json_object(value: object, max_chars: int, max_depth: int) -> dict | None:
    """A value that comes back from a user's client (a button's, a form's metadata) read as a JSON object:
    None when it is too long, too deeply nested, or not an object -- never an exception."""
    if not isinstance(value, str) or len(value) > max_chars:
        return None
    try:
        data = json.loads(value)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) and not too_deep(data, max_depth) else None


def too_deep(value: object, limit: int) -> bool:
    """Nesting deeper than `limit`, found without recursion (a hostile payload must not exhaust the stack)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


#: the fields Bolt's routing and context look into, with the types it expects there
_SHAPES: dict[str, tuple[type, ...]] = {
    "type": (str,), "event": (dict,), "actions": (list,), "authorizations": (list,), "team": (dict, str),
    "user": (dict, str), "channel": (dict, str), "enterprise": (dict, str), "container": (dict,),
    "view": (dict,), "message": (dict,), "command": (str,), "callback_id": (str,), "team_id": (str,),
}  # fmt: skip


def _bolt_shaped(body: dict[str, Any]) -> bool:
    """Slack's field types where Bolt reads them, so a signed oddity is a 400 and not a crash in Bolt."""
    if any(key in body and not isinstance(body[key], kinds) for key, kinds in _SHAPES.items()):
        return False
    listed = body.get("actions", []) + body.get("authorizations", [])
    event = body.get("event", {})
    return (
        isinstance(body.get("view", {"type": ""}).get("type"), str)  # Bolt reads a view's type unchecked
        and all(isinstance(item, dict) for item in listed)
        and isinstance(event.get("type", ""), str)
        and all(not isinstance(event.get(key), dict | list) for key in ("subtype", "channel", "user", "ts", "text"))
    )


async def to_bolt(app: AsyncApp, body: dict[str, Any], request: Request) -> Response:
    """Dispatch a verified payload to Bolt as canonical JSON, with only the headers it needs."""
    headers: dict[str, str | Sequence[str]] = {"content-type": "application/json"}
    headers |= {name: request.headers[name] for name in _FORWARDED if name in request.headers}
    bolt_request = AsyncBoltRequest(body=json.dumps(body), headers=headers)
    return to_starlette_response(await app.async_dispatch(bolt_request))


def refusal(metrics: Metrics, refused: Refused) -> Response:
    metrics.reject(refused.reason)
    return refused.response()
