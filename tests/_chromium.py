"""Open a page in a real headless Chromium, offline, and report what it rendered and requested.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: requests on
fd 3, replies on fd 4, NUL-separated JSON), so no websocket client and no open port are needed.
The browser gets a throw-away profile and a dead proxy plus a resolver that maps every host to
NOTFOUND, so nothing can leave the machine; the page's own requests are recorded from
``Network.requestWillBeSent`` to prove it never tried. (The browser process itself may still try
its own background fetches, which the dead proxy blocks; those are not the page's and are not
reported.) Debian's package is ``chromium`` (``apt-get install -y chromium``).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-default-apps", "--disable-extensions", "--mute-audio",
    "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
)

# Counts, per vega-embed container, of the marks drawn in its SVG, and the error it reported.
CHART_STATE_JS = """
Array.from(document.querySelectorAll('[data-chart]')).map(function (el) {
  var svg = el.querySelector('svg.marks');
  return {id: el.id, rendered: el.getAttribute('data-rendered'),
          error: el.getAttribute('data-error'),
          marks: svg ? svg.querySelectorAll('path, line, rect, circle, text').length : 0,
          svg_width: svg ? Number(svg.getAttribute('width')) : 0};
})
"""


def find_chromium() -> str | None:
    """The path of a Chromium binary, or None."""
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageResult:
    requests: list[str] = field(default_factory=list)
    value: Any = None
    exceptions: list[str] = field(default_factory=list)

    def external_requests(self) -> list[str]:
        """Requests to anything but the page's own file and inline data."""
        return [u for u in self.requests if not u.startswith(("file:", "data:", "blob:"))]


class _Pipe:
    def __init__(self, write_fd: int, read_fd: int) -> None:
        self.write_fd, self.read_fd = write_fd, read_fd
        self.buf = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None) -> int:
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.write_fd, json.dumps(msg).encode() + b"\0")
        return self.next_id

    def wait_for(self, pred: Any, timeout: float) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while True:
            while b"\0" in self.buf:
                raw, self.buf = self.buf.split(b"\0", 1)
                msg = json.loads(raw)
                self.events.append(msg)
                if pred(msg):
                    return msg
            left = end - time.monotonic()
            if left <= 0:
                msg = "timed out waiting for Chromium"
                raise TimeoutError(msg)
            ready, _, _ = select.select([self.read_fd], [], [], min(left, 0.5))
            if ready:
                chunk = os.read(self.read_fd, 1 << 20)
                if not chunk:
                    msg = "Chromium closed the DevTools pipe"
                    raise RuntimeError(msg)
                self.buf += chunk

    def call(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None, timeout: float = 20.0) -> dict[str, Any]:
        i = self.send(method, params, session)
        msg = self.wait_for(lambda m: m.get("id") == i, timeout)
        if "error" in msg:
            raise RuntimeError(f"{method}: {msg['error']}")
        return msg["result"]


def open_page(url: str, *, expression: str, until: str | None = None,
              timeout: float = 30.0, binary: str | None = None) -> PageResult:
    """Load ``url`` offline, then evaluate ``expression`` (JSON-returnable JavaScript).

    With ``until`` (a JavaScript boolean expression), poll it after the load event until it is
    true or ``timeout`` passes, then evaluate ``expression``.
    """
    binary = binary or find_chromium()
    if binary is None:
        msg = "no chromium binary"
        raise FileNotFoundError(msg)
    profile = tempfile.mkdtemp(prefix="rlscale-chromium-")
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()

    def plumb() -> None:  # runs in the child: DevTools expects fds 3 (in) and 4 (out)
        a, b = os.dup(to_child_r), os.dup(from_child_w)
        os.dup2(a, 3)
        os.dup2(b, 4)
        os.set_inheritable(3, True)
        os.set_inheritable(4, True)

    proc = subprocess.Popen(
        [binary, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
        preexec_fn=plumb, close_fds=False, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(to_child_r)
    os.close(from_child_w)
    pipe = _Pipe(to_child_w, from_child_r)
    result = PageResult()
    try:
        target = pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        sid = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"]
        for domain in ("Network", "Page", "Runtime"):
            pipe.call(f"{domain}.enable", session=sid)
        pipe.call("Page.navigate", {"url": url}, session=sid)
        pipe.wait_for(lambda m: m.get("method") == "Page.loadEventFired", timeout)
        deadline = time.monotonic() + timeout
        while until and time.monotonic() < deadline:
            done = pipe.call("Runtime.evaluate", {"expression": until, "returnByValue": True},
                             session=sid)
            if done["result"].get("value"):
                break
            time.sleep(0.1)
        out = pipe.call("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                        session=sid)
        result.value = out["result"].get("value")
        for ev in pipe.events:
            if ev.get("method") == "Network.requestWillBeSent":
                result.requests.append(ev["params"]["request"]["url"])
            elif ev.get("method") == "Runtime.exceptionThrown":
                result.exceptions.append(json.dumps(ev["params"]["exceptionDetails"])[:500])
        try:
            pipe.call("Browser.close", timeout=5)
        except (RuntimeError, TimeoutError):
            pass
    finally:
        try:  # after Browser.close it exits by itself; on any failure, do not wait for it
            proc.wait(timeout=10 if result.value is not None else 0.1)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        os.close(to_child_w)
        os.close(from_child_r)
        shutil.rmtree(profile, ignore_errors=True)
    return result


def chart_states(url: str, *, timeout: float = 30.0) -> PageResult:
    """Open a page with vega-embed charts (elements marked ``data-chart``) and wait until every
    chart has rendered or failed; ``value`` is a list of per-chart dicts (see CHART_STATE_JS)."""
    until = ("Array.from(document.querySelectorAll('[data-chart]')).every(function (el) {"
             " return el.hasAttribute('data-rendered') || el.hasAttribute('data-error'); })")
    return open_page(url, expression=CHART_STATE_JS, until=until, timeout=timeout)
