"""The stack's Prefect server: Prefect's app as `prefect server start` serves it (one uvicorn process with the
services, settings from the environment), with `BusyHintMiddleware` around it. On SQLite a write that meets
another is answered 503 without `Retry-After` (an ffmpeg slot asked for while a task run's state is written,
measured 3 times in 8 small jobs), and Prefect's client then waits 2 s: a small job took 4.4 s instead of 2.2.

`python -m vodflow.stack.server --host 127.0.0.1 --port PORT`
"""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vodflow.stack.server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)

    import uvicorn
    from prefect.server.api.server import create_app
    from prefect.settings import (
        PREFECT_SERVER_API_KEEPALIVE_TIMEOUT,
        PREFECT_SERVER_API_WEBSOCKET_PING_INTERVAL,
        PREFECT_SERVER_API_WEBSOCKET_PING_TIMEOUT,
        PREFECT_SERVER_LOGGING_LEVEL,
    )

    from vodflow.net.busy import BusyHintMiddleware

    print(f"Prefect server (vodflow's stack) on http://{args.host}:{args.port}", flush=True)
    uvicorn.run(
        BusyHintMiddleware(create_app(final=True)),
        host=args.host,
        port=args.port,
        timeout_keep_alive=PREFECT_SERVER_API_KEEPALIVE_TIMEOUT.value(),
        ws_ping_interval=PREFECT_SERVER_API_WEBSOCKET_PING_INTERVAL.value(),
        ws_ping_timeout=PREFECT_SERVER_API_WEBSOCKET_PING_TIMEOUT.value(),
        log_level=PREFECT_SERVER_LOGGING_LEVEL.value().lower(),
    )


if __name__ == "__main__":
    main()
