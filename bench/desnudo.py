"""``python -m bench.desnudo --port P``: the bare endpoint, the HTTP layer's ceiling.

A Starlette app with one route, ``POST /eco``, that decodes the JSON body and
answers it back with 201, served by uvicorn with the options a node uses
(``servidor.cli``). What a node does per order on top of this is the cost
of pedidos itself.
"""

from __future__ import annotations

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from servidor.cli import PARADA_ORDENADA_S


async def eco(request: Request) -> JSONResponse:
    return JSONResponse(await request.json(), status_code=201)


def main() -> int:
    a = argparse.ArgumentParser(prog="python -m bench.desnudo", description="A bare Starlette JSON endpoint.")
    a.add_argument("--port", type=int, required=True)
    args = a.parse_args()
    app = Starlette(routes=[Route("/eco", eco, methods=["POST"])])
    config = uvicorn.Config(
        app=app,
        host="127.0.0.1",
        port=args.port,
        timeout_graceful_shutdown=PARADA_ORDENADA_S,
        log_level="warning",
        lifespan="on",
    )
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
