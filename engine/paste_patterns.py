"""What vLLM prints, as compiled patterns: the wordings the paste reader (engine/paste_reader.py) recognises.

Kept apart from the reader so each wording has one place, next to the versions it comes from, and the reader
stays a short scan-and-decide loop. Patterns run over a whole paste start with literal words (the regex engine
then skips ahead with a fast substring search) and bound every repetition, so a 1 MB paste cannot make one
backtrack; the few anchored at line starts run on a sample. Wordings were read from real pastes
(tests/pastes/corpus.json, whose README lists them) and vLLM's source. The strings the reader keeps pass
through `keep` (secrets redacted) at the end of this module.
"""

from __future__ import annotations

import re
from types import MappingProxyType

# --- outcomes a signal can stand for -----------------------------------------------------------

KV_TOO_SMALL = "kv_too_small_for_max_len"
NO_BLOCKS = "no_cache_blocks"
OOM = "cuda_oom"
GPU = "unsupported_on_gpu"
NCCL = "nccl_or_p2p"
MODEL = "unsupported_model"
FP8_BLOCK = "fp8_block_split"  # TP cut a block-quantized FP8 layer mid-block
HEALTHY = "healthy_startup"
UNRECOGNISED = "unrecognised"
FAILURES = frozenset({KV_TOO_SMALL, NO_BLOCKS, OOM, GPU, NCCL, MODEL, FP8_BLOCK})
KINDS = (KV_TOO_SMALL, NO_BLOCKS, OOM, GPU, NCCL, MODEL, FP8_BLOCK, HEALTHY, UNRECOGNISED)  # a PasteReading's kind
#: a start-up that got past vLLM's memory checks (overrides any earlier failure in the paste)
READY = "ready"
#: start-up progress before the memory checks end (healthy only when no failure is seen)
PROGRESS = "progress"
SETUP = "setup"  # NCCL / P2P set-up lines: the diagnosis only when the paste stops there (a hang)
GENERIC = "generic"  # an exception or "failed to start" that names no known cause
#: "Maximum concurrency ... : Xx": the value decides (0 -> no blocks, < 1 -> too small, else ready)
CONCURRENCY = "concurrency"

_N = r"(-?\d{1,9}(?:\.\d{1,6})?)"  # a printed number
_INT = r"(\d{1,3}(?:,\d{3}){1,4}|\d{1,12})"  # an integer, maybe with thousands separators

#: (pattern, outcome): every line that says what happened. Order does not matter; position in the paste does.
SIGNALS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), outcome)
    for pattern, outcome in (
        # KV cache smaller than one request at max-model-len. V1 (v0.8+, "models's" until 2026) and V0 (tokens).
        (r"To serve at least one request with the models?'s max seq len", KV_TOO_SMALL),
        (r"is larger than the maximum number of tokens that can be stored in KV cache", KV_TOO_SMALL),
        # No memory left for the KV cache at all, and its V0 / V1 fingerprints when the message is cut off.
        (r"No available memory for the cache blocks", NO_BLOCKS),
        (r"blocks: 0\b(?<=(?:GPU|uda|UDA) blocks: 0)", NO_BLOCKS),
        (r"Available KV cache memory: -\d", NO_BLOCKS),
        (r"reserved for KV Cache is (?:only )?-\d", NO_BLOCKS),
        (r"kv_cache_size=-\d", NO_BLOCKS),
        (r"GPU KV cache size: 0 tokens", NO_BLOCKS),
        # CUDA OOM: PyTorch's message (all shapes), graph capture's CUDA error, vLLM's sampler warm-up wrapper,
        # and the V1 start-up check that the requested share of the GPU is free.
        (r"CUDA out of memory", OOM),
        (r"HIP out of memory", OOM),
        (r"OutOfMemoryError", OOM),
        (r"CUDA error: out of memory", OOM),
        (r"CUBLAS_STATUS_ALLOC_FAILED", OOM),
        (r"is less than desired GPU memory utilization", OOM),
        # dtype / quantization / kernels the GPU cannot run.
        (r"is only supported on GPUs with compute capability", GPU),
        (r"GPUs with compute capability below \d", GPU),
        (r"is not supported for the current GPU", GPU),
        (r"Quantization scheme is not supported for", GPU),
        (r"does not support float16", GPU),
        (r"FlashAttention only supports Ampere GPUs or newer", GPU),
        (r"no kernel image is available for execution on the device", GPU),
        (r"with CUDA capability sm_\d{2,3} is not compatible with the current PyTorch", GPU),
        # NCCL / P2P failures. "process group has NOT been destroyed" and destroy_process_group() warnings are
        # shutdown noise after another error and deliberately absent.
        (r"NCCL error", NCCL),
        (r"nccl(?:Remote|System|Internal|UnhandledCuda|InvalidUsage|InvalidArgument)Error", NCCL),
        (r"Watchdog caught collective operation timeout", NCCL),
        (r"DistBackendError", NCCL),
        (r"peer access is not supported between these two devices", NCCL),
        (r"Error executing method '?init_device\b", NCCL),
        (r"while processing method '?init_device\b", NCCL),
        (r"Custom allreduce is disabled\b", SETUP),
        (r"Found nccl from library", SETUP),
        (r"vLLM is using nccl==", SETUP),
        (r"GPU P2P access cache", SETUP),
        # architecture not in this vLLM, or its class failed to import (a broken install).
        (r"Model architectures \[[^\]\n]{0,400}\] (?:are not supported|failed to be inspected)", MODEL),
        (r"Error in inspecting model architecture", MODEL),
        (r"has no vLLM implementation", MODEL),
        (r"Transformers does not recognize this architecture", MODEL),
        # fp8_utils.validate_fp8_block_shape / the block-FP8 fused-MoE check: a TP shard is not whole blocks.
        (r"is not divisible by\s+weight quantization block_[nk]\b", FP8_BLOCK),
        # healthy: past the memory checks, or serving.
        (r"Maximum concurrency for " + _INT + r" tokens per request: " + _N + "x", CONCURRENCY),
        (r"Starting vLLM API server", READY),
        (r"Application startup complete", READY),
        (r"Uvicorn running on", READY),
        (r"init engine \(profile, create kv cache, warmup model\) took", READY),
        (r"Graph capturing finished in", READY),
        (r"Available KV cache memory: \d", PROGRESS),
        (r"GPU KV cache size: [1-9]", PROGRESS),
        (r"blocks: [1-9](?<=(?:GPU|uda|UDA) blocks: [1-9])", PROGRESS),
        (r"reserved for KV Cache is (?:only )?\d", PROGRESS),
        (r"Model loading took \d", PROGRESS),
        (r"Loading model weights took \d", PROGRESS),
        (r"on startup\. Desired GPU memory utilization is", PROGRESS),
        # an exception nobody above explains.
        (r"Traceback \(most recent call last\)", GENERIC),
        (r"EngineCore failed to start", GENERIC),
        (r"Engine core initialization failed", GENERIC),
        (r"Error: ", GENERIC),
        (r"Exception: ", GENERIC),
    )
)  # fmt: skip

#: figures printed anywhere in the paste: (pattern, the numbers key of each group). The last print wins.
FIGURES: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = tuple(
    (re.compile(pattern), keys)
    for pattern, keys in (
        (r"Model loading took " + _N + r" ?GiB", ("weights_gib",)),
        (r"Loading model weights took " + _N + r" ?GB", ("weights_gib",)),
        (r"model weights take " + _N + r" ?GiB", ("weights_gib",)),
        # V1 (0.10+) memory summary, "weight" until 0.26 and "consumed memory (weights + non-torch)" after
        (r"Actual usage is " + _N + r" GiB for weight,\s{1,4}" + _N + r" GiB for peak activation,\s{1,4}" + _N
         + r" GiB for non-torch memory,\s{1,4}and " + _N + " GiB for CUDAGraph memory",
         ("weights_gib", "activation_peak_gib", "non_torch_gib", "cudagraph_gib")),
        (r"Actual usage is " + _N + r" GiB for consumed memory \(weights \+ non-torch\),\s{1,4}" + _N
         + r" GiB for peak activation,\s{1,4}and " + _N + " GiB for CUDAGraph memory",
         ("weights_and_non_torch_gib", "activation_peak_gib", "cudagraph_gib")),
        (r"Available KV cache memory: " + _N + r" ?GiB", ("kv_cache_gib",)),
        (r"reserved for KV Cache is (?:only )?" + _N + r" ?GiB", ("kv_cache_gib",)),
        (r"kv_cache_size=" + _N + r"GiB", ("kv_cache_gib",)),
        (r"Current kv cache memory in use is " + _N + r" GiB", ("kv_cache_gib",)),
        (r"reserved " + _N + r" GiB memory for KV Cache as specified by kv_cache_memory_bytes", ("kv_cache_memory_set_gib",)),
        (r"Initial free memory " + _N + r" GiB", ("free_at_start_gib",)),
        (r"GPU KV cache size: " + _INT + r" tokens", ("kv_cache_tokens",)),
        (r"Maximum concurrency for " + _INT + r" tokens per request: " + _N + "x", ("max_concurrency_tokens", "max_concurrency")),
        (r"non_torch_memory takes " + _N + r" ?GiB", ("non_torch_gib",)),
        (r"non_torch_memory=" + _N + r"GiB", ("non_torch_gib",)),
        (r"PyTorch activation peak memory takes " + _N + r" ?GiB", ("activation_peak_gib",)),
        (r"peak_torch_memory=" + _N + r"GiB", ("peak_torch_gib",)),
        (r"total_gpu_memory \(" + _N + r" ?GiB\) x gpu_memory_utilization \(" + _N + r"\) = " + _N + r" ?GiB",
         ("total_gpu_memory_gib", "gpu_memory_utilization", "budget_gib")),
        (r"total_gpu_memory=" + _N + r"GiB", ("total_gpu_memory_gib",)),
        (r"Free memory on device[\w: ]{0,16}\(" + _N + "/" + _N + r" GiB\) on startup",
         ("free_at_start_gib", "total_gpu_memory_gib")),
        (r"Desired GPU memory utilization is \(" + _N + ", " + _N + r" GiB\)", ("gpu_memory_utilization", "budget_gib")),
        (r"gpu_memory_utilization[=:]\s?'?" + _N, ("gpu_memory_utilization",)),
        (r"'gpu_memory_utilization': " + _N, ("gpu_memory_utilization",)),
        (r"--gpu[-_]memory[-_]util(?:ization)?[= ]" + _N, ("gpu_memory_utilization",)),
        (r"CUDA graph pool memory: " + _N + r" GiB \(actual\), " + _N + r" GiB \(estimated\)",
         ("cudagraph_gib", "cudagraph_estimated_gib")),
        (r"Graph capturing finished in \d{1,6} secs?, took " + _N + " GiB", ("cudagraph_gib",)),
        (r"GPU blocks: " + _INT, ("gpu_blocks",)),
        (r"(?:cuda|CUDA) blocks: " + _INT, ("gpu_blocks",)),
        (r"num_gpu_blocks is: " + _INT, ("gpu_blocks",)),
        (r"tensor_parallel_size[=:]\s?'?" + _INT, ("tp",)),
        (r"'tensor_parallel_size': " + _INT, ("tp",)),
        (r"pipeline_parallel_size[=:]\s?'?" + _INT, ("pp",)),
        (r"'pipeline_parallel_size': " + _INT, ("pp",)),
        (r"max_seq_len=" + _INT, ("max_model_len",)),
        (r"Using max model len " + _INT, ("max_model_len",)),
        (r"'max_model_len': " + _INT, ("max_model_len",)),
        (r"max_num_batched_tokens=" + _INT, ("max_num_batched_tokens",)),
        (r"'max_num_batched_tokens': " + _INT, ("max_num_batched_tokens",)),
        (r"max_num_seqs=" + _INT, ("max_num_seqs",)),
        (r"'max_num_seqs': " + _INT, ("max_num_seqs",)),
        (r"compute capability of at least " + _N, ("min_capability",)),
        (r"compute capability below " + _N, ("min_capability",)),
        (r"GPU has compute capability " + _N, ("gpu_capability",)),
    )
)  # fmt: skip

# Figures read inside one failure message, after its lines are joined and all whitespace removed -- people
# paste messages hard-wrapped, even inside words ("KV cach" / "e is needed").
SQUASHED: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = tuple(
    (re.compile(pattern), keys)
    for pattern, keys in (
        (r"maxseqlen\((\d{1,12})\)", ("max_model_len",)),
        (r"storedinKVcache\((\d{1,12})\)", ("max_tokens_in_cache",)),
        (r"\(?(\d{1,9}(?:\.\d{1,6})?)GiBKVcacheisneeded", ("kv_needed_gib",)),
        (r"availableKVcachememory\((-?\d{1,9}(?:\.\d{1,6})?)GiB\)", ("kv_available_gib",)),
        (r"estimatedmaximummodellengthis(\d{1,12})", ("estimated_max_model_len",)),
        (r"warmingupsamplerwith(\d{1,9})dummyrequests", ("sampler_warmup_requests",)),
        (r"Min(?:imum)?capability:(\d{2,3})", ("min_capability_x10",)),
        (r"Currentcapability:(\d{2,3})", ("gpu_capability_x10",)),
    )
)  # fmt: skip
#: PyTorch's OOM figures: (pattern, keys, whether each number is followed by its unit group)
OOM_FIGURES: tuple[tuple[re.Pattern[str], tuple[str, ...], bool], ...] = tuple(
    (re.compile(pattern), keys, with_units)
    for pattern, keys, with_units in (
        (r"Triedtoallocate(\d{1,9}(?:\.\d{1,6})?)([KMG]i?B)", ("oom_tried_gib",), True),
        # current and PyTorch 2.1 ("total capacty") shapes
        (r"GPU\d{1,3}hasatotalcapac?i?t?y?of(\d{1,9}(?:\.\d{1,6})?)([KMG]i?B)", ("oom_total_gib",), True),
        (r"ofwhich(\d{1,9}(?:\.\d{1,6})?)([KMG]i?B)isfree", ("oom_free_gib",), True),
        # PyTorch < 2.1: "(GPU 0; 44.56 GiB total capacity; 27.91 GiB already allocated; 565.31 MiB free; ..."
        (r"\(GPU\d{1,3};(\d{1,9}(?:\.\d{1,6})?)([KMG]i?B)totalcapac?i?t?y?;(\d{1,9}(?:\.\d{1,6})?)([KMG]i?B)alreadyallocated;"
         r"(\d{1,9}(?:\.\d{1,6})?)([KMG]i?B)free", ("oom_total_gib", "oom_by_pytorch_gib", "oom_free_gib"), True),
        (r"(?:thisprocesshas|Process\d{1,10}has)(\d{1,9}(?:\.\d{1,6})?)([KMG]i?B)memoryinuse", ("oom_in_use_gib",), True),
        (r"Oftheallocatedmemory(\d{1,9}(?:\.\d{1,6})?)([KMG]i?B)isallocatedbyPyTorch", ("oom_by_pytorch_gib",), True),
        (r"(\d{1,9}(?:\.\d{1,6})?)([KMG]i?B)allocatedinprivatepools", ("oom_private_pools_gib",), True),
        # V1 start-up check: free/total on the device, then (utilization, requested GiB)
        (r"Freememoryondevice[\w:]{0,16}\((\d{1,9}(?:\.\d{1,6})?)/(\d{1,9}(?:\.\d{1,6})?)GiB\)onstartupislessthandesiredGPUmemory"
         r"utilization\((\d{1,9}(?:\.\d{1,6})?),(\d{1,9}(?:\.\d{1,6})?)GiB\)",
         ("oom_free_gib", "oom_total_gib", "gpu_memory_utilization", "budget_gib"), False),
    )
)  # fmt: skip

UNITS = MappingProxyType({"KiB": 2**-20, "KB": 2**-20, "MiB": 2**-10, "MB": 2**-10, "GiB": 1.0, "GB": 1.0})
#: keys whose figures are counts (tokens, blocks, sizes), kept as int
INTEGER_KEYS = frozenset({
    "max_model_len", "max_tokens_in_cache", "estimated_max_model_len", "kv_cache_tokens", "max_concurrency_tokens",
    "gpu_blocks", "tp", "pp", "max_num_batched_tokens", "max_num_seqs", "sampler_warmup_requests",
})  # fmt: skip

#: where in start-up a CUDA OOM happened: traceback frames, most specific phase first
PHASE_FRAMES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("sampler_warmup", re.compile(r"warming up sampler|_dummy_sampler_run")),
    ("cuda_graphs", re.compile(r"capture_end|capture_begin|capture_model|torch\.cuda\.graph\(|_capture_cudagraphs|"
                               r"Capturing CUDA graph|Capturing cudagraphs|cudagraph_capture")),
    ("profiling", re.compile(r"profile_run|determine_available_memory|determine_num_available_blocks|_dummy_run")),
    ("loading", re.compile(r"load_model|load_weights|is less than desired GPU memory utilization")),
)  # fmt: skip
#: start-up progress lines: the last one printed before an OOM says what was running (None: can't tell)
PHASE_MARKERS: tuple[tuple[str | None, re.Pattern[str]], ...] = (
    ("loading", re.compile(r"Starting to load model|Loading model weights(?! took)|Loading safetensors checkpoint")),
    ("profiling", re.compile(r"Model loading took|Loading model weights took|model weights take")),
    (None, re.compile(r"Available KV cache memory|GPU KV cache size|\b(?:GPU|cuda|CUDA) blocks:|Maximum concurrency")),
    ("cuda_graphs", re.compile(r"Capturing CUDA graph|Capturing cudagraphs|Capturing the model for CUDA graphs")),
    (None, re.compile(r"Graph capturing finished|init engine \(profile|Starting vLLM API server")),
)  # fmt: skip
TRACEBACK = re.compile(r"Traceback \(most recent call last\)")

#: the vLLM version, most trustworthy first: printed by vLLM itself, then package pins, images and prose
_VER = r"(\d{1,2}\.\d{1,3}(?:\.\d{1,4}){0,2}(?:\.?(?:post|rc|dev|a|b)\d{0,6}){0,3}(?:\+[0-9A-Za-z.]{1,60})?)"
VERSIONS: tuple[re.Pattern[str], ...] = (
    re.compile(r"vLLM API server version " + _VER),
    re.compile(r"LLM engine \(v" + _VER + r"\)"),
    re.compile(r"[vV][lL][lL][mM] ?(?:==|=|-)v?" + _VER),
    re.compile(r"vllm-openai:v" + _VER),
    re.compile(r"[vV][lL][lL][mM] [vV]ersion(?: is|:)? ?v?" + _VER),
    re.compile(r"vLLM v" + _VER),
)
#: the model: as vLLM printed it, then in Python, then a "Model: org/name" line in the prose
MODELS: tuple[re.Pattern[str], ...] = (
    re.compile(r"with config: model=['\"]?([^'\",\s]{1,300})"),
    re.compile(r"'model': '([^'\n]{1,300})'"),
    re.compile(r"LLM\(\s{0,4}model\s?=\s?['\"]([^'\"\n]{1,300})['\"]"),
    re.compile(r"(?im)^[ \t*>-]{0,6}model\**[ \t]?[:：][ \t]?\**[ \t]?([\w.\-]{1,100}/[\w.\-]{1,200})"),
)
#: GPU names: vLLM's capability message, nvidia-smi / collect_env lists, a "GPU: ..." line, MoE config file names
GPU_IN_MESSAGES = (
    re.compile(r"Your ([\w .\-]{2,60}?) GPU has compute capability"),
    re.compile(r"(NVIDIA [\w .\-]{2,60}?) with CUDA capability sm_\d"),
)
GPU_LISTED = re.compile(
    r"(?m)^[ \t|]{0,8}(?:GPU )?(\d{1,2}):?[ \t]{1,6}((?:NVIDIA|Tesla|Quadro)\b[\w .\-]{1,60}?)"
    r"(?:[ \t]{1,8}\(UUID[^\n]{0,80}|[ \t]{1,8}\d{3,7} ?MiB|[ \t]{2,40}(?:On|Off)[ \t]{1,8}\|[^\n]{0,120})?[ \t]{0,8}$"
)
GPU_SAID = re.compile(r"(?im)^[ \t*>-]{0,6}(?:nvidia )?gpus?[ \t]?(?:model)?[ \t]?[:：][ \t]?([^\n]{2,60})$")
GPU_WORDS = re.compile(r"(?i)\b(?:rtx|gtx|tesla|quadro|a10g|l40s?|l4|t4|[ahbv]\d{2,3}|gh200|mi\d{3}|arc)\b")
GPU_COUNT_NAME = re.compile(r"^(\d{1,2})\s?[x×*]\s?(.+)$")
GPU_CONFIG_FILE = re.compile(r"device_name=(NVIDIA_[\w\-]{2,60})")
SMI_MEMORY = re.compile(r"MiB[ \t]{0,4}/[ \t]{0,4}(\d{3,7})MiB")
#: the command line and what it is made of
COMMANDS = (
    re.compile(r"vllm[ \t]{1,4}serve\b"),
    re.compile(r"python3?[ \t]{1,4}(?:-m[ \t]{1,4}vllm\.entrypoints\.(?:openai\.)?api_server|[\w./-]{0,200}api_server\.py)\b"),
)  # fmt: skip
FLAG_BLOCK = re.compile(r"--model[ =]\S")  # compose files: flags one per line, the first at the start of a line
SHELL_VAR = re.compile(r"\$\{?([A-Z_][A-Z0-9_]{0,60})\}?")
UNDERSCORE_FLAG = re.compile(r"(?<=\s)--([A-Za-z0-9]{1,40}(?:_[A-Za-z0-9]{1,40}){1,6})")
ARCHITECTURES = re.compile(r"Model architectures \[([^\]\n]{0,400})\]|inspecting model architecture '(\w{1,100})'")
QUOTED = re.compile(r"'([^'\n]{0,200})'")
#: text before the message in a line that carries an error: "[Bug]: ValueError: ", "Value error, ", quotes
MESSAGE_LEAD = re.compile(r"^.{0,200}?(?:\b[A-Z]\w{0,40}(?:Error|Exception):\s|Value error,\s)")
CUSTOM_ALLREDUCE = re.compile(r"Custom allreduce is disabled(?: because| due to)? ?([^\n]{0,300})")

CONTINUATION = re.compile(r"\\[ \t]*\n")  # a shell line continued with a backslash
TERMINAL = re.compile(r"[.)!?:\]'\"]$")  # a line that ends a sentence (so the next one is not its wrap)
#: a line's prefixes: indentation, quotes, CI / compose columns, "(EngineCore_DP0 pid=1)", "[rank0]:", log headers
LINE_PREFIX = re.compile(
    r"\s{1,12}|`{1,3}|>\s?|[-*]\s|\|\s|\+\s"
    r"|[\w.-]{1,40}\s{1,8}\|\s"
    r"|\([A-Za-z_][\w-]{0,40}(?:,?\s[\w-]{1,16}=[\w.:-]{1,60}){1,4}\)\s?"
    r"|\[rank\d{1,5}\]:\s?"
    r"|(?:INFO|WARNING|ERROR|DEBUG|CRITICAL)\s{1,2}\d\d-\d\d\s\d\d:\d\d:\d\d(?:\.\d{1,6})?\s"
    r"(?:\[[\w.]{1,80}:\d{1,6}\]|[\w.]{1,80}:\d{1,6}\])\s?"
    r"|\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[,.]\d{1,6})?\s?(?:\|\s?\w{1,10}\s?\|\s?\w{1,20}\s?\|\s?"
    r"|-\s\w{1,10}\s-\s[\w.]{1,60}:\d{1,6}\s-\s|\w{1,10}\s)?"
)
#: log lines, tracebacks, vLLM lines no signal covers: with SIGNALS, what makes a message a paste
LOG_SHAPE: tuple[re.Pattern[str], ...] = tuple(
    re.compile(pattern)
    for pattern in (
        r"(?:INFO|WARNING|ERROR|DEBUG|CRITICAL)\s{1,2}\d\d-\d\d\s\d\d:\d\d:\d\d", r"\.py:\d{1,6}\]",
        r"File \"[^\"\n]{1,300}\", line \d", r"vLLM API server version", r"LLM engine \(v\d",
        r"Memory profiling (?:takes|results)", r"CUDA graph pool memory: \d", r"Tried to allocate \d",
        r"total_gpu_memory[ =(]", r"Free memory on device[\w: ]{0,16}\(", r"process group has NOT been destroyed",
    )
)  # fmt: skip
#: the level of a log line whose exception was handled: "WARNING ... ImportError: ..." is no failure
QUIET_LEVEL = re.compile(r"\b(?:INFO|WARNING|WARN|DEBUG)\b")
#: a model id or path (what `vllm serve` is followed by), not a word of prose ("vllm serve with ...")
MODEL_LIKE = re.compile(r"[/.:\-]")

# --- secrets and the strings kept --------------------------------------------------------------

_SECRET_VALUE = r"(?:\"[^\"\n]*\"|'[^'\n]*'|[\"']?[^\s&'\",;)}\]]+)"
_SECRETS = re.compile(
    r"hf_[\w\-]{12,}"  # "_" and "-" too: tokens pasted together are one run, redacted whole
    r"|(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[A-Z0-9]{12,}"
    r"|sk-[\w\-]{12,}|\bgh[pousr]_[\w\-]{12,}|\bxox[abposr]-[A-Za-z0-9\-]{6,}|\bxapp-[A-Za-z0-9\-]{6,}"
    r"|\beyJ[\w\-]{8,}\.[\w\-]{8,}\.[\w\-]{4,}"
    r"|(?<=[?&;])(?i:[\w\-]{0,40}(?:token|key|secret|password|passwd|pwd|signature|sig|credential))=[^\s&'\"]+"
)
#: a secret after its name: `--api-key X`, `HF_TOKEN=X`, `"api_key": "X"`, `password: X`, `Bearer X`
_NAMED_SECRET = re.compile(
    r"(?i)(--[\w\-]{0,40}?(?:key|token|secret|password|passwd)['\"]?(?:[= ]|,\s{0,4})\s{0,4}"
    r"|(?:token|api[_\-]?key|access[_\-]?key|secret|password|passwd|credentials?|authorization)['\"]?"
    r"\s{0,4}[=:]\s{0,4}(?:(?:bearer|basic|token)\s{1,4})?"
    r"|\bbearer\s{1,4})" + _SECRET_VALUE
)
_URL_CREDENTIALS = re.compile(r"([A-Za-z][\w+.\-]{0,20}://)[^\s/@:]+:[^\s/@]+@")
TRIM = 300  # the longest string kept


def redact(text: str) -> str:
    """Secrets out of a string the reader keeps: values become ***, the name before them stays."""
    text = _URL_CREDENTIALS.sub(r"\1***:***@", text)
    text = _NAMED_SECRET.sub(lambda m: m.group(1) + "***", text)
    return _SECRETS.sub("***", text)


def keep(text: str | None) -> str | None:
    """A string safe to keep: a token cut by the length limit is dropped (so no secret is split), then redacted."""
    if not text:
        return None
    if len(text) > 4 * TRIM:
        text = text[: max(0, *(text.rfind(c, 0, 4 * TRIM) for c in " \t\n"))]
    text = redact(text).strip()
    return text[:TRIM] or None


def strip_prefix(line: str) -> str:
    """A log line without its prefixes: "(EngineCore_DP0 pid=1) ERROR 10-25 13:08:43 [core.py:708] X" -> "X"."""
    for _ in range(8):
        m = LINE_PREFIX.match(line)
        if not m or not m.end():
            break
        line = line[m.end() :]
    return line
