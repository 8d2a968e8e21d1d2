"""Look at `mlflow ui` as a user would: headless Chromium, driven over its DevTools
protocol, opens a page, runs each step (JavaScript, or ``CLICK:<text>`` for a real mouse
click on the visible element with that text), then saves a screenshot.

    apt-get install chromium      # once
    uv run mlflow ui &            # in the project root
    URL="http://127.0.0.1:5000/#/experiments/1/runs?workflowType=machine_learning"
    H=1300 uv run --with websocket-client python tools/ui_screenshot.py \
        "$URL&compareRunsMode=CHART" chart.png \
        "document.querySelector('button[data-component-id*=runnamecellrenderer]').click()" \
        "CLICK:Add chart" "CLICK:Image grid" "CLICK:Images" "CLICK:latent_grid" \
        "CLICK:Chart type" "CLICK:Show run parameters"

expands the first sweep's parent, opens *Add chart -> Image grid* on its jobs'
``latent_grid`` images, and saves what the dialog's preview shows (``H``: window height).
"""

import base64
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import websocket

PORT = 9333
#: what CLICK:<text> looks among for the visible element with exactly that text
CLICKABLE = "button,[role=menuitem],[role=option],[role=combobox],li,span,div"
FIND = """(() => {
  const e = Array.from(document.querySelectorAll(%s)).filter(x => {
    const r = x.getBoundingClientRect();
    return x.textContent.trim() === %s && r.width > 0 && r.y > 0 && r.y < innerHeight;
  }).slice(-1)[0];
  if (!e) return null;
  const r = e.getBoundingClientRect();
  return [r.x + r.width / 2, r.y + r.height / 2];
})()"""


class Page:
    """One Chromium tab, spoken to over the DevTools protocol."""

    def __init__(self, url: str) -> None:
        self.socket = websocket.create_connection(url, timeout=60, suppress_origin=True)
        self.sent = 0

    def call(self, method: str, **params):
        self.sent += 1
        self.socket.send(json.dumps({"id": self.sent, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.sent:
                return message.get("result", {})

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def click(self, text: str) -> None:
        """A real mouse click (menus open on pointer events, not on element.click())."""
        xy = self.evaluate(FIND % (json.dumps(CLICKABLE), json.dumps(text)))
        print(f"CLICK:{text} at {xy}")
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            if xy:
                self.call(
                    "Input.dispatchMouseEvent",
                    type=kind,
                    x=xy[0],
                    y=xy[1],
                    button="left",
                    clickCount=1,
                )


def main(url: str, out: str, steps: list[str]) -> None:
    height = int(os.environ.get("H", "1300"))
    chrome = subprocess.Popen(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--remote-debugging-port={PORT}",
            "--remote-allow-origins=*",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(50):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/json") as answer:
                    tabs = json.load(answer)
                break
            except OSError:
                time.sleep(0.3)
        page = Page(next(t for t in tabs if t["type"] == "page")["webSocketDebuggerUrl"])
        page.call("Page.enable")
        page.call(
            "Emulation.setDeviceMetricsOverride",
            width=1700,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        page.call("Page.navigate", url=url)
        time.sleep(10)  # MLflow's UI loads its runs and charts in the background
        for step in steps:
            if step.startswith("CLICK:"):
                page.click(step.removeprefix("CLICK:"))
            else:
                print(json.dumps(page.evaluate(step))[:2000])
            time.sleep(5)
        shot = page.call("Page.captureScreenshot", format="png")
        Path(out).write_bytes(base64.b64decode(shot["data"]))
    finally:
        chrome.kill()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
