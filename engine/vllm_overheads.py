"""vLLM's memory outside PyTorch's allocator, and the engine arguments that change the budget.

Why a separate module: the non-torch term is the one that depends on how the GPUs are
wired (NVLink/NVSwitch, PCIe, several nodes), and it was the biggest error on PCIe
instances (g5/g6/g6e/g7e). Each term names the vLLM code it mirrors; the derivation
and the data behind the fitted constants are in docs/vllm-memory.md.
"""

from typing import NamedTuple

from engine.catalog.loader import Catalog
from engine.request import Request

MIB = 2**20


class Topology(NamedTuple):
    """How the GPUs of one tensor-parallel group talk: what vLLM's all-reduce set-up looks at."""

    interconnect: str = "nvlink"  # nvlink | pcie | none
    tp_spans_nodes: bool = False


class EngineArgs(NamedTuple):
    """`vllm serve` flags that change start-up memory; None = vLLM's default for the device."""

    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    enforce_eager: bool = False
    cpu_offload_gb: float = 0.0
    kv_cache_memory_bytes: int | None = None
    offline: bool = False  # the LLM() class: UsageContext.LLM_CLASS picks other batch defaults


NO_ARGS = EngineArgs()


def engine_args(req: Request) -> EngineArgs:
    """The memory-relevant `vllm serve` flags a request sets."""
    return EngineArgs(
        max_num_seqs=req.max_num_seqs,
        max_num_batched_tokens=req.max_num_batched_tokens,
        enforce_eager=req.enforce_eager,
        cpu_offload_gb=req.cpu_offload_gb or 0.0,
        kv_cache_memory_bytes=req.kv_cache_memory_bytes,
        offline=req.offline,
    )

#: what callers that name no wiring get: the NVLink H100s the fitted constants were read off
NVLINK = Topology()


def custom_allreduce_enabled(catalog: Catalog, tp: int, topology: Topology) -> bool:
    """Whether vLLM allocates its custom all-reduce IPC buffers for this TP group.

    Mirrors CustomAllreduce.__init__ / finalize_p2p in
    vllm/distributed/device_communicators/custom_all_reduce.py (0.17-0.28): disabled when the
    group spans nodes, for a world size outside [2, 4, 6, 8], for more than two GPUs that are
    not fully NVLink-connected, and when P2P is missing (two PCIe GPUs: assumed present).
    """
    rules = catalog.vllm.allreduce
    if tp == 1 or topology.tp_spans_nodes or tp not in rules.custom_world_sizes:
        return False
    return topology.interconnect == "nvlink" or tp == 2


def non_torch_gib(catalog: Catalog, tp: int, pp: int, topology: Topology) -> float:
    """Growth of non-torch memory over vLLM's profiling run, per GPU (`non_torch_increase`).

    vllm/utils/mem_utils.py memory_profiling: CUDA memory in use minus torch's reserved
    memory, after profile_run() minus at the worker's init snapshot. NCCL connects lazily
    (NCCL_RUNTIME_CONNECT, default since NCCL 2.22), so the channel buffers of the
    algorithms the first large all-reduces pick are allocated inside that window: over
    NVSwitch that includes NVLS and many P2P channels (~2 GiB, read off H100 logs); over
    PCIe a ring over a few channels, next to nothing. Plus the custom all-reduce buffers.
    """
    fitted = catalog.vllm.fitted
    if tp == 1:
        return fitted.non_torch_pp_only_gib if pp > 1 else fitted.non_torch_single_gib
    if topology.interconnect == "nvlink":
        # the fitted NVLink line already holds the custom all-reduce buffers of the H100 runs
        return fitted.non_torch_tp_base_gib + fitted.non_torch_tp_per_rank_gib * tp
    custom = catalog.vllm.allreduce.custom_buffer_mib * MIB / 2**30 if custom_allreduce_enabled(catalog, tp, topology) else 0.0
    return fitted.non_torch_tp_pcie_gib + custom
