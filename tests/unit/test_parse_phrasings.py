"""Free text -> Request: ≥150 phrasings, each with its expected normalised Request."""

from __future__ import annotations

import pytest

from engine.catalog.loader import Catalog
from engine.parse import ParseError, parse_request
from engine.request import Request
from tests.support import VIEWS

L33 = "meta-llama/Llama-3.3-70B-Instruct"
L31_8 = "meta-llama/Llama-3.1-8B-Instruct"
L31_405 = "meta-llama/Llama-3.1-405B-Instruct"
Q25_72 = "Qwen/Qwen2.5-72B-Instruct"
Q3_32 = "Qwen/Qwen3-32B"
MIX7 = "mistralai/Mixtral-8x7B-Instruct-v0.1"
MIX22 = "mistralai/Mixtral-8x22B-Instruct-v0.1"
DSR1 = "deepseek-ai/DeepSeek-R1"
OSS120 = "openai/gpt-oss-120b"
G3_27 = "google/gemma-3-27b-it"

# (text, expected fields). A bare size ("70B") is marked with BARE, a near spelling ("lama") with FUZZY:
# the answer must state how it read the model.
BARE = "__bare__"
FUZZY = "__fuzzy__"
PHRASINGS: list[tuple[str, dict]] = [
    # --- the design page's examples
    ("70B fp8 8k context", {"model": L33, "weights": "fp8", "context_tokens": 8192, BARE: True}),
    ("llama 3.3 70b fp8 with 32k ctx", {"model": L33, "weights": "fp8", "context_tokens": 32768}),
    ("Qwen/Qwen3-32B 128k bf16", {"model": Q3_32, "weights": "bf16", "context_tokens": 131072}),
    ("mixtral 8x7b int4 16 users", {"model": MIX7, "weights": "int4", "concurrency": 16}),
    ("deepseek r1 fp8 on p5en", {"model": DSR1, "weights": "fp8", "families": ("p5en",)}),
    ("gpt-oss-120b 64k, 50 concurrent", {"model": OSS120, "context_tokens": 65536, "concurrency": 50}),
    ("405b bf16 32k under $60/h", {"model": L31_405, "weights": "bf16", "context_tokens": 32768, "max_usd_per_hour": 60, BARE: True}),
    ("8b fp16 4k on g5.xlarge?", {"model": L31_8, "weights": "fp16", "context_tokens": 4096, "instance": "g5.xlarge", BARE: True}),
    ("compare g6e.24xlarge vs g7e.12xlarge for 70b fp8", {"model": L33, "weights": "fp8", "compare": ("g6e.24xlarge", "g7e.12xlarge"), BARE: True}),
    ("llama 3.1 8b bf16 on 2x H100 tp 2 util 0.95 max-model-len 8192",
     {"model": L31_8, "weights": "bf16", "gpu": "h100-sxm", "gpus": 2, "tp": 2, "gpu_memory_utilization": 0.95, "context_tokens": 8192}),
    ("@headroom llama 3.3 70b fp8 8k context", {"model": L33, "weights": "fp8", "context_tokens": 8192}),
    # a count of instances said without an "x" ("on 2 p5en.48xlarge"); after "tp" a number is the degree
    ("deepseek r1 fp8 on 2 p5en.48xlarge with pp 2", {"model": DSR1, "weights": "fp8", "instance": "p5en.48xlarge", "nodes": 2, "pp": 2}),
    ("llama 3.1 8b tp 8 p5.48xlarge", {"model": L31_8, "tp": 8, "instance": "p5.48xlarge"}),
    ("can qwen2.5 72b bf16 serve 20 users at 32k?", {"model": Q25_72, "weights": "bf16", "concurrency": 20, "context_tokens": 32768}),
    # --- models by family and version
    ("llama 3.3 70b", {"model": L33}),
    ("Llama 3.3 70B", {"model": L33}),
    ("LLAMA-3.3-70B", {"model": L33}),
    ("llama3.3 70b", {"model": L33}),
    ("meta-llama/Llama-3.3-70B-Instruct", {"model": L33}),
    ("https://huggingface.co/meta-llama/Llama-3.3-70B-Instruct please", {"model": L33}),
    ("RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic", {"model": "RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic", "weights": "fp8"}),
    ("Qwen/Qwen2.5-72B-Instruct-AWQ 16 users", {"model": "Qwen/Qwen2.5-72B-Instruct-AWQ", "weights": "int4", "concurrency": 16}),
    ("llama 3.1 8b", {"model": L31_8}),
    ("llama 3.1 405b fp8", {"model": L31_405, "weights": "fp8"}),
    ("llama 3.2 1b", {"model": "meta-llama/Llama-3.2-1B-Instruct"}),
    ("llama 3.2 3b", {"model": "meta-llama/Llama-3.2-3B-Instruct"}),
    ("llama 2 70b", {"model": "meta-llama/Llama-2-70b-chat-hf"}),
    ("llama 2 7b", {"model": "meta-llama/Llama-2-7b-chat-hf"}),
    ("llama 3 70b", {"model": "meta-llama/Meta-Llama-3-70B-Instruct"}),
    ("llama 4 scout", {"model": "meta-llama/Llama-4-Scout-17B-16E-Instruct"}),
    ("llama 4 maverick fp8", {"model": "meta-llama/Llama-4-Maverick-17B-128E-Instruct", "weights": "fp8"}),
    ("codellama 34b", {"model": "codellama/CodeLlama-34b-Instruct-hf"}),
    ("qwen3 32b", {"model": Q3_32}),
    ("Qwen3-32B", {"model": Q3_32}),
    ("qwen 3 32b", {"model": Q3_32}),
    ("qwen3 0.6b", {"model": "Qwen/Qwen3-0.6B"}),
    ("qwen2.5 0.5b", {"model": "Qwen/Qwen2.5-0.5B-Instruct"}),
    ("qwen2.5 7b", {"model": "Qwen/Qwen2.5-7B-Instruct"}),
    ("qwen 2.5 72b", {"model": Q25_72}),
    ("qwen2.5-coder-32b", {"model": "Qwen/Qwen2.5-Coder-32B-Instruct"}),
    ("qwq 32b", {"model": "Qwen/QwQ-32B"}),
    ("qwen3-30b-a3b", {"model": "Qwen/Qwen3-30B-A3B"}),
    ("qwen3 235b a22b", {"model": "Qwen/Qwen3-235B-A22B"}),
    ("A22B fp8", {"model": "Qwen/Qwen3-235B-A22B", "weights": "fp8"}),
    ("qwen3 next 80b a3b", {"model": "Qwen/Qwen3-Next-80B-A3B-Instruct"}),
    ("deepseek r1", {"model": DSR1}),
    ("DeepSeek-R1", {"model": DSR1}),
    ("deepseek v3", {"model": "deepseek-ai/DeepSeek-V3"}),
    ("deepseek-v2-lite", {"model": "deepseek-ai/DeepSeek-V2-Lite-Chat"}),
    ("deepseek r1 distill llama 70b", {"model": "deepseek-ai/DeepSeek-R1-Distill-Llama-70B"}),
    ("deepseek-r1-distill-qwen-32b", {"model": "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B"}),
    ("gpt-oss-120b", {"model": OSS120}),
    ("gpt oss 20b", {"model": "openai/gpt-oss-20b"}),
    ("gemma 3 27b", {"model": G3_27}),
    ("gemma 2 9b", {"model": "google/gemma-2-9b-it"}),
    ("gemma 7b", {"model": "google/gemma-7b-it"}),
    ("mixtral 8x22b", {"model": MIX22}),
    ("8x22b", {"model": MIX22}),
    ("8x7B", {"model": MIX7}),
    ("kimi k2", {"model": "moonshotai/Kimi-K2-Instruct"}),
    ("kimi-dev-72b", {"model": "moonshotai/Kimi-Dev-72B"}),
    ("phi-4", {"model": "microsoft/phi-4"}),
    ("phi 4", {"model": "microsoft/phi-4"}),
    ("phi-2", {"model": "microsoft/phi-2"}),
    ("mistral 7b", {"model": "mistralai/Mistral-7B-Instruct-v0.3"}),
    ("mistral small 3.1", {"model": "mistralai/Mistral-Small-3.1-24B-Instruct-2503"}),
    ("mistral large 2", {"model": "mistralai/Mistral-Large-Instruct-2407"}),
    ("granite 3.3 8b", {"model": "ibm-granite/granite-3.3-8b-instruct"}),
    ("granite-3.1-2b", {"model": "ibm-granite/granite-3.1-2b-instruct"}),
    # --- misspellings and case
    ("lama 3.3 70b", {"model": L33, FUZZY: True}),
    ("llamma 3.3 70b fp8", {"model": L33, "weights": "fp8", FUZZY: True}),
    ("mistrall 7b", {"model": "mistralai/Mistral-7B-Instruct-v0.3", FUZZY: True}),
    ("mixtrall 8x7b", {"model": MIX7, FUZZY: True}),
    ("qwen3 32B BF16 32K", {"model": Q3_32, "weights": "bf16", "context_tokens": 32768}),
    ("LLaMA 3.1 8B FP8", {"model": L31_8, "weights": "fp8"}),
    # --- bare sizes
    ("70B", {"model": L33, BARE: True}),
    ("70b int4", {"model": L33, "weights": "int4", BARE: True}),
    ("8b", {"model": L31_8, BARE: True}),
    ("7B bf16", {"model": "Qwen/Qwen2.5-7B-Instruct", BARE: True, "weights": "bf16"}),
    ("1.5B", {"model": "Qwen/Qwen2.5-1.5B-Instruct", BARE: True}),
    ("1b 4k", {"model": "meta-llama/Llama-3.2-1B-Instruct", "context_tokens": 4096, BARE: True}),
    ("3b", {"model": "meta-llama/Llama-3.2-3B-Instruct", BARE: True}),
    ("32b fp8", {"model": "Qwen/Qwen2.5-32B-Instruct", "weights": "fp8", BARE: True}),
    ("72b", {"model": Q25_72, BARE: True}),
    ("405B", {"model": L31_405, BARE: True}),
    # --- weight precision
    ("llama 3.1 8b fp32", {"model": L31_8, "weights": "fp32"}),
    ("llama 3.1 8b float32", {"model": L31_8, "weights": "fp32"}),
    ("llama 3.1 8b bf16", {"model": L31_8, "weights": "bf16"}),
    ("llama 3.1 8b bfloat16", {"model": L31_8, "weights": "bf16"}),
    ("llama 3.1 8b fp16", {"model": L31_8, "weights": "fp16"}),
    ("llama 3.1 8b half", {"model": L31_8, "weights": "fp16"}),
    ("llama 3.1 8b in half precision", {"model": L31_8, "weights": "fp16"}),
    ("llama 3.1 8b 16-bit", {"model": L31_8, "weights": "bf16"}),
    ("llama 3.1 8b fp8", {"model": L31_8, "weights": "fp8"}),
    ("llama 3.1 8b 8-bit", {"model": L31_8, "weights": "fp8"}),
    ("llama 3.1 8b 8 bit", {"model": L31_8, "weights": "fp8"}),
    ("llama 3.1 8b int8", {"model": L31_8, "weights": "int8"}),
    ("llama 3.1 8b w8a8", {"model": L31_8, "weights": "int8"}),
    ("llama 3.1 8b int4", {"model": L31_8, "weights": "int4"}),
    ("llama 3.1 8b 4-bit", {"model": L31_8, "weights": "int4"}),
    ("llama 3.1 8b 4bit", {"model": L31_8, "weights": "int4"}),
    ("llama 3.1 8b awq", {"model": L31_8, "weights": "int4"}),
    ("llama 3.1 8b gptq", {"model": L31_8, "weights": "int4"}),
    ("llama 3.1 8b fp4", {"model": L31_8, "weights": "fp4"}),
    ("llama 3.1 8b nvfp4", {"model": L31_8, "weights": "fp4"}),
    ("gpt-oss-20b mxfp4", {"model": "openai/gpt-oss-20b", "weights": "mxfp4"}),
    # --- KV precision
    ("llama 3.1 8b fp8 kv", {"model": L31_8, "kv_dtype": "fp8"}),
    ("llama 3.1 8b kv cache fp8", {"model": L31_8, "kv_dtype": "fp8"}),
    ("llama 3.1 8b with kv in fp8", {"model": L31_8, "kv_dtype": "fp8"}),
    ("llama 3.3 70b fp8 weights fp8 kv", {"model": L33, "weights": "fp8", "kv_dtype": "fp8"}),
    ("llama 3.3 70b int4 with fp8 kv-cache", {"model": L33, "weights": "int4", "kv_dtype": "fp8"}),
    ("llama 3.1 8b kv bf16", {"model": L31_8, "kv_dtype": "bf16"}),
    # --- context
    ("llama 3.1 8b 8k", {"model": L31_8, "context_tokens": 8192}),
    ("llama 3.1 8b 8K ctx", {"model": L31_8, "context_tokens": 8192}),
    ("llama 3.1 8b 32k context", {"model": L31_8, "context_tokens": 32768}),
    ("llama 3.1 8b 128k", {"model": L31_8, "context_tokens": 131072}),
    ("llama 3.1 8b 131072 tokens", {"model": L31_8, "context_tokens": 131072}),
    ("llama 3.1 8b 8 192 tokens", {"model": L31_8, "context_tokens": 8192}),
    ("llama 3.1 8b 8,192 tokens", {"model": L31_8, "context_tokens": 8192}),
    ("llama 4 scout 1M context", {"model": "meta-llama/Llama-4-Scout-17B-16E-Instruct", "context_tokens": 1048576}),
    ("llama 3.1 8b context of 16k", {"model": L31_8, "context_tokens": 16384}),
    ("llama 3.1 8b 4k context window", {"model": L31_8, "context_tokens": 4096}),
    ("llama 3.1 8b max-model-len 4096", {"model": L31_8, "context_tokens": 4096}),
    ("llama 3.1 8b 2k in 512 out", {"model": L31_8, "input_tokens": 2048, "output_tokens": 512}),
    ("llama 3.1 8b 2000 input 500 output tokens", {"model": L31_8, "input_tokens": 2000, "output_tokens": 500}),
    ("llama 3.1 8b prompt 1k output 256", {"model": L31_8, "input_tokens": 1024, "output_tokens": 256}),
    ("llama 3.1 8b 4k prompts plus 1k outputs", {"model": L31_8, "input_tokens": 4096, "output_tokens": 1024}),
    ("llama 3.1 8b 2 replicas", {"model": L31_8, "replicas": 2}),
    ("llama 3.1 8b dp 4 tp 2", {"model": L31_8, "replicas": 4, "tp": 2}),
    ("llama 3.1 8b data parallel size=2", {"model": L31_8, "replicas": 2}),
    ("llama 3.1 8b fp8, fp8 weights, 8k ctx, 8k context", {"model": L31_8, "weights": "fp8", "context_tokens": 8192}),
    ("llama 3.1 8b 32k ctx, 4k in 1k out", {"model": L31_8, "context_tokens": 32768, "input_tokens": 4096, "output_tokens": 1024}),
    # --- load
    ("llama 3.1 8b 16 users", {"model": L31_8, "concurrency": 16}),
    ("llama 3.1 8b 32 concurrent", {"model": L31_8, "concurrency": 32}),
    ("llama 3.1 8b batch 8", {"model": L31_8, "concurrency": 8}),
    ("llama 3.1 8b batch size 64", {"model": L31_8, "concurrency": 64}),
    ("llama 3.1 8b twelve users", {"model": L31_8, "concurrency": 12}),
    ("llama 3.1 8b twenty-four users", {"model": L31_8, "concurrency": 24}),
    ("llama 3.1 8b a dozen users", {"model": L31_8, "concurrency": 12}),
    ("llama 3.1 8b 100 concurrent requests", {"model": L31_8, "concurrency": 100}),
    ("llama 3.1 8b max concurrency", {"model": L31_8, "concurrency": "max"}),
    ("llama 3.1 8b as many users as possible", {"model": L31_8, "concurrency": "max"}),
    # --- targets and budget
    ("llama 3.1 8b at least 30 tok/s", {"model": L31_8, "min_tokens_per_s": 30}),
    ("llama 3.1 8b 50 tokens/s per user", {"model": L31_8, "min_tokens_per_s": 50}),
    ("llama 3.1 8b ttft under 1s", {"model": L31_8, "max_ttft_s": 1.0}),
    ("llama 3.1 8b ttft < 500ms", {"model": L31_8, "max_ttft_s": 0.5}),
    ("llama 3.1 8b time to first token under 2 seconds", {"model": L31_8, "max_ttft_s": 2.0}),
    ("llama 3.3 70b under $20/h", {"model": L33, "max_usd_per_hour": 20}),
    ("llama 3.3 70b budget $12.50 per hour", {"model": L33, "max_usd_per_hour": 12.5}),
    ("llama 3.3 70b below $8/hr", {"model": L33, "max_usd_per_hour": 8}),
    ("llama 3.3 70b max $40 an hour", {"model": L33, "max_usd_per_hour": 40}),
    # --- constraints, pins, comparisons, questions
    ("llama 3.1 8b only g6e", {"model": L31_8, "families": ("g6e",)}),
    ("llama 3.1 8b g6e only", {"model": L31_8, "families": ("g6e",)}),
    ("llama 3.1 8b only g6e and g7e", {"model": L31_8, "families": ("g6e", "g7e")}),
    ("llama 3.1 8b exclude p5", {"model": L31_8, "exclude_families": ("p5",)}),
    ("llama 3.1 8b no p4d", {"model": L31_8, "exclude_families": ("p4d",)}),
    ("llama 3.1 8b exclude p5 and p4d", {"model": L31_8, "exclude_families": ("p5", "p4d")}),
    ("llama 3.1 405b fp8 no multi-node", {"model": L31_405, "weights": "fp8", "multi_node": False}),
    ("llama 3.1 405b fp8 single node", {"model": L31_405, "weights": "fp8", "multi_node": False}),
    ("llama 3.1 8b single gpu", {"model": L31_8, "single_gpu": True}),
    ("llama 3.1 8b on one gpu", {"model": L31_8, "single_gpu": True}),
    ("llama 3.1 8b in eu-west-1", {"model": L31_8, "region": "eu-west-1"}),
    ("llama 3.1 8b us-west-2", {"model": L31_8, "region": "us-west-2"}),
    ("llama 3.1 8b on g6e.12xlarge", {"model": L31_8, "instance": "g6e.12xlarge"}),
    ("llama 3.1 8b on p5.48xlarge", {"model": L31_8, "instance": "p5.48xlarge"}),
    ("llama 3.1 8b on 2x H100", {"model": L31_8, "gpu": "h100-sxm", "gpus": 2}),
    ("llama 3.1 8b on 4 L40S", {"model": L31_8, "gpu": "l40s", "gpus": 4}),
    ("llama 3.1 8b on a single A10G", {"model": L31_8, "gpu": "a10g", "gpus": 1}),
    ("llama 3.1 8b on 8×A100", {"model": L31_8, "gpu": "a100", "gpus": 8}),  # ambiguous: kept as typed
    ("llama 3.1 8b tp 4 on 4x l4", {"model": L31_8, "tp": 4, "gpu": "l4", "gpus": 4}),
    ("llama 3.1 8b tp=2 on 2 h100s", {"model": L31_8, "tp": 2, "gpu": "h100-sxm", "gpus": 2}),
    ("llama 3.1 8b util 0.95", {"model": L31_8, "gpu_memory_utilization": 0.95}),
    ("llama 3.1 8b gpu utilization 85%", {"model": L31_8, "gpu_memory_utilization": 0.85}),
    ("llama 3.1 8b vllm 0.19", {"model": L31_8, "vllm_version": "0.19"}),
    ("llama 3.1 8b vLLM v0.20.1", {"model": L31_8, "vllm_version": "0.20.1"}),
    ("llama 3.3 70b g6e.24xlarge vs g7e.12xlarge", {"model": L33, "compare": ("g6e.24xlarge", "g7e.12xlarge")}),
    ("why not g6.12xlarge for llama 3.3 70b fp8?", {"model": L33, "weights": "fp8", "why_not": "g6.12xlarge"}),
    ("llama 3.1 8b cheapest?", {"model": L31_8, "sort": "cost"}),
    ("fastest for llama 3.1 8b", {"model": L31_8, "sort": "speed"}),
    # --- Slack formatting, punctuation, unicode
    ("<@U0123ABC> *llama 3.3 70b* fp8 `8k`", {"model": L33, "weights": "fp8", "context_tokens": 8192}),
    ("_qwen3 32b_ ~bf16~ 32k", {"model": Q3_32, "weights": "bf16", "context_tokens": 32768}),
    ("<https://huggingface.co/Qwen/Qwen3-32B|Qwen3-32B> fp8", {"model": Q3_32, "weights": "fp8"}),
    ("<https://example.com/docs|our docs> llama 3.1 8b", {"model": L31_8}),
    ("llama 3.1 8b &amp; 16 users", {"model": L31_8, "concurrency": 16}),
    ("<!channel> llama 3.1 8b", {"model": L31_8}),
    ("```llama 3.3 70b fp8 8k```", {"model": L33, "weights": "fp8", "context_tokens": 8192}),
    ("llama 3.3 70b — fp8 — 8k!!!", {"model": L33, "weights": "fp8", "context_tokens": 8192}),
    ("llama 3.3 70b, fp8, 8k context, 16 users.", {"model": L33, "weights": "fp8", "context_tokens": 8192, "concurrency": 16}),
    ("(llama 3.3 70b) [fp8] {8k}", {"model": L33, "weights": "fp8", "context_tokens": 8192}),
    ("ＬＬａＭＡ 3.3 70B fp8", {"model": L33, "weights": "fp8"}),
    ("llama 3.3 70b fp8 8k 🚀", {"model": L33, "weights": "fp8", "context_tokens": 8192}),
    ("  LLAMA   3.3   70B   FP8   8K  ", {"model": L33, "weights": "fp8", "context_tokens": 8192}),
    ("hey headroom, can you size llama 3.3 70b in fp8 with an 8k context for 16 users please?",
     {"model": L33, "weights": "fp8", "context_tokens": 8192, "concurrency": 16}),
    ("what would it take to run deepseek r1 fp8 at 32k for 8 users on p5en?",
     {"model": DSR1, "weights": "fp8", "context_tokens": 32768, "concurrency": 8, "families": ("p5en",)}),
    ("gemma 3 27b 128k fp8 kv 4 users", {"model": G3_27, "kv_dtype": "fp8", "context_tokens": 131072, "concurrency": 4}),
    ("mixtral 8x22b int4 on 4x l40s tp 4", {"model": MIX22, "weights": "int4", "gpu": "l40s", "gpus": 4, "tp": 4}),
    ("qwen3 30b a3b fp8 64 users 16k under $15/h only g6e",
     {"model": "Qwen/Qwen3-30B-A3B", "weights": "fp8", "concurrency": 64, "context_tokens": 16384, "max_usd_per_hour": 15, "families": ("g6e",)}),
]  # fmt: skip


def test_the_table_is_big_enough() -> None:
    assert len(PHRASINGS) >= 150


@pytest.mark.parametrize(("text", "fields"), PHRASINGS, ids=[t for t, _ in PHRASINGS])
def test_phrasing_reads_as_the_expected_request(catalog: Catalog, text: str, fields: dict) -> None:
    expected = dict(fields)
    bare, fuzzy = expected.pop(BARE, False), expected.pop(FUZZY, False)
    got = parse_request(text, catalog)
    assert got.replace(model_note=None) == Request(**expected).replace(model_note=None)
    reading = got.model_note.code if got.model_note else None
    assert reading == ("bare_size" if bare else "fuzzy_model" if fuzzy else None)


@pytest.mark.parametrize(
    ("text", "says", "unknown"),
    [
        ("hello there", "which model", []),
        ("llama 9.9 70b", "which model", []),
        ("frobnicate 8k fp8", "frobnicate", ["frobnicate"]),
        ("x" * 2001, "2,001 characters", []),
    ],
)
def test_what_cannot_be_read_gets_a_parse_error_that_says_why(catalog: Catalog, text, says, unknown) -> None:
    with pytest.raises(ParseError) as err:
        parse_request(text, catalog)
    assert says in VIEWS.error(err.value)
    assert set(unknown) <= set(err.value.unknown)


def test_parse_error_reports_understood_fields_and_close_models(catalog: Catalog) -> None:
    with pytest.raises(ParseError) as err:
        parse_request("lamma fp8 8k 16 users", catalog)
    assert err.value.understood == {"weights": "fp8", "context_tokens": 8192, "concurrency": 16}
    assert any("Llama" in s for s in err.value.suggestions)


def test_contradictions_are_parse_errors_not_crashes(catalog: Catalog) -> None:
    with pytest.raises(ParseError) as err:
        parse_request("llama 3.1 8b 4k context 4k in 1k out", catalog)
    assert err.value.code == "invalid_values"
    assert [p["type"] for p in err.value.params["problems"]] == ["split_exceeds_context"]
    assert "exceed the 4096-token context" in VIEWS.error(err.value)


@pytest.mark.parametrize(
    ("text", "field", "says"),
    [
        ("llama 3.3 70b fp8 32k context, actually 8k context", "context_tokens", "two contexts: '32,768' and '8,192'"),
        ("llama 3.3 70b fp8 then int4", "weights", "two weight precisions: 'fp8' and 'int4'"),
        ("Qwen/Qwen2.5-72B-Instruct-AWQ fp8", "weights", "'int4' and 'fp8'"),
        ("llama 3.1 8b 16 users or 64 users", "concurrency", "two loads: '16' and '64'"),
        ("llama 3.1 8b cheapest and fastest", "sort", "cheapest or fastest"),
    ],
)
def test_two_values_for_one_field_are_refused_not_overwritten(catalog: Catalog, text, field, says) -> None:
    with pytest.raises(ParseError) as err:
        parse_request(text, catalog)
    assert (err.value.code, err.value.params["field"]) == ("conflicting_values", field)
    assert says in VIEWS.error(err.value)


@pytest.mark.parametrize("text", ["llama 3.1 8b 0.5 users", "llama 3.1 8b .5 concurrent requests", "llama 3.1 8b 2.5 users"])
def test_a_fractional_load_is_refused_not_read_as_another_number(catalog: Catalog, text: str) -> None:
    with pytest.raises(ParseError) as err:
        parse_request(text, catalog)
    assert err.value.code == "fractional_load"
    assert "whole number" in VIEWS.error(err.value)
