"""Render a DigestContent into subject, preheader, plain text and HTML.

    renderer = Renderer(templates_dir)      # once per run / per worker process
    rendered = renderer.render(content)     # -> RenderedDigest

    render_digest(content)                  # the same with a shared default Renderer

Modules: `clean` (text clean-up: control/bidi characters, LaTeX, cutting), `highlight`
(<mark> the matched terms), `words` (subject, preheader, lead-in), `views` (what the templates
see), `templating` (the jinja2 environment, CSS inlined into the templates once) and
`renderer` (the Renderer with its per-paper caches). The layout lives in templates/ (shipped as
the package ``digest.templates``); a `templates` folder in the config overrides any of them.
"""

from __future__ import annotations

import functools
from pathlib import Path

from digest.models import DigestContent, RenderedDigest
from digest.render.clean import safe_url, trim
from digest.render.renderer import HTML_BUDGET_BYTES, Renderer, mailto_unsubscribe
from digest.render.templating import TemplateSourceError, make_environment
from digest.render.views import ABSTRACT_CHARS


@functools.cache
def renderer_for(templates_dir: Path | None = None) -> Renderer:
    """One Renderer per templates folder per process (its caches are bounded)."""
    return Renderer(templates_dir)


def render_digest(content: DigestContent, templates_dir: Path | None = None) -> RenderedDigest:
    return renderer_for(templates_dir).render(content)


__all__ = [
    "ABSTRACT_CHARS",
    "HTML_BUDGET_BYTES",
    "Renderer",
    "TemplateSourceError",
    "mailto_unsubscribe",
    "make_environment",
    "render_digest",
    "renderer_for",
    "safe_url",
    "trim",
]
