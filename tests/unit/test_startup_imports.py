"""`headroom plan` and `headroom chat` import only what they need: no Slack, Redis, HTTP server, Hub, AWS or plotting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("slack_bolt", "slack_sdk", "redis", "uvicorn", "starlette", "huggingface_hub", "boto3", "matplotlib", "aiohttp")
#: a start with the compiled catalog in place validates nothing: no pydantic, no YAML (issue 14)
VALIDATION = ("pydantic", "pydantic_core", "yaml", "annotated_types")

_PROBE = """
import contextlib, io, json, sys
from bot.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted({m.split('.')[0] for m in sys.modules})}))
"""


ROOT = Path(__file__).parents[2]


def _imported(
    *argv: str, stdin: str = "", env: dict[str, str] | None = None, flags: tuple[str, ...] = ()
) -> tuple[int, set[str]]:
    result = subprocess.run(
        [sys.executable, *flags, "-c", _PROBE, *argv], capture_output=True, text=True, input=stdin, timeout=60,
        check=True, env=env, cwd=ROOT,
    )  # fmt: skip
    data = json.loads(result.stdout.strip().splitlines()[-1])
    return data["code"], set(data["modules"])


@pytest.mark.parametrize(
    "argv",
    [
        ("plan", "--json", "--model", "llama-3.3-70b", "--weights", "fp8", "--context", "8192"),
        ("plan", "llama 3.3 70b fp8 8k context"),
        ("chat",),
    ],
)
def test_plan_and_chat_import_no_server_stack(argv: tuple[str, ...], tmp_path: Path) -> None:
    env = {**os.environ, "HEADROOM_CACHE_DIR": str(tmp_path)}
    code, first = _imported(*argv, stdin="llama 3.1 8b\n", env=env)  # an empty cache folder: a full validation
    assert code == 0 and "pydantic" in first and "yaml" in first  # the check below can fail
    code, modules = _imported(*argv, stdin="llama 3.1 8b\n", env=env)
    assert code == 0
    assert modules & set(HEAVY) == set()
    assert modules & set(VALIDATION) == set()
    assert "engine" in modules and "bot" in modules  # the probe did run headroom


#: what a repeated `plan --json` no longer needs (issue 14): the templates' engine, when its notes were said before
#: (bot/note_words.py), dataclasses with inspect, logging, html, and argparse's shutil (bot/cli_args.py's formatter)
WARM_JSON_SKIPS = ("jinja2", "markupsafe", "dataclasses", "inspect", "logging", "html", "shutil", "shlex", "pydantic", "yaml")


@pytest.mark.parametrize(
    "argv",
    [("plan", "--json", "--model", "llama-3.3-70b", "--weights", "fp8", "--context", "8192"),
     ("plan", "--json", "llama 3.3 70b fp8 8k context, 4 users, only g6e or p5 and under $60/h")],
    ids=["flags", "words"],
)  # fmt: skip
def test_a_repeated_plan_json_loads_no_template_engine(tmp_path: Path, argv: tuple[str, ...]) -> None:
    env = {**os.environ, "HEADROOM_CACHE_DIR": str(tmp_path)}
    code, first = _imported(*argv, env=env)
    assert code == 0 and "jinja2" in first  # the first answer renders its notes: the check below can fail
    code, modules = _imported(*argv, env=env)
    assert code == 0 and "engine" in modules
    assert modules & set(WARM_JSON_SKIPS) == set()
    # without site (-S), so nothing is preloaded by .pth files such as an editable install's finder (which loads
    # pathlib), as in a plain install: the installed packages reached through PYTHONPATH, headroom from the checkout
    import sysconfig

    bare_env = {**env, "PYTHONPATH": sysconfig.get_paths()["purelib"]}
    code, bare = _imported(*argv, env=bare_env, flags=("-S",))
    assert code == 0 and "engine" in bare
    assert bare & {"pathlib", "urllib", "ipaddress", "fnmatch", "threading", "tempfile", *WARM_JSON_SKIPS} == set()


@pytest.mark.parametrize("columns", ["", "0", "57", "not a number", "200"])
def test_the_help_formatter_reads_the_width_as_shutil_does(columns: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from bot.cli_args import _columns

    monkeypatch.setenv("COLUMNS", columns)
    assert _columns() == shutil.get_terminal_size().columns


def test_the_probe_sees_what_serve_imports() -> None:
    """The check can fail: importing the server module pulls in the Slack and HTTP stacks."""
    result = subprocess.run(
        [sys.executable, "-c", "import sys, bot.server; print(' '.join(sys.modules))"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    loaded = {m.split(".")[0] for m in result.stdout.split()}
    assert {"slack_bolt", "starlette", "aiohttp"} <= loaded


def test_a_one_shot_command_leaves_the_callers_collector_as_it_was(capsys) -> None:  # noqa: ANN001
    """plan and diagnose run without the cyclic collector (issue 14); a caller in the same process keeps it."""
    import gc

    from bot.cli import main

    assert gc.isenabled()
    assert main(["plan", "--json", "--model", "llama-3.1-8b", "--instance", "g6.xlarge"]) == 0
    assert gc.isenabled()
    gc.disable()
    try:
        assert main(["plan", "--json", "--model", "llama-3.1-8b", "--instance", "g6.xlarge"]) == 0
        assert not gc.isenabled()
    finally:
        gc.enable()
    capsys.readouterr()


@pytest.mark.parametrize(
    "flags",
    [
        {"model": "llama-3.3-70b", "weights": "fp8", "context_tokens": 8192},
        {"model": "qwen2.5-72b", "region": "frankfurt", "concurrency": "max", "tp": 2},
        {"model": "llama-3.1-8b", "gpu": "l4", "gpus": 4, "offline": True, "max_num_seqs": 32},
        {"weights": "fp8"},
    ],
)
def test_flags_alone_make_the_request_the_request_language_makes_of_no_words(flags: dict[str, object]) -> None:
    """engine.service skips the request language when only flags were given (issue 14): same request, same refusal."""
    from engine.errors import ParseError
    from engine.parse import parse_message, request_from
    from engine.service import _flags_only
    from tests.support import CATALOG

    try:
        expected = request_from(parse_message("", CATALOG), CATALOG, dict(flags))
    except ParseError as exc:
        with pytest.raises(ParseError) as got:
            _flags_only(dict(flags), CATALOG)
        assert got.value.code == exc.code == "no_model_given"
        return
    assert _flags_only(dict(flags), CATALOG) == expected


def test_the_startup_benchmark_runs_every_command(tmp_path: Path) -> None:
    """Not a timing test: the benchmark's commands all succeed and its in-process phases say what a run does."""
    env = {**os.environ, "HEADROOM_CACHE_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "benchmarks.startup", "--runs", "1"], capture_output=True, text=True,
                            env=env, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    for row in ("python -c pass", "plan --json (flags)", "plan --json (new numbers)", "plan (free text)",
                "chat (one line)", "kept words + JSON", "instead: Jinja + rendering"):  # fmt: skip
        assert row in result.stdout
    assert "FAILED" not in result.stdout
    assert len(list((tmp_path / "words").glob("words-*.json"))) == 1  # the repeated question's words, kept once


@pytest.mark.parametrize(
    "argv",
    [["plan", "--json", "--model", "llama-3.1-8b", "--context", "8k"], ["--version", "plan"],
     ["diagnose", "vllm.log", "--gpu", "l4", "--json"], ["chat", "--json"], ["serve", "--port", "3001", "--socket"],
     ["feedback", "export", "-o", "out.csv"], ["catalog", "refresh", "--regions", "us-east-1"]],
)  # fmt: skip
def test_a_parser_built_for_one_command_reads_it_as_the_whole_grammar(argv: list[str]) -> None:
    """`main` builds only the named subcommand's parser (issue 14): same reading, same usage line."""
    from bot.cli_args import COMMANDS, _named, build_parser

    if argv[0] == "--version":
        assert _named(argv) is None  # an option first: the whole grammar (and --version exits anyway)
        return
    one, every = build_parser(argv), build_parser()
    assert one.parse_args(argv) == every.parse_args(argv)
    assert one.format_usage() == every.format_usage()
    assert len(one._subparsers._group_actions[0].choices) == 1 < len(COMMANDS)  # type: ignore[union-attr]


@pytest.mark.parametrize("argv", [[], ["--help"], ["-h", "plan"], ["--he", "plan"], ["--", "plan"], ["plna"], ["llama 3.1 8b"]])
def test_help_and_unknown_commands_get_the_whole_grammar(argv: list[str]) -> None:
    from bot.cli_args import _named

    assert _named(argv) is None


_RUN = """
import atexit, gc, sys
atexit.register(lambda: print("frozen", gc.get_freeze_count(), file=sys.stderr))
from bot.cli import run
run()
"""


@pytest.mark.parametrize(("argv", "code"), [(["plan", "--json", "--model", "llama-3.1-8b"], 0), (["plan", "--bogus"], 2)])
def test_the_console_script_exits_with_mains_code_and_skips_the_final_collection(
    argv: list[str], code: int, tmp_path: Path
) -> None:
    env = {**os.environ, "HEADROOM_CACHE_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", _RUN, *argv], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == code
    frozen = int(done.stderr.rsplit("frozen ", 1)[1].split()[0])
    assert frozen > 1_000  # the modules (and the catalog), left out of the collection at exit
    if code == 0:
        assert json.loads(done.stdout)["candidates"]
