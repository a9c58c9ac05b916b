# W9 peer: aiohttp.web on uvloop, same two endpoints. w9_aiohttp.py PORT
import asyncio, json, sys
import uvloop
from aiohttp import web

items = [{"id": i, "name": "item number %d" % i, "price": i * 1.25,
          "tags": ["alpha", "beta", "gamma"], "active": i % 2 == 0,
          "description": "a short description of item %d" % i}
         for i in range(1, 17)]
doc = {"items": items, "count": len(items), "page": 1}

async def hello(request):
    return web.Response(text="Hello, world!")

async def as_json(request):
    return web.Response(text=json.dumps(doc), content_type="application/json")

app = web.Application()
app.router.add_get("/hello", hello)
app.router.add_get("/json", as_json)
uvloop.install()
print("ready", flush=True)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None,
            access_log=None)
