"""The words of notes kept on disk (bot/note_words.py): a hit says exactly what rendering would, a miss renders.

A kept text is only ever used for the very same notes (types and order included) rendered by the very
same templates, filters and Jinja; anything else renders again, and a broken cache only costs time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bot import note_words
from bot.note_words import NoteWords, Unkeyable, fingerprint, keyed, slot_text
from engine.notes import Note, note
from tests.support import VIEWS

NOTES = [note("kv_holds", capacity=7.0, context=8192, kv_tokens=57376), note("fp8_online_quantization")]


class Counting:
    """A renderer that says how often it was built and what it rendered (a stand-in for the templates' say)."""

    def __init__(self, say: Callable[[Note], str] = VIEWS.say) -> None:
        self.built, self.said, self._say = 0, [], say

    def __call__(self) -> Callable[[Note], str]:
        self.built += 1

        def say(n: Note) -> str:
            self.said.append(n)
            return self._say(n)

        return say


def _fill(folder: Path | None, notes: list[Note], renderer: Counting, files: list[Path] | None = None) -> list[str]:
    words = NoteWords(folder, files)
    slots = [words.slot(n) for n in notes]
    words.fill(renderer)
    return [json.loads(json.dumps(s, default=slot_text)) for s in slots]


def _kept(folder: Path) -> list[Path]:
    return sorted(folder.glob("words-*.json"))


def test_a_second_answer_with_the_same_notes_renders_nothing_and_says_the_same(tmp_path: Path) -> None:
    first, second = Counting(), Counting()
    said = _fill(tmp_path, NOTES, first)
    assert first.built == 1 and said == [VIEWS.say(n) for n in NOTES]
    assert said[0].startswith("KV cache holds 7.0 requests of 8,192 tokens")  # the check below can fail
    assert len(_kept(tmp_path)) == 1
    assert _fill(tmp_path, NOTES, second) == said
    assert second.built == 0


@pytest.mark.parametrize(
    "changed",
    [
        [note("kv_holds", capacity=7.0, context=8192, kv_tokens=57377), NOTES[1]],  # another number
        [note("kv_holds", capacity=7, context=8192, kv_tokens=57376), NOTES[1]],  # 7 is not 7.0 to a template
        [NOTES[1], NOTES[0]],  # another order
        NOTES[:1],  # one note fewer
    ],
)
def test_other_notes_never_meet_kept_words(tmp_path: Path, changed: list[Note]) -> None:
    _fill(tmp_path, NOTES, Counting())
    again = Counting()
    assert _fill(tmp_path, changed, again) == [VIEWS.say(n) for n in changed]
    assert again.built == 1 and len(_kept(tmp_path)) == 2


def _key(value: object) -> str:
    return json.dumps(keyed(value))  # what the file name's digest is taken of


def test_keys_tell_apart_what_a_template_could() -> None:
    assert len({_key(1), _key(1.0), _key(True), _key("1")}) == 4
    assert _key([1, 2]) != _key((1, 2))
    assert _key({"a": 1, "b": 2}) != _key({"b": 2, "a": 1})  # a template may iterate in order
    assert _key(note("x", n=1)) != _key({"code": "x", "n": 1})
    assert _key(0.1 + 0.2) != _key(0.3)  # floats kept exactly
    for odd in ({1, 2}, object(), {1: "a"}, type("Str", (str,), {})("s")):
        with pytest.raises(Unkeyable):
            keyed(odd)


def test_a_note_holding_other_data_is_rendered_and_not_kept(tmp_path: Path) -> None:
    odd = [note("kv_holds", capacity=7.0, context=8192, kv_tokens=57376, extra={1, 2})]
    renderer = Counting(lambda n: f"said {n.code}")
    assert _fill(tmp_path, odd, renderer) == ["said kv_holds"]
    assert renderer.built == 1 and _kept(tmp_path) == []


def _renderer_files(tmp_path: Path) -> list[Path]:
    """Copies of what turns notes into words, so a test can edit one."""
    copies = []
    for original in map(Path, [*note_words._source("templates", ".j2"), *note_words._source("bot.render")]):
        copy = tmp_path / "renderer" / original.name
        copy.parent.mkdir(exist_ok=True)
        copy.write_bytes(original.read_bytes())
        copies.append(copy)
    return copies


def test_an_edited_template_renders_again(tmp_path: Path) -> None:
    files = _renderer_files(tmp_path)
    folder = tmp_path / "words"
    _fill(folder, NOTES, Counting(), files)
    kept = Counting()
    _fill(folder, NOTES, kept, files)
    assert kept.built == 0
    notes_j2 = next(f for f in files if f.name == "notes.j2")
    notes_j2.write_text(notes_j2.read_text() + "{#- a new comment -#}\n")
    edited = Counting()
    _fill(folder, NOTES, edited, files)
    assert edited.built == 1 and len(_kept(folder)) == 2


def test_the_fingerprint_reads_the_templates_the_filters_the_note_class_and_jinja() -> None:
    files = [*note_words._source("templates", ".j2"), *note_words._source("bot.render"),
             *note_words._source("engine.notes"), *note_words._source("jinja2")]  # fmt: skip
    names = {(Path(f).parent.name, Path(f).name) for f in files}
    assert {("templates", "notes.j2"), ("bot", "render.py"), ("engine", "notes.py"), ("jinja2", "__init__.py")} <= names
    assert fingerprint() == fingerprint(files)
    assert fingerprint(files[:-1]) != fingerprint(files)


@pytest.mark.parametrize(
    "content",
    ["", "{", "[]", '{"format": 1}', '{"format": 1, "texts": ["one"]}', '{"format": 1, "texts": ["a", 2]}',
     '{"format": 99, "texts": ["a", "b"]}', "\udcff"],
    ids=["empty", "truncated", "a list", "no texts", "too few", "not text", "other format", "not utf-8"],
)  # fmt: skip
def test_a_broken_kept_file_is_rendered_again_and_replaced(tmp_path: Path, content: str) -> None:
    _fill(tmp_path, NOTES, Counting())
    [path] = _kept(tmp_path)
    path.write_bytes(content.encode("utf-8", "surrogateescape"))
    again = Counting()
    assert _fill(tmp_path, NOTES, again) == [VIEWS.say(n) for n in NOTES]
    assert again.built == 1
    assert json.loads(path.read_text())["texts"] == [VIEWS.say(n) for n in NOTES]


def test_an_unwritable_cache_still_answers(tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    for folder in (blocked / "words", None):
        renderer = Counting()
        assert _fill(folder, NOTES, renderer) == [VIEWS.say(n) for n in NOTES]
        assert renderer.built == 1


def test_only_the_most_recently_used_answers_are_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(note_words, "KEEP_FILES", 3)
    answers = [[note("kv_holds", capacity=1.0, context=8192, kv_tokens=tokens)] for tokens in range(4)]
    paths: list[Path] = []
    for age, notes in enumerate(answers[:3]):
        _fill(tmp_path, notes, Counting())
        [new] = set(_kept(tmp_path)) - set(paths)
        paths.append(new)
        os.utime(new, (1_000_000 + age, 1_000_000 + age))  # answers 0, 1, 2: the oldest first
    stale, fresh = tmp_path / "words-dead.json.x1.tmp", tmp_path / "words-busy.json.x2.tmp"
    stale.write_text("{")
    fresh.write_text("{")
    os.utime(stale, (1_000_000, 1_000_000))  # a writer that died long ago; `fresh` may still be being written
    again = Counting()
    _fill(tmp_path, answers[0], again)  # a hit on the oldest answer makes it the most recently used
    assert again.built == 0 and paths[0].stat().st_mtime > 1_000_002
    _fill(tmp_path, answers[3], Counting())  # a fourth answer: the least recently used one (answer 1) goes
    assert [p.exists() for p in paths] == [True, False, True]
    assert len(_kept(tmp_path)) == 3 and not stale.exists() and fresh.exists()


def test_json_still_refuses_what_it_cannot_write() -> None:
    with pytest.raises(TypeError):
        json.dumps({"x": object()}, default=slot_text)
    with pytest.raises(TypeError):  # a slot that was never filled is a bug, not an empty text
        json.dumps({"x": NoteWords(None).slot(NOTES[0])}, default=slot_text)


def test_plan_json_says_the_same_from_kept_words_as_from_the_templates(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "bot.cli", "plan", "--json", "--model", "llama-3.1-8b", "--instance", "g6.xlarge"]
    outputs = []
    for folder in ("a", "a", "b"):  # rendered, kept, rendered in another cache folder
        env = {**os.environ, "HEADROOM_CACHE_DIR": str(tmp_path / folder)}
        outputs.append(subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=True).stdout)
    assert outputs[0] == outputs[1] == outputs[2]
    assert len(_kept(tmp_path / "a" / "words")) == 1
    data = json.loads(outputs[1])
    texts = [r["text"] for c in data["candidates"] for r in c["reasons"]]
    assert texts and all(isinstance(t, str) and t for t in texts)
