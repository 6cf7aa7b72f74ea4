"""The reader's side: signed links in mails, one-click unsubscribe, feedback, view online, the
profile page.

    digest.web.tokens    sign and check link tokens (HMAC-SHA256)
    digest.web.links     the links the pipeline puts into a digest
    digest.web.readers   who a token's reader ref stands for (the config's and the state's readers)
    digest.web.state     the state behind bounded waits (busy: 503, never 500)
    digest.web.app       the ASGI app (Starlette): create_app(config, clock=..., mailer=...)
    digest.web.profile   the reader's profile page; profile_form, interests: its form, imports
    digest.web.guard     headers, rate limit, in-flight cap, the access log (no tokens)
    digest.web.protocol  uvicorn's h11 protocol with a deadline per request and a connection cap
    digest.web.server    uvicorn: serve_web(config, stop=...) and serve_forever(config, ready=...)

Importing this package (or tokens / links) does not import Starlette or uvicorn: the pipeline
only needs the links.
"""
