"""vLLM's CUDA-graph memory estimate at start-up: which graphs it captures, and what it reserves.

Why a module of its own: from 0.21 vLLM subtracts this estimate from the KV pool, and the
estimate depends on the capture sizes (``--max-num-seqs``, ``--max-num-batched-tokens``,
speculative tokens), on the compilation mode, and on the model runner, not on the model alone.
Citations are ``file:function@tag``, read from the released wheels (v0.19.0, v0.21.0, v0.25.0,
v0.26.0, v0.27.1, v0.28.0); docs/vllm-memory.md walks through them.
"""

from typing import NamedTuple

from engine.catalog.loader import BatchDefaults, VllmVersion, version_key
from engine.catalog.schema import GpuSpec
from engine.served import ServedModel

#: vllm/config/vllm.py:VllmConfig._set_cudagraph_sizes: the default largest capture size is
#: min(max_num_seqs x decode_query_len x 2, this); 1024 on data-centre Blackwell (sm_100 family) from 0.28
CAPTURE_CAP = 512
CAPTURE_CAP_DC_BLACKWELL = 1024
#: first vLLM version whose default capture list also holds max_num_batched_tokens when it fits (0.21)
APPENDS_MAX_TOKENS_FROM = "0.21"
DC_BLACKWELL_CAP_FROM = "0.28"
#: first modelled version whose model runner V2 is the default for dense attention models (vLLM: 0.25): its
#: GPUModelRunner.profile_cudagraph_memory returns 0, so nothing is reserved (v1/worker/gpu/model_runner.py).
#: Data: vllm.yaml `versions[].dense_runner_v2` (0.25-0.28): a dense model gains the whole estimate (0.2-1.9 GiB
#: per GPU), e.g. Llama 3.3 70B FP8 at 8k on one H100 starts under 0.28 and not under 0.24 (tests/unit/test_ranking.py).
#: From 0.29 V2 runs nearly every model and measures its graphs instead (not modelled: a plan for 0.29+ reserves
#: V1's estimate for every model, engine/context.py, and says so).
#: MoE families whose architecture is on vLLM's DEFAULT_V2_MODEL_RUNNER_ARCHITECTURES list (0.25-0.28):
#: Qwen2MoeForCausalLM, DeepseekV2ForCausalLM
RUNNER_V2_MOE_FAMILIES = ("qwen1.5-moe", "deepseek-v2")


class CaptureSet(NamedTuple):
    """The CUDA graphs vLLM captures, as its profiler counts them (modes PIECEWISE then FULL)."""

    sizes: tuple[int, ...]  # cudagraph_capture_sizes, ascending
    piecewise: int  # graphs of mixed batches: every capture size
    full: int  # FULL decode graphs: sizes from decode_query_len to decode_query_len x max_num_seqs

    @property
    def largest(self) -> int:
        return self.sizes[-1] if self.sizes else 0

    @property
    def profiled_graphs(self) -> int:
        """First capture plus the per-graph extrapolation of profile_cudagraph_memory.

        GPUModelRunner.profile_cudagraph_memory (v1/worker/gpu_model_runner.py, v0.19.0-v0.28.0):
        max over modes of the first (largest) capture + per mode (graphs - 1) x the second capture.
        """
        if not self.sizes:
            return 0
        return 1 + sum(max(n - 1, 0) for n in (self.piecewise, self.full))


def capture_sizes(
    batching: BatchDefaults, behaviour: VllmVersion, gpu: GpuSpec, decode_query_len: int = 1
) -> tuple[int, ...]:
    """vllm/config/vllm.py:VllmConfig._set_cudagraph_sizes (v0.19.0-v0.28.0), default compilation config.

    [1, 2, 4] + range(8, min(cap + 1, 256), 8) + range(256, cap + 1, 16), cap = min(max_num_seqs x
    decode_query_len x 2, 512 (1024 on sm_100 from 0.28), max_num_batched_tokens); from 0.21
    max_num_batched_tokens is appended when it is under the cap. Sequence parallelism (which would
    keep multiples of TP only) is off by default (IS_DENSE = False in the optimization levels).
    """
    version = version_key(behaviour.version)
    ceiling = CAPTURE_CAP
    if version >= version_key(DC_BLACKWELL_CAP_FROM) and (gpu.capability or (0, 0))[0] == 10:
        ceiling = CAPTURE_CAP_DC_BLACKWELL
    tokens = batching.max_num_batched_tokens
    cap = min(batching.max_num_seqs * decode_query_len * 2, ceiling, tokens)
    sizes = [s for s in (1, 2, 4) if s <= cap]
    if cap >= 8:
        sizes += range(8, min(cap + 1, 256), 8)
    if cap >= 256:
        sizes += range(256, cap + 1, 16)
    if version >= version_key(APPENDS_MAX_TOKENS_FROM) and tokens <= cap:
        sizes.append(tokens)
    return tuple(sorted(set(sizes)))


def capture_set(batching: BatchDefaults, behaviour: VllmVersion, gpu: GpuSpec, decode_query_len: int = 1) -> CaptureSet:
    """CudagraphDispatcher.initialize_cudagraph_keys (v1/cudagraph_dispatcher.py) under FULL_AND_PIECEWISE.

    FULL_AND_PIECEWISE is the default cudagraph_mode (config/vllm.py optimization levels O1-O3); attention
    backends with any full-graph support keep it (CompilationConfig.resolve_cudagraph_mode_and_sizes).
    PIECEWISE keys: every capture size; FULL keys: sizes within [q, q x max_num_seqs], q = decode_query_len.
    """
    sizes = capture_sizes(batching, behaviour, gpu, decode_query_len)
    full = [s for s in sizes if decode_query_len <= s <= decode_query_len * batching.max_num_seqs]
    return CaptureSet(sizes, len(sizes), len(full))


def reserves_graph_estimate(served: ServedModel, behaviour: VllmVersion) -> bool:
    """Whether Worker.determine_available_memory subtracts a non-zero CUDA-graph estimate.

    0.21+ subtracts GPUModelRunner.profile_cudagraph_memory (v1/worker/gpu_worker.py). From
    a version whose vllm.yaml entry sets dense_runner_v2 (0.25-0.28)
    (config/vllm.py:VllmConfig._is_default_v2_model_runner_model) a generate model that is not MoE,
    not hybrid (linear attention / Mamba) and not attention-free runs model runner V2, whose
    profile_cudagraph_memory returns 0: its graphs are captured after the KV cache, outside the
    budget (the RTX 4090 0.27.1 log prints 0.0 GiB, the 0.26.0 DeepSeek-V4 log none). A separate
    draft checkpoint (method draft_model) is not supported by V2, so that request stays on V1.
    Vision-language models are kept on V1: the Gemma 4 0.26.0 log shows V1's estimate.
    """
    if not behaviour.subtract_cudagraph_estimate:
        return False
    if not behaviour.dense_runner_v2:
        return True
    arch = served.arch
    draft = served.extras.draft
    if arch.linear_attention or arch.vision or (draft is not None and draft.model is not None):
        return True
    return bool(arch.moe) and served.spec.family not in RUNNER_V2_MOE_FAMILIES


def decode_query_len(served: ServedModel) -> int:
    """1 + num_speculative_tokens (VllmConfig._set_cudagraph_sizes, uniform_decode_query_len)."""
    draft = served.extras.draft
    return 1 + (draft.tokens if draft else 0)
