"""Mosaic's delivery core: request context, snapshot, decide, visitors, profile cache, the decide
API, middleware, snapshot invalidation signals, the variant preview, the template tag and the
JS snippet.
"""
