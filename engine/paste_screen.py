"""A first look at a message before the paste reader is loaded: can it be a vLLM log or traceback at all?

Why: the reader's ~70 signal and log-shape patterns take longer to compile than a whole plan takes to
compute, and most messages are questions ("llama 3.3 70b fp8 8k"). Every one of those patterns
needs some literal text to match (``tests/unit/test_paste_screen.py`` derives each pattern's required
text from the pattern itself and checks that a marker here is inside it), so a message with none of
these markers cannot look like a paste, and a message with one is read in full as before.
"""

from __future__ import annotations

MARKERS: tuple[str, ...] = (
    # log levels, file positions, tracebacks
    "INFO", "WARNING", "ERROR", "DEBUG", "CRITICAL", ".py:", '", line ', "Traceback", "Error: ", "Exception: ",
    # vLLM's start-up lines
    "vLLM", "LLM engine", "Memory profiling", "CUDA", "Tried to allocate", "total_gpu_memory", "Free memory on device",
    "process group", "To serve at least one request", "maximum number of tokens", "cache blocks", "blocks: ",
    "KV cache", "KV Cache", "kv_cache_size=", "memory utilization", "Model loading", "Loading model weights",
    "on startup", "Maximum concurrency", "init engine", "Graph capturing", "EngineCore", "Engine core",
    "startup complete", "Uvicorn",
    # failures
    "HIP out of memory", "OutOfMemoryError", "CUBLAS_STATUS", "compute capability", "not supported", "float16",
    "FlashAttention", "kernel image", "is not compatible", "NCCL", "nccl", "Watchdog", "DistBackendError",
    "peer access", "executing method", "processing method", "Custom allreduce", "P2P", "Model architectures",
    "model architecture", "Transformers", "block_",
)  # fmt: skip


def may_be_paste(text: str) -> bool:
    """False only when no paste pattern can match ``text`` (checked against every pattern by the tests)."""
    return any(marker in text for marker in MARKERS)
