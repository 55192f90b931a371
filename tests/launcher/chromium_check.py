"""Opens an HTML report in headless Chromium and reports what a reader's browser saw.

usage: chromium_check.py CHROMIUM PAGE.html SCREENSHOT.png

Drives Chromium over the DevTools protocol on a pipe (--remote-debugging-pipe: fd 3 in,
fd 4 out, NUL-terminated JSON), so it needs nothing beyond the standard library. Prints
one JSON object: console errors and uncaught exceptions, requests that left the file
(network), the section ids, every svg.plot with its data-points attribute and the marks
that actually rendered (a non-empty box), and the page size; writes a full-page PNG.
"""
import base64
import json
import os
import select
import subprocess
import sys
import tempfile
import time

TIMEOUT_S = 90  # whole check; a stuck browser is killed, never waited on

# Runs in the page: what was drawn, measured by the layout engine.
PAGE_PROBE = r"""
(() => {
  const visible = (el) => { const b = el.getBBox(); return b.width > 0 || b.height > 0; };
  const plots = [...document.querySelectorAll('svg.plot')].map((svg) => ({
    title: (svg.querySelector('.ptitle') || {}).textContent || '',
    section: (svg.closest('section') || {}).id || '',
    data_points: Number(svg.getAttribute('data-points')),
    marks: [...svg.querySelectorAll('polyline.series, circle.pt, rect.bar')].filter(visible).length,
    lines: [...svg.querySelectorAll('polyline.series')].filter(visible).length,
    width: svg.getBoundingClientRect().width,
  }));
  const images = [...document.images].map((img) => ({ alt: img.alt, width: img.naturalWidth, height: img.naturalHeight }));
  return {
    sections: [...document.querySelectorAll('section')].map((s) => s.id),
    plots, images,
    tables: document.querySelectorAll('table').length,
    external: [...document.querySelectorAll('script[src], link[href], img[src]:not([src^="data:"])')].length,
    scripts: document.querySelectorAll('script').length,
    height: document.documentElement.scrollHeight,
    width: document.documentElement.scrollWidth,
  };
})()
"""


class Browser:
    def __init__(self, chromium, profile):
        to_browser_r, self.to_browser = os.pipe()
        self.from_browser, from_browser_w = os.pipe()

        def wire_fds():  # in the child: the protocol's fixed descriptors, kept across exec
            read_end, write_end = os.dup(to_browser_r), os.dup(from_browser_w)  # either may be 3 or 4
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-extensions", "--disable-quic", "--mute-audio", "--hide-scrollbars",
                 "--password-store=basic", "--remote-debugging-pipe", "--user-data-dir=" + profile, "about:blank"]
        self.proc = subprocess.Popen([chromium] + flags, preexec_fn=wire_fds, close_fds=False,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self.deadline = time.monotonic() + TIMEOUT_S
        self.next_id = 0
        self.buffer = b""
        self.events = []

    def _read_message(self):
        while b"\0" not in self.buffer:
            left = self.deadline - time.monotonic()
            if left <= 0 or not select.select([self.from_browser], [], [], left)[0]:
                raise TimeoutError("chromium did not answer within %d s" % TIMEOUT_S)
            chunk = os.read(self.from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe (exit %s)" % self.proc.poll())
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method, params=None, session=None):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read_message()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError("%s: %s" % (method, reply["error"]))
                return reply["result"]
            self.events.append(reply)

    def wait_event(self, method):
        for i, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(i)
        while True:
            event = self._read_message()
            if event.get("method") == method:
                return event
            self.events.append(event)

    def close(self):
        try:
            self.call("Browser.close")
            self.proc.wait(timeout=10)
        except Exception:
            self.proc.kill()
            self.proc.wait()


def main():
    chromium, page, screenshot = sys.argv[1:4]
    url = "file://" + os.path.abspath(page)
    with tempfile.TemporaryDirectory(prefix="gf-chromium-") as profile:
        browser = Browser(chromium, profile)
        try:
            target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                browser.call(domain + ".enable", session=session)
            browser.call("Emulation.setDeviceMetricsOverride",
                         {"width": 1400, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session)
            browser.call("Page.navigate", {"url": url}, session)
            browser.wait_event("Page.loadEventFired")
            found = browser.call("Runtime.evaluate", {"expression": PAGE_PROBE, "returnByValue": True}, session)
            if "exceptionDetails" in found:
                raise RuntimeError("page probe failed: %s" % found["exceptionDetails"])
            result = found["result"]["value"]
            # The whole page in one image, at its laid-out size.
            browser.call("Emulation.setDeviceMetricsOverride",
                         {"width": 1400, "height": int(result["height"]), "deviceScaleFactor": 1, "mobile": False}, session)
            shot = browser.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session)
            with open(screenshot, "wb") as out:
                out.write(base64.b64decode(shot["data"]))
            # Everything the page said or asked for while loading and being measured.
            browser.call("Runtime.evaluate", {"expression": "0"}, session)  # flush pending events
            errors, requests = [], []
            for event in browser.events:
                method, params = event.get("method"), event.get("params", {})
                if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                    errors.append("console.%s: %s" % (params["type"], [a.get("value", a.get("description")) for a in params.get("args", [])]))
                elif method == "Runtime.exceptionThrown":
                    errors.append("exception: %s" % params["exceptionDetails"].get("text"))
                elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                    errors.append("log: %s" % params["entry"].get("text"))
                elif method == "Network.requestWillBeSent":
                    request_url = params["request"]["url"]
                    if not request_url.startswith(("data:", "file://", "about:")):
                        requests.append(request_url)
            result.update({"console_errors": errors, "network_requests": requests})
        finally:
            browser.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
