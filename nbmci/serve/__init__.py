"""Serving: an HTTP endpoint that follows each model's ``production`` alias.

``host`` (engine: alias follower, loading, smoke test, atomic swap) and ``batching``
(micro-batching) know nothing of HTTP; ``app`` (the ASGI face), ``protocols`` (Open Inference
v2 and MLflow codecs), ``metrics`` and ``command`` (the ``nbmci serve`` click command) sit on
top. Importing this package imports none of them.
"""

from nbmci.serve.settings import ServeSettings

__all__ = ["ServeSettings"]
