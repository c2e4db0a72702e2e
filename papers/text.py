"""Readable text from what authors write: LaTeX in titles and abstracts becomes plain
Unicode for email (``$\\textbf{Only-IF}$`` -> ``Only-IF``), whitespace is normalised,
and HTML stays text (templates escape it)."""

from __future__ import annotations

import logging
import re

from pylatexenc.latex2text import LatexNodes2Text, MacroTextSpec, get_default_latex_context_db

log = logging.getLogger(__name__)

_SPACE = re.compile(r"\s+")
_COMMAND = re.compile(r"\\[A-Za-z]+")
_WORD = re.compile(r"[A-Za-z0-9]{2,}")
_BRACED_COMMAND = re.compile(r"\\[A-Za-z]+\*?\{([^{}]*)\}")
# Characters that are special in LaTeX but ordinary in abstracts ("15%", "AT&T", "#1").
_ESCAPE = re.compile(r"(?<!\\)([%&#])")
_FONT_MACROS = (
    "texttt",
    "mathtt",
    "mathrm",
    "mathbf",
    "mathsf",
    "mathit",
    "textsc",
    "textrm",
    "textsf",
    "textup",
    "boldsymbol",
    "bm",
    "operatorname",
    "text",
    "mbox",
    "url",
)


def _converter() -> LatexNodes2Text:
    db = get_default_latex_context_db().filter_context(keep_categories=None)
    db.add_context_category(
        "paperboy-fonts",
        prepend=True,
        macros=[MacroTextSpec(name, simplify_repl="%(1)s") for name in _FONT_MACROS],
    )
    # An unknown command keeps its name ("\ours" -> "ours") rather than vanishing.
    db.set_unknown_macro_spec(MacroTextSpec("", simplify_repl=lambda node, l2t: node.macroname))
    return LatexNodes2Text(latex_context=db, math_mode="text", strict_latex_spaces=True)


_LATEX = _converter()


def normalise_space(text: str) -> str:
    return _SPACE.sub(" ", text.replace("\xa0", " ")).strip()


_SUPER = str.maketrans("0123456789+-=()n", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿ")
_SUB = str.maketrans("0123456789+-=()", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎")
# A superscript or subscript that Unicode can write: ^2, ^{-3}, _1, _{10}.
_SCRIPT = re.compile(r"([\^_])(?:\{([0-9+\-=()n]+)\}|([0-9n]))")


def _scripts(text: str) -> str:
    """x^2 -> x², 10^{-3} -> 10⁻³, x_1 -> x₁ (as HF's own summaries write them); any
    other script stays as LaTeX wrote it."""

    def one(match: re.Match[str]) -> str:
        mark, body = match.group(1), match.group(2) or match.group(3)
        if mark == "_" and "n" in body:
            return match.group(0)
        return body.translate(_SUPER if mark == "^" else _SUB)

    return _SCRIPT.sub(one, text)


def _math_scripts(text: str) -> str:
    """Scripts inside $...$ become Unicode before the conversion (outside math a caret
    or an underscore is just a character)."""
    return re.sub(r"(?<!\\)\$([^$]+)(?<!\\)\$", lambda m: "$" + _scripts(m.group(1)) + "$", text)


def readable(text: str) -> str:
    """Plain readable text. Text without LaTeX passes through untouched (the fast path);
    a conversion that would drop words falls back to a plain clean-up."""
    if "$" not in text and "\\" not in text:
        return normalise_space(text)
    prepared = _ESCAPE.sub(r"\\\1", text)
    if len(re.findall(r"(?<!\\)\$", prepared)) % 2:  # a lone "$" is money, not math
        prepared = re.sub(r"(?<!\\)\$", r"\\$", prepared)
    else:
        text = prepared = _math_scripts(prepared)
    try:
        converted = normalise_space(_LATEX.latex_to_text(prepared))
    except Exception:  # pylatexenc raises on some malformed input
        log.debug("LaTeX conversion failed for %r", text[:80], exc_info=True)
        return _plain(text)
    if _lost_words(text, converted):
        return _plain(text)
    return converted


def _lost_words(source: str, converted: str) -> bool:
    words = set(_WORD.findall(_COMMAND.sub(" ", source)))
    return not words <= set(_WORD.findall(converted))


def _plain(text: str) -> str:
    previous = None
    while previous != text:
        previous, text = text, _BRACED_COMMAND.sub(r"\1", text)
    text = re.sub(r"\\([A-Za-z]+)", r"\1", text)
    return normalise_space(
        text.replace("$", "").replace("\\", "").replace("{", "").replace("}", "")
    )
