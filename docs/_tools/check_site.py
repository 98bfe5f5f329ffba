"""Open every page of the built site (site/) in headless Chromium and check what a reader sees.

Each page must render its title and first heading, every code block it has in the HTML (visible,
with text), its images, and on API reference pages the signatures; nothing may log a console error, throw,
or fail a request. The site is served over loopback by aiohttp.web; Chromium is driven over the
DevTools protocol with aiohttp's WebSocket client, so nothing beyond the SDK's own dependencies is
needed. Without Chromium it prints a note and exits 0 (`make docs` installs it where it can).

    python docs/_tools/check_site.py [site]
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--remote-debugging-port=0",
]  # fmt: skip
PAGE_TIMEOUT = 20.0
# What a reader sees, measured in the page: only elements with a box and text count.
PROBE = """(() => {
  const shown = (el) => el.getClientRects().length > 0 && el.textContent.trim() !== "";
  const h1 = document.querySelector("article h1, .md-content h1");
  return JSON.stringify({
    title: document.title,
    h1: h1 && shown(h1) ? h1.textContent.trim() : null,
    code: [...document.querySelectorAll(".md-content pre > code")].filter(shown).length,
    signatures: [...document.querySelectorAll(".md-content .doc-signature")].filter(shown).length,
    broken_images: [...document.images].filter((i) => !i.complete || i.naturalWidth === 0).map((i) => i.src),
  });
})()"""


def expected(html: str) -> dict[str, Any]:
    """What the built HTML of a page promises: its title, its code blocks, its signatures."""
    content = html.split('<div class="md-content"', 1)[-1]
    title = re.search(r"<title>(.*?)</title>", html, re.S)
    return {
        "title": title.group(1).strip().replace("&amp;", "&") if title else "",
        "code": len(re.findall(r"<pre\b[^>]*>\s*(?:<span></span>)?<code", content)),
        "signatures": content.count('class="doc-signature'),
    }


def site_app(root: Path) -> web.Application:
    """Serve the built site as a static host does: a directory URL serves its index.html."""

    async def serve(request: web.Request) -> web.StreamResponse:
        path = (root / request.match_info["path"]).resolve()
        if root not in (path, *path.parents):
            raise web.HTTPNotFound()
        if path.is_dir():
            path = path / "index.html"
        if not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path)

    app = web.Application()
    app.router.add_get("/{path:.*}", serve)
    return app


class DevTools:
    """A minimal DevTools-protocol client over one WebSocket, attached to one page target."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse[bool]) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.session: str | None = None
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            data = json.loads(message.data)
            future = self.replies.pop(data.get("id", -1), None)
            if future is not None and not future.done():
                future.set_result(data)
            elif "method" in data:
                self.events.put_nowait(data)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        number = next(self.ids)
        message: dict[str, Any] = {"id": number, "method": method, "params": params}
        if self.session is not None:
            message["sessionId"] = self.session
        future = self.replies[number] = asyncio.get_running_loop().create_future()
        await self.ws.send_str(json.dumps(message))
        reply = await asyncio.wait_for(future, PAGE_TIMEOUT)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return dict(reply.get("result", {}))


def _problem(event: dict[str, Any]) -> str | None:
    """The console error, exception or failed request an event reports, if any."""
    method, params = event["method"], event.get("params", {})
    if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
        return "console: " + " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
    if method == "Runtime.exceptionThrown":
        details = params["exceptionDetails"]
        return "exception: " + str(details.get("exception", {}).get("description", details.get("text")))
    if method == "Log.entryAdded" and params["entry"]["level"] == "error":
        return f"log: {params['entry']['text']} {params['entry'].get('url', '')}".strip()
    return None


@contextlib.asynccontextmanager
async def chromium(executable: str) -> AsyncIterator[DevTools]:
    """A fresh headless Chromium (own profile directory) and a DevTools session on a blank page."""
    # Chromium's helpers may still write to the profile as it exits: cleaning up is best effort.
    with tempfile.TemporaryDirectory(prefix="docs-chromium-", ignore_cleanup_errors=True) as profile:
        process = await asyncio.create_subprocess_exec(
            executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank",
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            for _ in range(200):
                if port_file.exists() and len(port_file.read_text().split()) == 2:
                    break
                await asyncio.sleep(0.05)
            port, path = port_file.read_text().split()
            async with (
                aiohttp.ClientSession() as http,
                http.ws_connect(f"ws://127.0.0.1:{port}{path}", max_msg_size=0) as ws,
            ):
                tools = DevTools(ws)
                target = await tools.call("Target.createTarget", url="about:blank")
                target_id = target["targetId"]
                attached = await tools.call("Target.attachToTarget", targetId=target_id, flatten=True)
                tools.session = attached["sessionId"]
                for domain in ("Page", "Runtime", "Log"):
                    await tools.call(f"{domain}.enable")
                try:
                    yield tools
                finally:
                    tools.reader.cancel()
        finally:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()


async def check_page(tools: DevTools, url: str, want: dict[str, Any], reference: bool) -> list[str]:
    """Load one page and return what is wrong with it (nothing: an empty list)."""
    while not tools.events.empty():
        tools.events.get_nowait()
    await tools.call("Page.navigate", url=url)
    problems: list[str] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PAGE_TIMEOUT
    loaded_at: float | None = None
    while True:  # collect events until the load event, then 300 ms more for late scripts
        until = (loaded_at + 0.3) if loaded_at is not None else deadline
        try:
            event = await asyncio.wait_for(tools.events.get(), max(0.0, until - loop.time()))
        except asyncio.TimeoutError:
            if loaded_at is None:
                problems.append("did not finish loading")
            break
        if event["method"] == "Page.loadEventFired" and loaded_at is None:
            loaded_at = loop.time()
        problem = _problem(event)
        if problem is not None:
            problems.append(problem)
    found = json.loads((await tools.call("Runtime.evaluate", expression=PROBE))["result"]["value"])
    if found["title"] != want["title"] or not found["title"]:
        problems.append(f"title {found['title']!r}, expected {want['title']!r}")
    if not found["h1"]:
        problems.append("no visible first heading")
    if found["code"] != want["code"]:
        problems.append(f"{found['code']} code blocks shown of {want['code']}")
    for image in found["broken_images"]:
        problems.append(f"image not shown: {image}")
    if found["signatures"] != want["signatures"] or (reference and not found["signatures"]):
        problems.append(f"{found['signatures']} signatures shown of {want['signatures']}")
    return problems


async def check_site(root: Path, pages: list[Path], executable: str) -> int:
    runner = web.AppRunner(site_app(root), access_log=None)
    await runner.setup()
    failed = 0
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}/"
        async with chromium(executable) as tools:
            for page in pages:
                relative = page.parent.relative_to(root).as_posix()
                url = base + ("" if relative == "." else relative + "/")
                want = expected(page.read_text(encoding="utf-8"))
                problems = await check_page(tools, url, want, relative.startswith("reference"))
                status = "ok" if not problems else "FAIL"
                print(f"{status:4} /{'' if relative == '.' else relative + '/'}: {want['code']} code blocks, "
                      f"{want['signatures']} signatures")  # fmt: skip
                for problem in problems:
                    print(f"       {problem}")
                failed += bool(problems)
    finally:
        await runner.cleanup()
    summary = f"{len(pages) - failed} of {len(pages)} pages render in Chromium"
    print(summary + (f", {failed} FAILED" if failed else ""))
    return 1 if failed or not pages else 0


def main() -> int:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "site").resolve()
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        print("note: no chromium on PATH, so the built pages were not checked in a browser")
        return 0
    if not (root / "index.html").is_file():
        print(f"{root}/index.html not found: build the site first (mkdocs build)")
        return 1
    pages = sorted(p for p in root.rglob("index.html") if "assets" not in p.relative_to(root).parts)
    return asyncio.run(check_site(root, pages, executable))


if __name__ == "__main__":
    sys.exit(main())
