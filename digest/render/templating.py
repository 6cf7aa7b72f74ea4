"""The jinja2 environment of the email templates, with the CSS inlined into them once.

Templates come from the `templates` folder of the config (when set) and then from the shipped
package `digest.templates` (a jinja2 ChoiceLoader): a file in the folder overrides the shipped
one of the same name.

CSS inlining happens on the template *source*, when a template is first loaded: the rules of
`digest.css` become style="" attributes in the template itself, so rendering a message costs no
inlining at all. To let an HTML parser (css-inline's) read a template, each jinja tag is first
swapped for a placeholder: `{% ... %}` for a comment, `{{ ... }}` for a private-use token, and
each <style> block (media queries, dark mode: they stay as they are) for a comment; after
inlining they are put back, and a template whose placeholders moved or vanished (a jinja tag
where HTML allows no text, such as between <tr>s, or inside a tag) is an error at start-up.
CSS rules are matched per template, so selectors should be single classes or tags.
"""

from __future__ import annotations

import functools
import re
import textwrap
from collections.abc import Callable
from pathlib import Path

import css_inline
from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    TemplateNotFound,
    select_autoescape,
)

TEMPLATE_PACKAGE = "digest.templates"
STYLESHEET = "digest.css"
TEXT_WIDTH = 72

# Jinja tags, and <style> blocks (kept as written): one pass, so placeholders number in order.
_PROTECTED = re.compile(
    r"\{%.*?%\}|\{\{.*?\}\}|\{#.*?#\}|<style\b.*?</style>", re.DOTALL | re.IGNORECASE
)
_PLACEHOLDER = re.compile(r"<!--\ue000(\d+)-->|\ue001(\d+)\ue002")


class TemplateSourceError(ValueError):
    """A template cannot have its CSS inlined (the message says which and why)."""


def inline_template(source: str, css: str, name: str) -> str:
    """The template source with `css` inlined into its elements (see the module docstring)."""
    saved: list[str] = []

    def keep(match: re.Match[str]) -> str:
        text = match.group(0)
        if text.startswith("{#"):
            return ""
        saved.append(text)
        n = len(saved) - 1
        return f"\ue001{n}\ue002" if text.startswith("{{") else f"<!--\ue000{n}-->"

    protected = _PROTECTED.sub(keep, source)
    document = bool(re.match(r"\s*(<!--\ue000\d+-->\s*)*<!doctype", protected, re.IGNORECASE))
    inliner = css_inline.CSSInliner(
        keep_at_rules=True, minify_css=True, load_remote_stylesheets=False, extra_css=css
    )
    inlined = inliner.inline(protected) if document else inliner.inline_fragment(protected, "")
    order: list[int] = []

    def restore(match: re.Match[str]) -> str:
        n = int(match.group(1) if match.group(1) is not None else match.group(2))
        order.append(n)
        return saved[n]

    out = _PLACEHOLDER.sub(restore, inlined)
    if order != list(range(len(saved))):
        lost = sorted(set(range(len(saved))) - set(order))
        where = saved[lost[0]] if lost else "a tag between table rows"
        raise TemplateSourceError(
            f"template {name}: a jinja tag is where HTML allows no text ({where[:60]!r}); "
            "put it inside an element (a <td>, <p> or <a>), not between <tr>s or inside a tag"
        )
    return out


class InliningLoader(BaseLoader):
    """Wraps a loader: `*.html.j2` sources come back with the stylesheet inlined."""

    def __init__(self, base: BaseLoader) -> None:
        self.base = base

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        source, filename, uptodate = self.base.get_source(environment, template)
        if template.endswith(".html.j2"):
            css, _, _ = self.base.get_source(environment, STYLESHEET)
            source = inline_template(source, css, template)
        return source, filename, uptodate

    def list_templates(self) -> list[str]:
        return self.base.list_templates()


def make_environment(templates_dir: Path | None = None) -> Environment:
    """The environment for the email templates: the override folder first, then the package."""
    loaders: list[BaseLoader] = []
    if templates_dir is not None:
        loaders.append(FileSystemLoader(str(templates_dir)))
    loaders.append(PackageLoader(TEMPLATE_PACKAGE, ""))
    env = Environment(
        loader=InliningLoader(ChoiceLoader(loaders)),
        autoescape=select_autoescape(
            enabled_extensions=("html.j2", "html"),
            disabled_extensions=("txt.j2", "css", "txt"),
            default=True,
            default_for_string=True,
        ),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.filters["wrap"] = wrap
    return env


@functools.lru_cache(maxsize=4096)
def wrap(text: str, width: int = TEXT_WIDTH, indent: str = "", first: str | None = None) -> str:
    """textwrap.fill as a template filter: `{{ s | wrap(72, "   ") }}`. Cached: a paper's
    abstract and authors are wrapped once, whichever readers' digests they go into."""
    return textwrap.fill(
        text,
        width=width,
        initial_indent=indent if first is None else first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


__all__ = ["TemplateNotFound", "TemplateSourceError", "inline_template", "make_environment"]
