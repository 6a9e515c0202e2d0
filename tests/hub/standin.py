"""A stand-in for the Hugging Face Hub on 127.0.0.1, reached through HF_ENDPOINT.

It answers the requests huggingface_hub makes for a model's info and files: `GET /api/models/<repo>`,
`HEAD`/`GET /<repo>/resolve/<revision>/<file>` (config.json, model.safetensors.index.json) and HTTP Range
reads of safetensors shards, which hold a real header (8-byte little-endian length + JSON) and no data:
a read past the header gets nothing, so a test fails if anything tries to download weights. A gated
repo answers 401 (X-Error-Code: GatedRepo) unless the request carries its token; a repo can be set to
answer 429 (rate limit). Requests are counted per path.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.hub.configs import Tensors

_BYTES = {"BF16": 2, "F16": 2, "F32": 4, "F8_E4M3": 1, "I32": 4, "U8": 1, "I8": 1}


def safetensors_header(entries: Tensors) -> bytes:
    """The first bytes of a .safetensors file for these tensors: length prefix + JSON header (offsets contiguous)."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (dtype, shape) in entries.items():
        size = _BYTES[dtype]
        for n in shape:
            size *= n
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    body = json.dumps(header, separators=(",", ":")).encode()
    body += b" " * (-len(body) % 8)
    return struct.pack("<Q", len(body)) + body


@dataclass
class Repo:
    """One model repo: its config and the tensors its shards hold (split into `shards` files)."""

    id: str
    config: dict[str, Any]
    tensors: Tensors
    shards: int = 2  # 0: no safetensors files
    gated_token: str | None = None  # set: a gated repo, readable with this token only
    sha: str = ""
    files: dict[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.sha = self.sha or hashlib.sha1(self.id.encode()).hexdigest()
        if self.config:  # an empty config: a repo without config.json (GGUF only, say)
            self.files["config.json"] = json.dumps(self.config).encode()
        names = list(self.tensors)
        if self.shards == 0:  # no safetensors at all (a .bin-only repo)
            return
        if self.shards == 1:
            self.files["model.safetensors"] = safetensors_header(self.tensors)
            return
        per = -(-len(names) // self.shards)
        weight_map = {}
        for index in range(self.shards):
            shard = f"model-{index + 1:05d}-of-{self.shards:05d}.safetensors"
            part = {name: self.tensors[name] for name in names[index * per : (index + 1) * per]}
            self.files[shard] = safetensors_header(part)
            weight_map.update(dict.fromkeys(part, shard))
        index_file = {"metadata": {"total_size": 0}, "weight_map": weight_map}
        self.files["model.safetensors.index.json"] = json.dumps(index_file).encode()


_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")
_INFO = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/?]+)(?:/revision/(?P<rev>[^/?]+))?$")
_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


class HubStandIn:
    """The server; `start()`, `stop()` (to show answers come from the cache), `url` for HF_ENDPOINT."""

    def __init__(self, repos: list[Repo]) -> None:
        self.repos = {r.id.lower(): r for r in repos}
        self.hits: Counter[str] = Counter()
        self.rate_limited: set[str] = set()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self, port: int = 0) -> HubStandIn:
        self.server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def _handler(hub: HubStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # quiet
            pass

        def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _error(self, status: int, code: str) -> None:
            body = json.dumps({"error": code}).encode()
            self._reply(
                status, body, {"X-Error-Code": code, "X-Error-Message": code, "Content-Type": "application/json"}
            )

        def _repo(self, repo_id: str) -> Repo | None:
            repo = hub.repos.get(repo_id.lower())
            if repo is None:
                self._error(401, "RepoNotFound")  # as the Hub answers an anonymous request for a missing repo
            elif repo.id.lower() in hub.rate_limited:
                self._error(429, "RateLimited")
                return None
            return repo

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            path = self.path.split("?")[0]
            hub.hits[path] += 1
            info = _INFO.match(path)
            if info:
                repo = self._repo(info.group("repo"))
                if repo is not None:
                    data = {"id": repo.id, "modelId": repo.id, "sha": repo.sha, "private": False,
                            "gated": "manual" if repo.gated_token else False, "downloads": 10,
                            "siblings": [{"rfilename": name} for name in repo.files]}  # fmt: skip
                    self._reply(200, json.dumps(data).encode(), {"Content-Type": "application/json"})
                return
            self._file()

        do_HEAD = do_GET  # noqa: N815

        def _file(self) -> None:
            found = _RESOLVE.match(self.path.split("?")[0])
            if not found:
                self._error(404, "NotFound")
                return
            repo = self._repo(found.group("repo"))
            if repo is None:
                return
            if repo.gated_token and self.headers.get("authorization") != f"Bearer {repo.gated_token}":
                self._error(401, "GatedRepo")
                return
            if found.group("rev") not in (repo.sha, "main"):
                self._error(404, "RevisionNotFound")
                return
            body = repo.files.get(found.group("file"))
            if body is None:
                self._error(404, "EntryNotFound")
                return
            headers = {"X-Repo-Commit": repo.sha, "ETag": f'"{hashlib.sha1(body).hexdigest()}"'}
            wanted = _RANGE.match(self.headers.get("range") or "")
            if wanted:
                start = int(wanted.group(1))
                end = int(wanted.group(2)) + 1 if wanted.group(2) else len(body)
                self._reply(206, body[start:end], headers)  # past the header: nothing (no weights here)
                return
            self._reply(200, body, headers)

    return Handler
