"""Read a `vllm serve` command (pasted or given with --command) back into the request it starts.

This is both a question users ask ("will this command OOM on g6e.12xlarge?") and the check that
every command headroom prints starts the plan it describes. Flags that change memory but are not
modelled, and flags that do not matter for memory, are reported -- never silently dropped.
Values of flags that may carry secrets (--api-key, tokens) are never kept.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.errors import ParseError
from engine.parse_extras import EXTRA_FLAGS, read_extra_flag, settle_lora
from engine.request import tokens

#: where a command starts in a message: `vllm serve`, or the OpenAI server module with --model
COMMAND = re.compile(r"(?:\bvllm\s+serve\b|\bpython3?\s+-m\s+vllm\.entrypoints\.openai\.api_server\b)")

_VALUE_FLAGS = {
    "--model": "model", "--quantization": "quantization", "-q": "quantization", "--dtype": "dtype",
    "--kv-cache-dtype": "kv_cache_dtype", "--tensor-parallel-size": "tp", "-tp": "tp",
    "--pipeline-parallel-size": "pp", "-pp": "pp", "--data-parallel-size": "dp", "-dp": "dp",
    "--max-model-len": "max_model_len", "--gpu-memory-utilization": "util",
    "--max-num-seqs": "max_num_seqs", "--max-num-batched-tokens": "max_num_batched_tokens",
    "--cpu-offload-gb": "cpu_offload_gb", "--kv-cache-memory-bytes": "kv_cache_memory_bytes",
    "--kv-cache-memory": "kv_cache_memory_bytes",  # argparse's prefix match: vLLM's own log suggests this spelling
}  # fmt: skip
#: flags that change memory or speed in ways headroom does not model yet: reported with the answer
NOT_MODELLED = frozenset({
    "--enable-lora", "--max-loras", "--max-lora-rank", "--speculative-config", "--swap-space", "--block-size",
    "--enable-chunked-prefill", "--no-enable-chunked-prefill", "--enable-expert-parallel", "--max-cpu-loras",
    "--compilation-config", "-O", "--num-gpu-blocks-override", "--limit-mm-per-prompt", "--mm-processor-kwargs",
})  # fmt: skip
#: flags without a value (a following token is not theirs)
_SWITCHES = frozenset({
    "--trust-remote-code", "--enforce-eager", "--enable-lora", "--disable-log-requests", "--disable-log-stats",
    "--enable-prefix-caching", "--no-enable-prefix-caching", "--enable-chunked-prefill", "--no-enable-chunked-prefill",
    "--enable-expert-parallel", "--enable-auto-tool-choice", "--disable-custom-all-reduce", "--enable-reasoning",
})  # fmt: skip
_SWITCHES = _SWITCHES | {"--language-model-only"}  # issue 10
#: flags known not to change GPU memory: said as unused; any other flag headroom does not read is said as unknown
_NO_MEMORY_EFFECT = frozenset({
    "--host", "--port", "--served-model-name", "--api-key", "--trust-remote-code", "--disable-log-requests",
    "--disable-log-stats", "--enable-auto-tool-choice", "--tool-call-parser", "--reasoning-parser", "--enable-reasoning",
    "--chat-template", "--uvicorn-log-level", "--seed", "--tokenizer", "--tokenizer-mode", "--download-dir",
    "--revision", "--response-role", "--ssl-keyfile", "--ssl-certfile", "--root-path", "--max-log-len",
    "--generation-config", "--allowed-local-media-path", "--enable-prefix-caching", "--no-enable-prefix-caching",
    "--async-scheduling", "--load-format", "--hf-token", "--config-format",
})  # fmt: skip
_SECRET = re.compile(r"key|token|secret|password", re.IGNORECASE)
_WEIGHT_QUANT = {"fp8": "fp8", "fbgemm_fp8": "fp8", "awq": "int4", "awq_marlin": "int4", "gptq": "int4",
                 "gptq_marlin": "int4", "modelopt_fp4": "fp4", "mxfp4": "mxfp4"}  # fmt: skip
_DTYPES = {"half": "fp16", "float16": "fp16", "bfloat16": "bf16", "float": "fp32", "float32": "fp32", "auto": "auto"}


@dataclass
class ServeCommand:
    """The request fields a command sets, and what of it headroom did not use."""

    fields: dict[str, object] = field(default_factory=dict)
    not_modelled: list[str] = field(default_factory=list)  # flags that matter but are not modelled
    ignored: list[str] = field(default_factory=list)  # flags that do not change memory
    unknown: list[str] = field(default_factory=list)  # flags headroom does not know: not used, maybe not harmless
    words: list[str] = field(default_factory=list)  # words after the command that are not flags ("on g6e.xlarge")
    prose: str = ""  # the words around the command ("will this OOM on g6e.12xlarge?")
    quantization: str | None = None  # --quantization as written (awq, gptq, fp8, ...)


def split_command(text: str) -> tuple[str, str] | None:
    """(command, the rest of the message) when the message holds a command; None otherwise."""
    found = COMMAND.search(text)
    if not found:
        return None
    tail = text[found.start() :].replace("\\\n", " ")
    line_end = tail.find("\n")
    command = tail if line_end < 0 else tail[:line_end]
    rest = text[: found.start()] + " " + ("" if line_end < 0 else tail[line_end:])
    return command.strip().strip("`"), rest


#: the longest command read: shlex's tokenizer is quadratic in a token's length (a 1 MB paste took 22 s)
MAX_COMMAND_CHARS = 8_000


def read_command(command: str) -> ServeCommand:
    """Flags and their values; raises ParseError when the command cannot be read (no model, bad numbers)."""
    if len(command) > MAX_COMMAND_CHARS:
        raise ParseError("command_too_long", chars=len(command), limit=MAX_COMMAND_CHARS)
    text = command.replace("`", " ").replace("\u2014", "--").replace("\u2013", "--")  # Slack/macOS turn -- into a dash
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise ParseError("command_unreadable", reason=str(exc)) from exc
    read = ServeCommand()
    raw: dict[str, str] = {}
    extras: dict[str, object] = {}  # issue 10
    i = _start(words)
    while i < len(words):
        word = words[i]
        flag, _, inline = word.partition("=") if word.startswith("-") else ("", "", "")
        if flag.startswith("--"):
            flag = "--" + flag[2:].replace("_", "-")  # vLLM accepts --tensor_parallel_size too
        if not flag:
            if "model" in raw:
                read.words.append(word)  # prose after the command: read with the rest of the message
            else:
                raw["model"] = word  # the positional model of `vllm serve MODEL`
            i += 1
            continue
        following = words[i + 1] if i + 1 < len(words) else ""
        # a flag takes the next word as its value unless it is a known switch, has its value inline
        # (--x=1, -O3), or the next word is itself a flag
        takes_value = (
            flag not in _SWITCHES and not inline and bool(following) and not following.startswith("-")
            and not (flag.startswith("-") and not flag.startswith("--") and len(flag) > 3)
        )  # fmt: skip
        value = inline or (following if takes_value else "")
        i += 2 if takes_value else 1
        if flag in _VALUE_FLAGS:
            raw[_VALUE_FLAGS[flag]] = value
        elif flag in EXTRA_FLAGS:  # issue 10: text-only VLM, drafter, LoRA (engine/parse_extras.py)
            extra = read_extra_flag(flag, value)
            if extra is None:
                read.not_modelled.append(f"{flag} {value}".strip())
            else:
                extras.update(extra)
        elif flag == "--enforce-eager":  # a switch; argparse's BooleanOptionalAction-style "=false" turns it off
            raw["enforce_eager"] = "false" if inline.lower() in {"false", "0", "no", "off"} else "true"
        elif flag in NOT_MODELLED:
            read.not_modelled.append(flag if flag in _SWITCHES else f"{flag} {value}".strip())
        else:
            said = flag if _SECRET.search(flag) or flag in _SWITCHES else f"{flag} {value}".strip()
            (read.ignored if flag in _NO_MEMORY_EFFECT else read.unknown).append(said)
    if "model" not in raw:
        raise ParseError("command_without_model")
    extras, unused = settle_lora(extras)  # issue 10
    read.fields = _fields(raw) | extras
    read.quantization = raw.get("quantization", "").lower() or None
    read.ignored += unused
    return read


def _start(words: list[str]) -> int:
    """Index after `vllm serve` / `-m vllm.entrypoints.openai.api_server` (leading env assignments allowed)."""
    for i, word in enumerate(words):
        if word == "serve" and i and words[i - 1].endswith("vllm"):
            return i + 1
        if word == "vllm.entrypoints.openai.api_server":
            return i + 1
    return 0


def _number(raw: dict[str, str], key: str, convert: Callable[[str], object]) -> object:
    try:
        return convert(raw[key])
    except ValueError as exc:
        flag = next((f for f, field in _VALUE_FLAGS.items() if field == key and f.startswith("--")), key)
        raise ParseError("command_bad_value", flag=flag, value=raw[key]) from exc


def _fields(raw: dict[str, str]) -> dict[str, object]:
    fields: dict[str, object] = {"model": raw["model"], "model_note": None}
    quant = raw.get("quantization", "").lower()
    if quant in _WEIGHT_QUANT:
        fields["weights"] = _WEIGHT_QUANT[quant]
    elif quant and quant not in {"compressed-tensors", "modelopt", "none"}:
        raise ParseError("command_quantization", method=quant)
    dtype = raw.get("dtype", "auto").lower()
    if _DTYPES.get(dtype) == "fp32" and "weights" not in fields:
        fields["weights"] = "fp32"  # half / bfloat16 change the activation type, not the bytes per weight
    kv = raw.get("kv_cache_dtype", "auto").lower()
    if kv.startswith("fp8"):
        fields["kv_dtype"] = "fp8"
    for key, name in (("tp", "tp"), ("pp", "pp"), ("dp", "replicas")):
        # vLLM's defaults are 1: a command without them runs on one GPU, whatever the instance has
        fields[name] = _number(raw, key, int) if key in raw else 1
    if "max_model_len" in raw:
        fields["context_tokens"] = _number(raw, "max_model_len", tokens)
    if "util" in raw:
        fields["gpu_memory_utilization"] = _number(raw, "util", float)
    for key, convert in (("max_num_seqs", int), ("max_num_batched_tokens", int), ("cpu_offload_gb", float),
                         ("kv_cache_memory_bytes", int)):  # fmt: skip
        if key in raw:
            fields[key] = _number(raw, key, convert)
    if raw.get("enforce_eager") == "true":
        fields["enforce_eager"] = True
    return fields
