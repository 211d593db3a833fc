"""A robot-webhook double for the benchmarks: answers every POST at once with success.

Run as ``python -m bench.webhook_double PORT``; ``GET /recorded`` returns every POST so
far (path with query, body), which the baseline then replays.
It answers in the shape of all three platforms at once (``errcode`` 0 and ``code`` 0).
"""

from __future__ import annotations

import base64
import json
import sys

from aiohttp import web

_OK = b'{"errcode":0,"errmsg":"ok","code":0,"msg":"success"}'


def main() -> None:
    recorded: list[tuple[str, bytes]] = []

    async def post(request: web.Request) -> web.Response:
        recorded.append((request.path_qs, await request.read()))
        return web.Response(body=_OK, content_type="application/json")

    async def dump(request: web.Request) -> web.Response:
        rows = [[path, base64.b64encode(body).decode()] for path, body in recorded]
        recorded.clear()
        return web.Response(text=json.dumps(rows), content_type="application/json")

    async def ready(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/recorded", dump)
    app.router.add_get("/healthz", ready)
    app.router.add_post("/{tail:.*}", post)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()
