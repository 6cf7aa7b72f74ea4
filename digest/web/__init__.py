"""The reader's side: signed links in mails, one-click unsubscribe, feedback, view online.

    digest.web.tokens   sign and check link tokens (HMAC-SHA256)
    digest.web.links    the links the pipeline puts into a digest
    digest.web.app      the ASGI app (Starlette): create_app(config, clock=...)
    digest.web.server   uvicorn: serve_web(config, stop=...) and serve_forever(config)

Importing this package (or tokens / links) does not import Starlette or uvicorn: the pipeline
only needs the links.
"""
