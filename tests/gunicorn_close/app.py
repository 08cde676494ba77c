"""A minimal WSGI application for tests/gunicorn_close: `/read` reads its request body whole
before answering; `/refuse` answers 413 without reading it (as a size or key check does), with
an answer of `?size=` bytes (a large one is still in the server's send buffer when it closes)."""


def application(environ, start_response):
    if environ["PATH_INFO"] == "/refuse":
        size = int(environ.get("QUERY_STRING", "").partition("size=")[2] or 9)
        body = b"too large".rjust(size, b".")
        start_response("413 Content Too Large", [("Content-Length", str(len(body)))])
        return [body]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    received = environ["wsgi.input"].read(length) if length else b""
    body = b"read %d" % len(received)
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
