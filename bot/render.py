"""Render a Plan (plain data) with the Jinja views in templates/. One environment, built by the caller."""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, StrictUndefined

from engine.plan import Candidate, Plan

TEMPLATE_VERSION = "1"


def _gib(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _money(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"${value:,.{digits}f}"


def _count(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}" if value >= 10 else f"{value:,.1f}"


def short_gpu(name: str) -> str:
    """'NVIDIA RTX PRO 6000 Blackwell Server Edition' -> 'RTX PRO 6000 Blackwell'."""
    for noise in ("NVIDIA ", " Server Edition", " SXM4", " SXM2", " SXM"):
        name = name.replace(noise, "")
    return name


def _hardware(c: Candidate) -> str:
    per_node = c.gpu_count // c.nodes
    gpus = f"{per_node} × {short_gpu(c.gpu)} ({c.gpu_memory_aws_gib:.0f} GiB)"
    return gpus if c.nodes == 1 else f"{c.nodes} nodes of {gpus}"


def _layout(c: Candidate) -> str:
    parts = [f"TP{c.tp}"]
    if c.pp > 1:
        parts.append(f"PP{c.pp}")
    if c.replicas > 1:
        parts.append(f"×{c.replicas}")
    return " ".join(parts)


def build_environment() -> Environment:
    env = Environment(
        loader=PackageLoader("templates", "."),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters.update(gib=_gib, money=_money, count=_count, hardware=_hardware, layout=_layout)
    return env


def shown_candidates(plan: Plan, limit: int = 8) -> tuple[list[Candidate], list[Candidate]]:
    """The feasible picks worth showing (one per distinct GPU layout) and the notable rejections."""
    picks: list[Candidate] = []
    seen: set[tuple] = set()
    for c in plan.candidates:
        if not c.feasible:
            continue
        key = (c.gpu_id, c.gpu_count, c.nodes)
        if key in seen:
            continue  # a larger size of the same GPU layout only adds vCPUs / RAM
        seen.add(key)
        picks.append(c)
        if len(picks) == limit:
            break
    rejected: list[Candidate] = []
    seen = set()
    for c in plan.candidates:
        key = (c.gpu_id, c.gpu_count, c.nodes)
        if c.feasible or key in seen:
            continue
        seen.add(key)
        rejected.append(c)
    rejected.sort(key=lambda c: (c.verdict != "no_kv_room", -(c.gpu_memory_gib * c.gpu_count)))
    return picks, rejected[:5]


def render_terminal(env: Environment, plan: Plan, limit: int = 8) -> str:
    picks, rejected = shown_candidates(plan, limit)
    return env.get_template("plan.txt.j2").render(plan=plan, picks=picks, rejected=rejected, top=plan.top)


def render_changes(env: Environment, lines: list[str]) -> str:
    return env.get_template("changes.txt.j2").render(changes=lines)
