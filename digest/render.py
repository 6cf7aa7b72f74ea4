"""Render a DigestContent into subject, plain text and HTML. (owned by the rendering helper)

    def render_digest(content: DigestContent) -> RenderedDigest
"""
