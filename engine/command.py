"""The `vllm serve` line that starts exactly what a candidate describes: checkpoint, precision, layout, lengths.

For the offline LLM() class (issue 10) the same settings as a Python call: `python -c 'from vllm import LLM;
LLM(model=..., ...)'` loads and profiles exactly what was planned, and the call is what goes into a script.
"""

from __future__ import annotations

import json

from engine.catalog.schema import GpuSpec
from engine.context import PlanContext
from engine.hardware import no_bf16
from engine.serving_extras import extras_flags


def quantizes_on_load(ctx: PlanContext) -> bool:
    """FP8 asked for a checkpoint that is not FP8 and no FP8 release named: vLLM quantizes while loading."""
    served = ctx.served
    return served.fmt.dtype == "fp8" and not ctx.checkpoint_release and served.spec.dtype != "fp8"


def _dtype_flag(ctx: PlanContext, gpu: GpuSpec) -> str | None:
    """`--dtype` when the model must run in another 16/32-bit type than its checkpoint's."""
    served = ctx.served
    if served.fmt.dtype == "fp32" and served.spec.dtype != "fp32":
        return "float32"
    if served.fmt.dtype == "fp16" and served.spec.dtype != "fp16" and not ctx.checkpoint_release:
        return "half"
    if served.fmt.dtype == "bf16" and served.spec.dtype != "bf16" and not no_bf16(gpu):
        return "bfloat16"
    if no_bf16(gpu) and served.fmt.compute == "bf16":
        return "half"
    return None


def vllm_command(ctx: PlanContext, gpu: GpuSpec, tp: int, pp: int, replicas: int, utilization: float) -> str | None:
    """The command, or None when no checkpoint in the planned precision is known (the answer says so)."""
    checkpoint = ctx.checkpoint
    if checkpoint is None:
        return None
    # vLLM refuses a --max-model-len beyond the model's own unless this is set (the answer warns why)
    beyond = ctx.context > ctx.served.arch.max_context
    parts = [f"{'VLLM_ALLOW_LONG_MAX_MODEL_LEN=1 ' if beyond else ''}vllm serve {checkpoint}"]
    if quantizes_on_load(ctx):
        parts.append("--quantization fp8")
    dtype = _dtype_flag(ctx, gpu)
    if dtype:
        parts.append(f"--dtype {dtype}")
    if tp > 1:
        parts.append(f"--tensor-parallel-size {tp}")
    if pp > 1:
        parts.append(f"--pipeline-parallel-size {pp}")
    if replicas > 1:
        parts.append(f"--data-parallel-size {replicas}")
    parts.append(f"--max-model-len {ctx.context}")
    parts.append(f"--gpu-memory-utilization {utilization:.2f}")
    if ctx.request.kv_dtype == "fp8":
        parts.append("--kv-cache-dtype fp8")
    parts.extend(extras_flags(ctx.served.extras, ctx.served.spec))  # issue 10: text-only, drafter, LoRA
    parts += _memory_flags(ctx)
    line = " ".join(parts)
    return llm_call(line) if ctx.request.offline else line


def _literal(value: object) -> str:
    """A Python literal for a JSON value, written with double quotes (the call sits in single shell quotes)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, bool) or value is None:
        return repr(value)
    return json.dumps(value)


def _argument(text: str) -> str:
    """A flag's value as the LLM() keyword takes it: a number, a dict (JSON flags), else a string."""
    try:
        return _literal(json.loads(text))
    except ValueError:
        return json.dumps(text)


#: flags the offline class does not take: data parallelism means one LLM() per replica, in separate processes
_SERVE_ONLY = frozenset({"--data-parallel-size"})


def llm_call(serve_line: str) -> str:
    """`[ENV=1 ]vllm serve MODEL --flag value ...` as `[ENV=1 ]python -c 'from vllm import LLM; LLM(...)'`:
    each --flag-name becomes the keyword flag_name (EngineArgs' own names), a bare flag True."""
    import shlex  # offline plans only: a start-up does not load it

    words = shlex.split(serve_line)
    env = [w for w in words[: words.index("vllm")] if "=" in w]
    model, rest = words[words.index("serve") + 1], words[words.index("serve") + 2 :]
    arguments = [f"model={json.dumps(model)}"]
    at = 0
    while at < len(rest):
        flag = rest[at]
        value = rest[at + 1] if at + 1 < len(rest) and not rest[at + 1].startswith("--") else None
        at += 1 if value is None else 2
        if flag not in _SERVE_ONLY:
            arguments.append(f"{flag.removeprefix('--').replace('-', '_')}={'True' if value is None else _argument(value)}")
    call = f"from vllm import LLM; LLM({', '.join(arguments)})"
    return " ".join([*env, "python", "-c", shlex.quote(call)])


def _memory_flags(ctx: PlanContext) -> list[str]:
    """The memory flags the request set, so the command starts what was planned."""
    req, flags = ctx.request, []
    if req.max_num_seqs:
        flags.append(f"--max-num-seqs {req.max_num_seqs}")
    if req.max_num_batched_tokens:
        flags.append(f"--max-num-batched-tokens {req.max_num_batched_tokens}")
    if req.enforce_eager:
        flags.append("--enforce-eager")
    if req.cpu_offload_gb:
        flags.append(f"--cpu-offload-gb {req.cpu_offload_gb:g}")
    if req.kv_cache_memory_bytes:
        flags.append(f"--kv-cache-memory-bytes {req.kv_cache_memory_bytes}")
    return flags
