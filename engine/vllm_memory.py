"""vLLM's start-up memory accounting, per GPU, by version.

vLLM sizes its KV pool as
``gpu_memory_utilization x visible memory - weights - activation peak - non-torch memory``
(minus an estimate of CUDA-graph memory from 0.21, which follows the capture sizes:
engine/vllm_cudagraphs.py). The activation peak is what its profiling run allocates: a
forward pass of ``max_num_batched_tokens`` tokens and a dummy sampler pass over
``max_num_seqs x vocab`` logits, on top of a MoE model's fused-experts workspace. Both
defaults depend on the GPU, so the same model has a different peak on an L4 than on an H100.
"""

import math
from typing import NamedTuple

from engine.catalog.loader import BatchDefaults, Catalog, VllmVersion, version_key
from engine.catalog.schema import GpuSpec
from engine.dtypes import PLAIN_BYTES
from engine.extra_memory import multimodal_peak_gib
from engine.hardware import expert_alignment
from engine.served import GIB, ServedModel, Stage, pipeline_stages, serve
from engine.vllm_cudagraphs import capture_set, decode_query_len, reserves_graph_estimate
from engine.vllm_overheads import NO_ARGS, NVLINK, EngineArgs, Topology, non_torch_gib

#: where a GPU's CUDA-visible memory is unknown, scale the nominal figure like the H100's (79.19 / 80)
VISIBLE_FRACTION_FALLBACK = 79.19 / 80.0


def visible_gib(gpu: GpuSpec, memory_mib: float | None = None) -> float:
    """Total memory CUDA reports; for a fractional GPU slice, the slice."""
    if memory_mib is not None and memory_mib / 1024 < gpu.memory_gib * 0.9:
        return memory_mib / 1024 * VISIBLE_FRACTION_FALLBACK
    if gpu.memory_cuda_gib:
        return gpu.memory_cuda_gib
    return gpu.memory_gib * VISIBLE_FRACTION_FALLBACK


def batch_defaults(
    catalog: Catalog, gpu: GpuSpec, visible: float, args: EngineArgs = NO_ARGS, version: str | None = None
) -> BatchDefaults:
    """max_num_batched_tokens / max_num_seqs: the flags where set, else vLLM's default for this device.

    EngineArgs._set_default_args (vllm/engine/arg_utils.py) matches "a100" in the device name, so
    both A100s get the small defaults whatever their memory; the offline LLM() class
    (UsageContext.LLM_CLASS) has defaults of its own (vllm.yaml batching.offline_*). From 0.28
    (`version`, the vllm.yaml entry; None: before it) a device of >= 160 GiB gets vllm.yaml batching.huge in
    both contexts (EngineArgs.get_batch_defaults, read in the 0.28.0-0.33.0 wheels, absent from 0.27.1's).
    """
    rules = catalog.vllm.batching
    excluded = any(name in gpu.name.lower() for name in rules.large_excluded_device_names)
    large = visible >= rules.large_gpu_min_gib and not excluded
    if version is not None and version_key(version) >= version_key(rules.huge_from) and visible >= rules.huge_gpu_min_gib:
        found = rules.huge
    elif args.offline:
        found = rules.offline_large if large else rules.offline_small
    else:
        found = rules.large if large else rules.small
    if args.max_num_seqs is None and args.max_num_batched_tokens is None:
        return found
    return BatchDefaults(
        max_num_batched_tokens=args.max_num_batched_tokens or found.max_num_batched_tokens,
        max_num_seqs=args.max_num_seqs or found.max_num_seqs,
    )


class StageMemory(NamedTuple):
    """Per-GPU memory of one pipeline stage, in GiB."""

    stage: Stage
    weights: float
    activation: float
    non_torch: float
    cudagraph: float
    usable: float
    kv_pool: float
    kv_bytes_per_token: int
    kv_tokens: int
    workspace: float = 0.0  # of the activation: the fused-MoE workspace vLLM keeps (0.27+ logs count it as consumed)

    @property
    def loads(self) -> bool:
        return self.kv_pool > 0


class MemoryBudget(NamedTuple):
    """What vLLM will report at start-up for one replica (TP x PP GPUs)."""

    visible_gib: float
    utilization: float
    batching: BatchDefaults
    stages: tuple[StageMemory, ...]
    block_size: int
    context: int
    max_concurrency: float  # "Maximum concurrency for <context> tokens per request"
    kv_tokens: int  # "GPU KV cache size: N tokens", as this vLLM version prints it
    binding: StageMemory  # the stage with the fewest KV tokens sets the replica's capacity
    loads: bool  # every stage has a positive KV pool

    @property
    def capacity_tokens(self) -> int:
        """Tokens the pool holds if every layer kept full context (block-rounded)."""
        return self.binding.kv_tokens


class ActivationTerms(NamedTuple):
    """The byte counts of vLLM's profiling run that the fitted constants multiply (benchmarks/fit.py reads them)."""

    forward: float  # hidden states + widest projections of max_num_batched_tokens tokens, per GPU
    hidden_states: float
    logits: int  # min(max_num_seqs, max_num_batched_tokens) x vocab: the dummy sampler run's logits
    logit_bytes: int  # the compute dtype the logits come out in
    workspace: float = 0.0  # the fused-MoE kernel's workspace, kept by the workspace manager (persistent)


#: GPUs whose FP8 MoE layers run vLLM's TritonExperts (oracle/fp8.py:_get_priority_backends): Ada has no
#: CUTLASS grouped GEMM or DeepGEMM, Hopper puts Triton first for block FP8 under TP (per-tensor FP8 goes to
#: CutlassExpertsFp8, whose workspace_shapes ask for the same two buffers, swapped), and sm_120 (RTX PRO /
#: RTX 50) has neither DeepGEMM nor FlashInfer's block-FP8 CUTLASS path. sm_100 picks DeepGEMM/FlashInfer.
TRITON_FP8_MOE_CAPABILITIES = ((8, 9), (9, 0), (12, 0))


def triton_moe_experts(served: ServedModel, gpu: GpuSpec | None) -> bool:
    """Whether the routed experts run vLLM's modular TritonExperts kernel (the default we can size).

    16-bit weights: oracle/unquantized.py:select_unquantized_moe_backend (v0.19.0-v0.28.0) picks TRITON
    on CUDA unless VLLM_USE_FLASHINFER_MOE_FP16 is set. FP8: see TRITON_FP8_MOE_CAPABILITIES. MXFP4
    (gpt-oss: OAITritonMxfp4ExpertsMonolithic), INT4 (Marlin) and NVFP4 kernels size their own scratch.
    """
    if served.arch.moe is None:
        return False
    if served.fmt.dtype in ("bf16", "fp16", "fp32"):
        return True
    return served.fmt.dtype == "fp8" and gpu is not None and gpu.capability in TRITON_FP8_MOE_CAPABILITIES


def moe_workspace_bytes(served: ServedModel, tokens: int, tp: int, act: int) -> float:
    """TritonExperts.workspace_shapes through FusedMoEKernel._allocate_buffers (fused_moe/modular_kernel.py).

    workspace13 = (M, topk, max(N/2, K)) shared with the (M, K) output, workspace2 = (M, topk, max(N, K)),
    N = 2 x expert intermediate / TP (w13 per rank), K = hidden, M = the profile batch's tokens, in the
    activation dtype, each rounded up to 256 B (v1/worker/workspace.py:WorkspaceManager.get_simultaneous,
    which keeps the buffer for the life of the worker). v0.17 cut M at VLLM_FUSED_MOE_CHUNK_SIZE (16,384);
    v0.19+ do not chunk.
    """
    moe = served.arch.moe
    assert moe is not None
    n = 2 * moe.expert_intermediate // tp
    hidden = served.arch.hidden
    first = max(tokens * moe.active * max(n // 2, hidden), tokens * hidden) * act
    second = tokens * moe.active * max(n, hidden) * act
    return float(-(-first // 256) * 256 + -(-second // 256) * 256)


def activation_terms(served: ServedModel, batching: BatchDefaults, tp: int, gpu: GpuSpec | None = None) -> ActivationTerms:
    arch = served.arch
    act = PLAIN_BYTES[served.fmt.compute]
    tokens = batching.max_num_batched_tokens
    hidden_states = tokens * arch.hidden * act
    workspace = 0.0
    if arch.moe:
        shared = arch.moe.shared_experts * 3 * arch.moe.shared_intermediate
        if triton_moe_experts(served, gpu):
            workspace = moe_workspace_bytes(served, tokens, tp, act)
            width = shared  # the routed experts' intermediates live in the workspace
        else:
            width = arch.moe.active * 3 * arch.moe.expert_intermediate + shared
    else:
        width = 3 * arch.intermediate
    qkv = (arch.heads + 2 * arch.kv_heads) * arch.head_dim
    forward = 2 * hidden_states + tokens * act * (width + qkv) / tp
    seqs = min(batching.max_num_seqs, tokens)
    return ActivationTerms(forward, hidden_states, seqs * arch.vocab, act, workspace)


def activation_peak_gib(
    served: ServedModel,
    catalog: Catalog,
    batching: BatchDefaults,
    tp: int,
    last_stage: bool,
    gpu: GpuSpec | None = None,
    terms: ActivationTerms | None = None,
) -> float:
    """Torch peak during vLLM's profiling run, per GPU (``terms``: activation_terms' answer, when the caller has it).

    Forward pass: hidden states plus the widest MLP / attention projections of
    max_num_batched_tokens tokens. Last pipeline stage: the dummy sampler run over
    max_num_seqs x vocab logits, which dominates for large vocabularies
    (GPUModelRunner.profile_run -> _dummy_sampler_run). sampler_bytes_per_logit is the sampler's
    working set per logit on top of the logits themselves: an fp32 copy (4 B), fp32 softmax
    probabilities (4 B) and the top-k/top-p sort's fp32 values (4 B) make 12 B; the fitted
    value (benchmarks/fit.py, ~12.5) adds the caching allocator's rounding of those blocks.
    A MoE model's fused-experts workspace is allocated by the forward pass and kept, so it sits
    under the sampler run's peak too (memory_profiling counts it in torch_peak_increase).
    """
    fitted = catalog.vllm.fitted
    terms = terms or activation_terms(served, batching, tp, gpu)
    peak = terms.forward
    if last_stage:
        sampler = terms.hidden_states + terms.logits * (fitted.sampler_bytes_per_logit + terms.logit_bytes)
        peak = max(terms.forward, sampler)
    return fitted.activation_base_gib + (terms.workspace + peak) / GIB


class GraphProfile(NamedTuple):
    """What vLLM's CUDA-graph profile measures that does not depend on a stage's layers."""

    first_gib: float  # the largest graph's activations (the graph pool), per GPU
    graphs: int  # graphs the profile counts (0: nothing captured, nothing estimated)


def graph_profile(
    served: ServedModel, gpu: GpuSpec, batching: BatchDefaults, tp: int, behaviour: VllmVersion
) -> GraphProfile:
    """The capture sizes vLLM profiles on this GPU, and the largest one's activations."""
    graphs = capture_set(batching, behaviour, gpu, decode_query_len(served))
    if not graphs.profiled_graphs:
        return GraphProfile(0.0, 0)
    largest = BatchDefaults(max_num_batched_tokens=graphs.largest, max_num_seqs=batching.max_num_seqs)
    return GraphProfile(activation_terms(served, largest, tp, gpu).forward / GIB, graphs.profiled_graphs)


def cudagraph_estimate_gib(catalog: Catalog, profile: GraphProfile, layers: int) -> float:
    """GPUModelRunner.profile_cudagraph_memory (v1/worker/gpu_model_runner.py, v0.19.0-v0.28.0), per GPU.

    vLLM captures the largest graph of each mode, then the second largest, reading free memory
    around each: estimate = max over modes of the first capture + per mode (graphs - 1) x the
    second capture. The first capture holds the largest size's activations (the graph pool) plus
    one graph's own memory; each further graph costs about the same driver-side memory, which grows
    with the kernels it records, so with the decoder layers on this GPU (fitted:
    cudagraph_base_gib + cudagraph_gib_per_layer x layers, per graph; benchmarks/fit.py).
    """
    if not profile.graphs:
        return 0.0
    fitted = catalog.vllm.fitted
    return profile.first_gib + profile.graphs * (fitted.cudagraph_base_gib + fitted.cudagraph_gib_per_layer * layers)


def memory_budget(
    served: ServedModel,
    catalog: Catalog,
    gpu: GpuSpec,
    tp: int,
    pp: int,
    behaviour: VllmVersion,
    context: int,
    utilization: float | None = None,
    memory_mib: float | None = None,
    topology: Topology = NVLINK,
    args: EngineArgs = NO_ARGS,
) -> MemoryBudget:
    align = expert_alignment(gpu, served)
    if align != served.expert_align:
        served = serve(served.spec, served.fmt.dtype, served.kv_dtype, align, catalog.memo, served.extras)
    visible = visible_gib(gpu, memory_mib)
    util = utilization or behaviour.gpu_memory_utilization
    batching = batch_defaults(catalog, gpu, visible, args, behaviour.version)
    block = catalog.vllm.block_size
    usable = util * visible
    # per-stage memory does not depend on the request's context: memoised on the served model
    key = ("stages", gpu.id, tp, pp, behaviour, round(usable, 6), batching, block, topology, args)
    stages = served.memo.get(
        key, _compute_stages, served, catalog, gpu, tp, pp, behaviour, usable, batching, block, topology, args
    )
    concurrency = _max_concurrency(served, stages, batching, block, context, tp, pp)
    binding = stages[0] if len(stages) == 1 else min(stages, key=lambda s: (s.kv_tokens, s.kv_pool))
    reported = int(concurrency * context) if behaviour.tokens_from_concurrency else binding.kv_tokens
    loads = all(s.kv_pool > 0 for s in stages)
    return MemoryBudget(visible, util, batching, stages, block, context, concurrency, reported, binding, loads)


def _compute_stages(
    served: ServedModel,
    catalog: Catalog,
    gpu: GpuSpec,
    tp: int,
    pp: int,
    behaviour: VllmVersion,
    usable: float,
    batching: BatchDefaults,
    block: int,
    topology: Topology,
    args: EngineArgs,
) -> tuple[StageMemory, ...]:
    """Weights, activation peak, runtime and KV pool of each pipeline stage, per GPU.

    --cpu-offload-gb moves decoder-layer parameters to the host, per GPU, until the budget is spent
    (maybe_offload_to_cpu, applied in make_layers; embeddings and lm_head stay). --enforce-eager
    captures no CUDA graph, so nothing is estimated for it. --kv-cache-memory-bytes skips the
    profile's arithmetic and is the pool (Worker.determine_available_memory).
    """
    fitted = catalog.vllm.fitted
    terms = activation_terms(served, batching, tp, gpu)  # the same profile batch on every stage
    workspace = terms.workspace / GIB
    non_torch = non_torch_gib(catalog, tp, pp, topology)
    graphs = None
    if reserves_graph_estimate(served, behaviour) and not args.enforce_eager:
        graphs = graph_profile(served, gpu, batching, tp, behaviour)  # only the layers differ between stages
    stages = []
    for stage in pipeline_stages(served.arch.layers, pp):
        offloaded = min(args.cpu_offload_gb * GIB, served.stage_layer_bytes(stage, tp))
        weights = (served.stage_weight_bytes(stage, tp) - offloaded) / GIB
        activation = activation_peak_gib(served, catalog, batching, tp, stage.last, gpu, terms)
        # issue 10: the encoder's dummy batch (engine/extra_memory.py)
        activation = multimodal_peak_gib(
            served, fitted.activation_base_gib, batching.max_num_batched_tokens, batching.max_num_seqs, tp,
            activation, stage.first,
        )  # fmt: skip
        cudagraph = 0.0 if graphs is None else cudagraph_estimate_gib(catalog, graphs, stage.layer_count)
        pool = usable - weights - activation - non_torch - cudagraph
        if args.kv_cache_memory_bytes is not None:
            pool = args.kv_cache_memory_bytes / GIB
        per_token = served.kv_bytes_per_token(tp, stage if pp > 1 else None)
        blocks = math.floor(pool * GIB / (per_token * block)) if pool > 0 and per_token else 0
        stages.append(
            StageMemory(
                stage, weights, activation, non_torch, cudagraph, usable, pool, per_token, blocks * block, workspace
            )
        )
    return tuple(stages)


def _max_concurrency(
    served: ServedModel,
    stages: tuple[StageMemory, ...],
    batching: BatchDefaults,
    block: int,
    context: int,
    tp: int,
    pp: int,
) -> float:
    """vLLM's "Maximum concurrency for N tokens per request": KV blocks over the blocks one request pins."""
    best = math.inf
    for stage in stages:
        per_request = served.kv_bytes_per_request(
            context, tp, batching.max_num_batched_tokens, stage.stage if pp > 1 else None, block
        )
        usable = stage.kv_tokens * stage.kv_bytes_per_token
        best = min(best, usable / per_request if per_request else math.inf)
    return max(0.0, best)
