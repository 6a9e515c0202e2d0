"""Issue 15: `headroom plan ... --chart` draws the budget chart model as a PNG whose pixels say what the model says."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from matplotlib.colors import to_hex, to_rgb
from PIL import Image

from bot.chart_png import COLOURS, DPI, MISS_EDGE, SIZE_IN, budget_figure
from bot.cli import main
from engine.catalog.loader import Catalog
from engine.charts import budget_chart
from engine.service import respond
from tests.support import VIEWS

ASK = "llama 3.3 70b fp8 8k context"
SIZE = (int(SIZE_IN[0] * DPI), int(SIZE_IN[1] * DPI))


def _rgb(colour: str) -> tuple[int, int, int]:
    r, g, b = (round(v * 255) for v in to_rgb(colour))
    return r, g, b


def _runs(image: Image.Image, colour: tuple[int, int, int]) -> int:
    """Separate groups of pixel columns holding `colour` below the legend (the top fifth): one per bar."""
    width, height = image.size
    pixels = image.load()
    columns = [any(pixels[x, y][:3] == colour for y in range(height // 5, height)) for x in range(width)]
    return sum(1 for x in range(width) if columns[x] and (x == 0 or not columns[x - 1]))


def _bars(catalog: Catalog, text: str) -> int:
    turn = respond(text, None, catalog)
    assert turn.plan is not None
    chart = budget_chart(turn.plan)
    assert chart is not None
    return len(chart.bars)


@pytest.mark.parametrize("text", [ASK, "deepseek r1 fp8 128k 64 users"])
def test_chart_writes_a_png_with_one_bar_per_gpu_shown(catalog: Catalog, tmp_path: Path, capsys, text: str) -> None:
    out = tmp_path / "budget.png"
    assert main(["plan", text, "--chart", str(out)]) == 0
    assert "Budget" in capsys.readouterr().out  # the answer still printed
    image = Image.open(out)
    assert image.format == "PNG" and image.size == SIZE
    image = image.convert("RGB")
    assert len(image.getcolors(maxcolors=1 << 16) or []) > 20  # not blank
    assert _runs(image, _rgb(COLOURS[0])) == _bars(catalog, text)  # weights: every GPU shown has some
    present = {c for _, c in image.getcolors(maxcolors=1 << 16)}
    assert {_rgb(c) for c in COLOURS} <= present  # every part, at least in the legend
    assert _rgb(MISS_EDGE) in present  # the cheapest miss, outlined


def test_the_figure_draws_each_part_of_each_bar_of_the_model(catalog: Catalog) -> None:
    turn = respond(ASK, None, catalog)
    assert turn.plan is not None
    chart = budget_chart(turn.plan)
    assert chart is not None
    (ax,) = budget_figure(chart, VIEWS).axes
    boxes, lines = ax.collections
    heights = [path.vertices[:, 1].max() - path.vertices[:, 1].min() for path in boxes.get_paths()]
    assert len(heights) == 5 * len(chart.bars)  # five parts per GPU shown
    weights = [h for h, colour in zip(heights, boxes.get_facecolors(), strict=True) if to_hex(colour) == COLOURS[0]]
    assert [round(h, 6) for h in weights] == [round(b.weights, 6) for b in chart.bars]
    assert [round(seg[0][1], 6) for seg in lines.get_segments()] == [round(b.may_use, 6) for b in chart.bars]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[0] == "g7e.2xlarge" and labels[-1].endswith("✗") and len(labels) == len(chart.bars)


def test_chart_dash_puts_the_png_on_stdout_and_the_answer_on_stderr() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "plan", ASK, "--chart", "-"], capture_output=True, timeout=120, check=True
    )
    assert result.stdout.startswith(b"\x89PNG\r\n\x1a\n")
    assert Image.open(io.BytesIO(result.stdout)).size == SIZE
    assert "g7e.2xlarge" in result.stderr.decode()
