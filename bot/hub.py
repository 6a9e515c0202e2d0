"""Models the catalog lacks, read from the Hugging Face Hub: the only module that talks to the Hub.

`huggingface_hub` does the I/O (imported on first use: `headroom plan` for a catalog model never loads
it) and honours HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE and its own disk cache as it always does. What
is read: the model's info (its commit), config.json, and the safetensors headers by HTTP range reads
-- never the weights. The result (config + a small summary of the headers) is kept as JSON in the
headroom cache folder, so a second question needs no network and works offline; the engine maps it
onto a ModelSpec (engine/hub_model.py). Every failure is a HeadroomError with its own wording: a
shape is never guessed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from bot.cache_files import write_atomically
from engine.errors import HeadroomError
from engine.hub_model import HubFiles, hub_spec, text_config, wanted_repo, with_models
from engine.hub_weights import quantization, summarise

if TYPE_CHECKING:
    from engine.catalog.loader import Catalog
    from engine.service import Turn

#: seconds one Hub request may take before the answer says the Hub is unreachable
HUB_TIMEOUT_S = 5.0
#: how long a cached read is used without asking the Hub again (offline or unreachable: any age)
HUB_CACHE_TTL_S = 24 * 3600
#: the largest config.json read (real ones are a few kB) and safetensors index (a few MB for the largest models)
MAX_CONFIG_BYTES = 1 << 20
MAX_INDEX_BYTES = 64 << 20
#: the most safetensors shards whose headers are read (the largest real repos have a few hundred)
MAX_SHARDS = 2000
INDEX_FILE = "model.safetensors.index.json"
#: bump when engine.hub_weights.summarise changes what a summary means: older cached reads are then not used
SUMMARY_VERSION = 1


log = logging.getLogger("headroom.hub")


class HubError(HeadroomError):
    """The Hub could not give a model's files (gated, not found, unreachable, rate-limited, offline)."""


def offline() -> bool:
    """HF_HUB_OFFLINE as huggingface_hub reads it (its constants, set when it is imported)."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _tensors(metadata: Any) -> dict[str, tuple[str, list[int]]]:
    found: dict[str, tuple[str, list[int]]] = {}
    for file_metadata in metadata.files_metadata.values():
        for name, info in file_metadata.tensors.items():
            found[name] = (str(info.dtype), [int(n) for n in info.shape])
    return found


class HubReader:
    """Reads a repo's files from the Hub (or the cache) into HubFiles; one per process, thread-safe (no state
    but the cache folder)."""

    def __init__(self, cache_dir: Path, timeout_s: float = HUB_TIMEOUT_S, ttl_s: float = HUB_CACHE_TTL_S) -> None:
        self.folder = cache_dir / "hub"
        self.timeout_s = timeout_s
        self.ttl_s = ttl_s

    def _path(self, repo: str) -> Path:
        return self.folder / f"{hashlib.sha256(repo.lower().encode()).hexdigest()[:24]}.v{SUMMARY_VERSION}.json"

    def cached(self, repo: str, max_age_s: float | None = None) -> HubFiles | None:
        """The cached read of `repo` (None when absent, unreadable, or older than `max_age_s`)."""
        try:
            data = json.loads(self._path(repo).read_text(encoding="utf-8"))
            if max_age_s is not None and time.time() - float(data["read_at"]) > max_age_s:
                return None
            return HubFiles.model_validate(data["files"])
        except (OSError, ValueError, KeyError, TypeError, ValidationError):
            return None

    def remember(self, repo: str, files: HubFiles) -> None:
        """Write the read atomically (a temp file renamed), so a reader never sees half a file; a cache folder
        that cannot be written (read-only, full) only means the next question reads the Hub again."""
        body = json.dumps({"read_at": time.time(), "files": files.model_dump(mode="json")})
        try:
            write_atomically(self._path(repo), body)
        except OSError as exc:
            log.warning("could not cache the Hub read in %s: %s", self.folder, type(exc).__name__)

    def read(self, repo: str) -> HubFiles:
        """Cache first (fresh), then the Hub; when the Hub fails, any cached read rather than no answer."""
        fresh = self.cached(repo, self.ttl_s)
        if fresh is not None:
            return fresh
        if offline():
            stale = self.cached(repo)
            if stale is None:
                raise HubError("hub_offline", repo=repo)
            return stale
        try:
            files = self.fetch(repo)
        except HubError as exc:
            stale = self.cached(repo)
            if stale is None or exc.code not in {"hub_unreachable", "hub_rate_limited"}:
                raise
            return stale
        self.remember(repo, files)
        return files

    def fetch(self, repo: str) -> HubFiles:
        """config.json and the safetensors headers of the repo's current commit, from the Hub."""
        from huggingface_hub import HfApi, hf_hub_download
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()  # its shard-parsing bar would write to the terminal and the bot's stderr

        # HF_ENDPOINT and the Hub cache folder, read per call: the same variables the library reads when imported
        endpoint = os.environ.get("HF_ENDPOINT") or None
        home = os.environ.get("HF_HOME")
        cache = os.environ.get("HF_HUB_CACHE") or (str(Path(home) / "hub") if home else None)
        api = HfApi(endpoint=endpoint)
        with _hub_errors(repo):
            info = api.model_info(repo, timeout=self.timeout_s)
            revision = str(info.sha or "main")

            def download(name: str) -> Path:
                return Path(hf_hub_download(info.id, name, revision=revision, endpoint=endpoint,
                                            etag_timeout=self.timeout_s, cache_dir=cache))  # fmt: skip

            config = _json_file(download("config.json"), MAX_CONFIG_BYTES, repo)
            if any(s.rfilename == INDEX_FILE for s in info.siblings or ()):  # sharded: count before reading headers
                index = _json_file(download(INDEX_FILE), MAX_INDEX_BYTES, repo)
                weight_map = index.get("weight_map") if isinstance(index, dict) else None
                shards = len(set(weight_map.values())) if isinstance(weight_map, dict) else 0
                if shards > MAX_SHARDS:
                    raise HubError("hub_too_many_shards", repo=repo, shards=shards, limit=MAX_SHARDS)
            metadata = api.get_safetensors_metadata(info.id, revision=revision, timeout=self.timeout_s)
        if not isinstance(config, dict):
            raise HubError("hub_no_config", repo=repo)
        layers = text_config(config).get("num_hidden_layers")
        weights = summarise(
            layers if isinstance(layers, int) else 0, _tensors(metadata), quantization(info.id, config).bits
        )
        return HubFiles(repo=info.id, revision=revision, config=config, weights=weights)


def _json_file(path: Path, limit: int, repo: str) -> Any:
    """A downloaded JSON file, refused when larger than `limit` bytes (checked before it is read) or not JSON."""
    if path.stat().st_size > limit:
        raise HubError("hub_file_too_large", repo=repo, file=path.name, limit_mib=limit >> 20)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:  # not JSON, or not UTF-8
        raise HubError("hub_no_config" if path.name == "config.json" else "hub_no_safetensors", repo=repo) from exc


@contextlib.contextmanager
def _hub_errors(repo: str):  # noqa: ANN202 - a context manager
    """huggingface_hub's exceptions as HubErrors with codes the templates word (never its messages: they may
    echo URLs and headers)."""
    from huggingface_hub import errors
    from huggingface_hub.utils import _http  # its HTTP client module (httpx or httpx2, by version)

    client: Any = getattr(_http, "httpx2", None) or getattr(_http, "httpx")  # noqa: B009

    try:
        yield
    except errors.GatedRepoError as exc:
        raise HubError("hub_gated", repo=repo) from exc
    except (errors.RepositoryNotFoundError, errors.RevisionNotFoundError) as exc:
        raise HubError("hub_not_found", repo=repo) from exc
    except errors.NotASafetensorsRepoError as exc:
        raise HubError("hub_no_safetensors", repo=repo) from exc
    except errors.OfflineModeIsEnabled as exc:
        raise HubError("hub_offline", repo=repo) from exc
    except errors.LocalEntryNotFoundError as exc:  # the Hub did not answer in time (an EntryNotFoundError too)
        raise HubError("hub_unreachable", repo=repo, reason="timed out") from exc
    except errors.EntryNotFoundError as exc:  # no config.json: not a transformers model (a GGUF-only repo, say)
        raise HubError("hub_no_config", repo=repo) from exc
    except errors.HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else 0
        if status == 429:
            raise HubError("hub_rate_limited", repo=repo) from exc
        if status in (401, 403):
            raise HubError("hub_gated", repo=repo) from exc
        raise HubError("hub_unreachable", repo=repo, reason=f"HTTP {status}") from exc
    except errors.SafetensorsParsingError as exc:
        raise HubError("hub_no_safetensors", repo=repo) from exc
    except client.TimeoutException as exc:
        raise HubError("hub_unreachable", repo=repo, reason="timed out") from exc
    except (client.HTTPError, OSError) as exc:
        raise HubError("hub_unreachable", repo=repo, reason="no connection") from exc


def reader_for(cache_dir: Path) -> HubReader:
    """The reader the CLI uses: $HEADROOM_HUB_TIMEOUT_S seconds per Hub request (default 5)."""
    try:
        timeout = float(os.environ.get("HEADROOM_HUB_TIMEOUT_S") or HUB_TIMEOUT_S)
    except ValueError:
        timeout = HUB_TIMEOUT_S
    return HubReader(cache_dir, timeout_s=timeout if timeout > 0 else HUB_TIMEOUT_S)


def resolve_hub(
    turn: Turn, ask: Callable[[Catalog], Turn], catalog: Catalog, reader: HubReader,
    progress: Callable[[str], None] | None = None,
) -> tuple[Turn, Catalog]:  # fmt: skip
    """When `turn` is waiting for a Hub repo the catalog lacks, read it, add it to the catalog and `ask` again.

    Returns the turn and the catalog it was answered with. `progress(repo)` is called before a read that
    needs the network (not for a cached one)."""
    from engine.service import Turn

    for _ in range(2):  # a question names at most one model the catalog lacks; a second pass is a safety net
        repo = wanted_repo(turn.error) if turn.kind == "error" else None
        if repo is None:
            return turn, catalog
        if progress is not None and reader.cached(repo, reader.ttl_s) is None:
            progress(repo)
        try:
            spec = hub_spec(reader.read(repo))
        except HeadroomError as exc:
            if exc.code == "hub_not_found" and turn.error:  # a typo of a catalog id: offer the closest names
                exc.suggestions = exc.suggestions or list(turn.error.suggestions)
            return Turn("error", error=exc), catalog
        catalog = with_models(catalog, [spec])
        turn = ask(catalog)
    return turn, catalog
