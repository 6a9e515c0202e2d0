"""Cleaning chat text before it is read: Slack markup, entities, unicode, number words.

Kept apart from the grammar in ``engine/parse.py`` so both Slack and the terminal feed
the parser the same plain, lower-case text.
"""

from __future__ import annotations

import re
import unicodedata

# Slack: <@U123>, <!channel>, <#C123|general>, <https://x|label>, <https://x>
_SLACK_SPECIAL = re.compile(r"<[@!#][^<>]*>")
_SLACK_LINK = re.compile(r"<((?:https?|mailto):[^<>|]*)(?:\|([^<>]*))?>")
_CODE_FENCE = re.compile(r"```+")
_EMPHASIS = re.compile(r"(?<![\w*_~`])[*_~`]+|[*_~`]+(?![\w*_~`])")
_HF_URL = re.compile(r"https?://(?:www\.)?huggingface\.co/([\w.\-]+/[\w.\-]+)[^\s]*")
_OTHER_URL = re.compile(r"https?://\S+")
_THOUSANDS = re.compile(r"\b(\d{1,3})(?:[ ,\u202f\u00a0](\d{3}))+\b(?!\s*[.,]?\d)")

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_NUMBER_WORDS = re.compile(
    r"\b(?:(" + "|".join(_TENS) + r")(?:[\s-]+(" + "|".join(k for k in _UNITS if k != "zero") + r"))?"
    r"|(" + "|".join(_UNITS) + r")|(a dozen|dozen)|(a hundred|one hundred|hundred))\b"
)


def _link(match: re.Match[str]) -> str:
    url, label = match.group(1), match.group(2)
    hf = _HF_URL.match(url)
    if hf:
        return f" {hf.group(1)} "
    return f" {label} " if label else " "


def _number_word(match: re.Match[str]) -> str:
    tens, unit, single, dozen, hundred = match.groups()
    if tens:
        return str(_TENS[tens] + (_UNITS[unit] if unit else 0))
    if single:
        return str(_UNITS[single])
    if dozen:
        return "12"
    return "100" if hundred else match.group(0)


def _join_thousands(match: re.Match[str]) -> str:
    return re.sub(r"[ ,\u202f\u00a0]", "", match.group(0))


def clean(text: str, lower: bool = True) -> str:
    """Plain, lower-case, single-spaced text: markup stripped, links to labels, numbers as digits.

    With ``lower=False`` the case is kept (to read Hugging Face ids as typed) and numbers are left alone.
    """
    text = unicodedata.normalize("NFKC", text)
    text = text.translate({ord(c): "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2212"})
    text = text.translate({ord(c): "'" for c in "\u2018\u2019\u201b\u2032"})
    text = text.translate({ord(c): '"' for c in "\u201c\u201d\u201f\u2033"})
    text = _SLACK_LINK.sub(_link, text)
    text = _SLACK_SPECIAL.sub(" ", text)
    if "&" in text:  # html.unescape changes nothing else; importing html costs a start-up ~1 ms
        import html

        text = html.unescape(text)
    text = _HF_URL.sub(lambda m: f" {m.group(1)} ", text)
    text = _OTHER_URL.sub(" ", text)
    text = _CODE_FENCE.sub(" ", text)
    text = _EMPHASIS.sub(" ", text)
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    if not lower:
        return " ".join(text.split())
    text = text.lower()
    text = _NUMBER_WORDS.sub(_number_word, text)
    text = _THOUSANDS.sub(_join_thousands, text)
    return " ".join(text.split())
