"""Text clean-up for the email: what only the mail needs on top of valid text. Validity (no
surrogate, control, bidi or zero-width character; NFC; one line; long words and sizes
bounded) is `digest.text.valid_text`'s, the same function every source runs its text through,
so the two never disagree; here LaTeX is made readable and text is cut for the layout. Every
string taken from a page passes through `clean` once per run (the Renderer caches the cleaned
paper), so these regexes run once per paper, not once per paper per digest.
"""

from __future__ import annotations

import functools
import re

from digest.text import trim, valid_text, valid_url

_SENTENCE_END = re.compile(r"[.!?](?=\s+[\"'(\[]?[A-Z0-9])")

__all__ = [
    "LONG_TEXT_CHARS",
    "TITLE_CHARS",
    "clean",
    "cut_at_sentence",
    "first_sentence",
    "readable_latex",
    "safe_url",
    "trim",  # digest.text's, re-exported: the renderer's modules cut text from here
]

TITLE_CHARS = 300  # a title longer than this is cut (a 10 KB title would fill a phone screen)
LONG_TEXT_CHARS = 4000  # any other field is cut here before anything else looks at it


def clean(text: str | None, limit: int = LONG_TEXT_CHARS) -> str:
    """One line of valid text (digest.text.valid_text) with LaTeX made readable, at most
    `limit` characters (cut at a word boundary)."""
    # Valid first, with room for what readable LaTeX shortens; cut to the layout's size after.
    text = valid_text(text, limit * 4 + 64)
    if "\\" in text or "$" in text:
        text = readable_latex(text)
    return trim(text, limit)


@functools.lru_cache(maxsize=4096)
def cut_at_sentence(text: str, limit: int) -> tuple[str, bool]:
    """About `limit` characters of text, ending at a sentence end where one is close enough;
    returns (the text, whether it was cut)."""
    if len(text) <= limit * 1.15:
        return text, False
    best = -1
    for match in _SENTENCE_END.finditer(text, 0, limit + 1):
        best = match.end()
    if best >= limit * 0.45:
        return text[:best], True
    return trim(text, limit), True


def first_sentence(text: str, limit: int) -> str:
    """The first sentence of text, at most `limit` characters."""
    match = _SENTENCE_END.search(text)
    if match and match.end() <= limit:
        return text[: match.end()]
    return trim(text, limit)


def safe_url(url: str) -> str:
    """An http(s) URL fit for an href and a text line, or "" (javascript: and the like, and
    any URL holding an invisible character): digest.text.valid_url, the sources' own check."""
    return valid_url(url)


# --- simple LaTeX -> Unicode -------------------------------------------------------------------

_GREEK = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "varepsilon": "ε",
    "zeta": "ζ", "eta": "η", "theta": "θ", "vartheta": "ϑ", "iota": "ι", "kappa": "κ",
    "lambda": "λ", "mu": "μ", "nu": "ν", "xi": "ξ", "pi": "π", "rho": "ρ", "sigma": "σ",
    "tau": "τ", "upsilon": "υ", "phi": "φ", "varphi": "φ", "chi": "χ", "psi": "ψ",
    "omega": "ω", "Gamma": "Γ", "Delta": "Δ", "Theta": "Θ", "Lambda": "Λ", "Xi": "Ξ",
    "Pi": "Π", "Sigma": "Σ", "Phi": "Φ", "Psi": "Ψ", "Omega": "Ω",
}  # fmt: skip
_SYMBOLS = {
    "cdot": "·", "times": "×", "leq": "≤", "le": "≤", "geq": "≥", "ge": "≥", "neq": "≠",
    "ne": "≠", "approx": "≈", "sim": "∼", "infty": "∞", "in": "∈", "to": "→",
    "rightarrow": "→", "leftarrow": "←", "Rightarrow": "⇒", "pm": "±", "sum": "∑",
    "prod": "∏", "partial": "∂", "nabla": "∇", "ell": "ℓ", "ldots": "…", "dots": "…",
    "cdots": "⋯", "log": "log", "exp": "exp", "max": "max", "min": "min", "sqrt": "√",
    "%": "%", "&": "&", "_": "_", "#": "#", "{": "{", "}": "}", ",": " ", ";": " ",
    "!": "", " ": " ", "quad": " ", "star": "⋆", "circ": "∘", "mid": "|", "vert": "|",
}  # fmt: skip
_SUPER = str.maketrans(
    "0123456789+-=()abcdefghijklmnoprstuvwxyzT*", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐⁿᵒᵖʳˢᵗᵘᵛʷˣʸᶻᵀ*"
)
_SUB = str.maketrans("0123456789+-=()aeoxhklmnpstijruv", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₒₓₕₖₗₘₙₚₛₜᵢⱼᵣᵤᵥ")
_SCRIPT_SPECIAL = {"B": "ℬ", "E": "ℰ", "F": "ℱ", "H": "ℋ", "I": "ℐ", "L": "ℒ", "M": "ℳ", "R": "ℛ"}
_DOUBLE_SPECIAL = {"C": "ℂ", "H": "ℍ", "N": "ℕ", "P": "ℙ", "Q": "ℚ", "R": "ℝ", "Z": "ℤ"}

_MATH = re.compile(r"\$([^$]{1,200})\$|\\\((.{1,200}?)\\\)")
_FONT = re.compile(
    r"\\(mathcal|mathbb|mathrm|mathbf|mathit|text|textbf|textit|operatorname)\{([^{}\\]*)\}"
)
_COMMAND = re.compile(r"\\([A-Za-z]+|[%&_#{},;! ])")
_SCRIPT = re.compile(r"([\^_])(\{[^{}\\]*\}|[A-Za-z0-9+\-*])")
_BARE = re.compile(r"\\([A-Za-z]+)(?![A-Za-z])")


def _font(match: re.Match[str]) -> str:
    kind, body = match.group(1), match.group(2)
    if kind == "mathcal":
        return "".join(_script_letter(c) for c in body)
    if kind == "mathbb":
        return "".join(_double_letter(c) for c in body)
    return body


def _script_letter(c: str) -> str:
    if c in _SCRIPT_SPECIAL:
        return _SCRIPT_SPECIAL[c]
    return chr(0x1D49C + ord(c) - ord("A")) if "A" <= c <= "Z" else c


def _double_letter(c: str) -> str:
    if c in _DOUBLE_SPECIAL:
        return _DOUBLE_SPECIAL[c]
    return chr(0x1D538 + ord(c) - ord("A")) if "A" <= c <= "Z" else c


def _command(match: re.Match[str]) -> str:
    name = match.group(1)
    return _GREEK.get(name) or _SYMBOLS.get(name) or match.group(0)


def _scripted(match: re.Match[str]) -> str:
    mark, body = match.group(1), match.group(2).strip("{}")
    table = _SUPER if mark == "^" else _SUB
    out = body.translate(table)
    # Only when every character has a super/subscript form; else leave it as it was.
    if any(a == b and a not in "*" for a, b in zip(body, out, strict=True)):
        return match.group(0)
    return out


def _math(body: str) -> str | None:
    """Readable Unicode for a short math expression, or None when unsure."""
    out = _FONT.sub(_font, body)
    out = _COMMAND.sub(_command, out)
    out = _SCRIPT.sub(_scripted, out)
    out = re.sub(r"\{([^{}\\]*)\}", r"\1", out)
    if any(c in out for c in "\\^_{}"):
        return None
    return re.sub(r" {2,}", " ", out).strip()


def _math_match(match: re.Match[str]) -> str:
    body = match.group(1) if match.group(1) is not None else match.group(2)
    # "$5 and $10" is money, not math: TeX math never starts or ends with a space, and a
    # plain span without a command or script is only taken when it is one short token.
    if body != body.strip() or (
        not any(c in body for c in "\\^_") and (len(body) > 12 or " " in body)
    ):
        return match.group(0)
    readable = _math(body)
    return match.group(0) if readable is None else readable


def _bare(match: re.Match[str]) -> str:
    name = match.group(1)
    return _GREEK.get(name) or match.group(0)


def readable_latex(text: str) -> str:
    """$\\mathcal{O}(n^2)$ -> 𝒪(n²), \\alpha -> α; anything it is unsure of stays as written."""
    if "$" in text or "\\(" in text:
        text = _MATH.sub(_math_match, text)
    if "\\" in text:
        text = _BARE.sub(_bare, text)
    return text
