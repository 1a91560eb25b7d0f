"""``nbmci serve``: a click command; register it with ``app.add_command(serve)`` in ``cli.py``.

Runs ``create_app`` on uvicorn (uvloop and httptools when ``uvicorn[standard]`` is installed).
The first SIGTERM or Ctrl-C turns readiness to 503 at once, keeps serving for ``--drain``
seconds, then closes the listener and lets in-flight requests finish; a second one exits now.
"""

from __future__ import annotations

import gc
import logging
import threading
from typing import Any

import click

from nbmci.serve.settings import ServeSettings

logger = logging.getLogger(__name__)


def _server_class() -> Any:
    import uvicorn

    class DrainingServer(uvicorn.Server):
        def __init__(self, config: uvicorn.Config, state: Any, drain: float) -> None:
            super().__init__(config)
            self.serve_state = state
            self.drain = drain

        def handle_exit(self, sig: int, frame: Any) -> None:
            if self.serve_state.draining:  # the second signal: stop waiting
                self.should_exit = self.force_exit = True
                return
            self.serve_state.draining = True
            if self.drain <= 0:
                self.should_exit = True
                return
            timer = threading.Timer(self.drain, setattr, (self, "should_exit", True))
            timer.daemon = True
            timer.start()

    return DrainingServer


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on; anything but loopback should have --token.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--model", "models", multiple=True,
              help="Serve this model (repeatable). Default: every model with a production "
                   "version.")
@click.option("--poll-interval", default=1.0, show_default=True, type=click.FloatRange(0.05),
              help="Seconds between reads of the production aliases.")
@click.option("--trust-pickle", is_flag=True,
              help="Also load models stored as pickles (loading one can run its code).")
@click.option("--token", envvar="NBMCI_SERVE_TOKEN", default=None,
              help="Token the admin routes need (also NBMCI_SERVE_TOKEN).")
@click.option("--allowed-host", "allowed_hosts", multiple=True,
              help="Host header names to accept (repeatable; '*' for any).")
@click.option("--max-body", default=10 << 20, show_default=True, type=click.IntRange(1),
              help="Largest request body in bytes (413 above it).")
@click.option("--max-batch", default=64, show_default=True, type=click.IntRange(1),
              help="Most rows per predict call.")
@click.option("--max-wait-ms", default=0.0, show_default=True, type=click.FloatRange(0),
              help="Milliseconds to wait for more rows before predicting a partial batch.")
@click.option("--timeout", default=30.0, show_default=True, type=click.FloatRange(0.001),
              help="Seconds a request may wait for its prediction (504 after).")
@click.option("--drain", default=0.0, show_default=True, type=click.FloatRange(0),
              help="Seconds to stay up (not ready) after SIGTERM before closing the listener.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
def serve(host: str, port: int, models: tuple[str, ...], poll_interval: float,
          trust_pickle: bool, token: str | None, allowed_hosts: tuple[str, ...], max_body: int,
          max_batch: int, max_wait_ms: float, timeout: float, drain: float,
          log_level: str) -> None:
    """Serve the production version of each model over HTTP (Open Inference v2 and MLflow)."""
    import uvicorn

    from nbmci import api, refs
    from nbmci.serve.app import create_app

    for name in models:
        refs.validate_name(name)
    settings = ServeSettings(host=host, port=port, models=models, poll_interval=poll_interval,
                             trust_pickle=trust_pickle, token=token,
                             allowed_hosts=allowed_hosts, max_body=max_body,
                             max_batch=max_batch, max_wait=max_wait_ms / 1000, timeout=timeout,
                             drain=drain)
    if not settings.is_loopback and token is None:
        click.secho(f"warning: listening on {host} without --token: anyone who can reach this "
                    "port can request predictions; admin routes stay off.", fg="yellow",
                    err=True)
    if trust_pickle:
        click.secho("warning: --trust-pickle: pickled models will be loaded and can run code.",
                    fg="yellow", err=True)
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s: %(name)s: %(message)s")
    app = create_app(settings, project=api.project())
    from nbmci.serve.transport import GatheringHttpProtocol

    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, ws="none",
                            http=GatheringHttpProtocol,
                            lifespan="on", access_log=False, server_header=False,
                            proxy_headers=False,  # nothing here reads the client's address
                            timeout_graceful_shutdown=int(timeout) + 5)
    server = _server_class()(config, app.state.serve, drain)
    app.count_requests_with(server.server_state.tasks)
    app.state.serve.host.add_listener(_FreezeAfterFirstSwap())
    server.run()


class _FreezeAfterFirstSwap:
    """Once the first model is live, keep everything alive then (modules, classes, scikit-learn
    and SciPy, that model) out of the cyclic garbage collector. Otherwise a full collection
    walks them all and stalls every request for about 0.1 s, several times a second under
    load. Only the first swap freezes: later versions stay collectable, so at most that first
    model outlives its version if it holds reference cycles."""

    def __init__(self) -> None:
        self._done = False

    def __call__(self, event: Any) -> None:
        if event.kind == "swapped" and not self._done:
            self._done = True
            gc.collect()
            gc.freeze()
