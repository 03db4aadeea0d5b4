"""The operator page in a real browser (Debian's Chromium driven by Playwright) against a real
`pcb-inspect demo`: counters rise, the banner shows a verdict, a tap opens a reject, a false call lands in the
database, the language switch changes the text. Screenshots are kept as artefacts (tmp_path/shots, SHOTS)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pcb_inspect.inspect.sinks.sqlite import read_feedback

CHROMIUM = Path("/usr/bin/chromium")
EXE = os.path.join(os.path.dirname(sys.executable), "pcb-inspect")
TOKEN = "browser-test-token-7"
SHOTS = Path("/tmp/pcb-dashboard-shots")  # a copy of the screenshots, where a person can look at them
# the counter as a number, in the page (a function: the page's CSP forbids evaluating strings)
INSPECTED = "Number(document.getElementById('c-inspected').textContent.replace(/\\D/g, ''))"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def _playwright():  # noqa: ANN202
    if not CHROMIUM.is_file():
        pytest.skip(f"needs Debian's Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("needs Playwright for Python (pip install playwright; its browser download is not used)")
    return sync_playwright


class Demo:
    """`pcb-inspect demo` on a free loopback port, its output read in a thread."""

    def __init__(self, tmp: Path) -> None:
        env = {**os.environ, "PCB_INSPECT_TOKEN": TOKEN}
        self.proc = subprocess.Popen(
            [EXE, "demo", "--http", "127.0.0.1:0", "--fps", "10", "--workers", "1", "--max-frames", "3000",
             "--pictures", "0", "--out", str(tmp / "demo_out")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp, env=env)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait_for(self, pattern: str, timeout: float = 90.0) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                m = re.search(pattern, line)
                if m:
                    return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"demo never printed {pattern!r}:\n{''.join(self.lines)}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def _number(text: str) -> int:
    digits = re.sub(r"[^\d]", "", text)
    return int(digits) if digits else -1


def test_operator_page_in_chromium(tmp_path: Path) -> None:
    sync_playwright = _playwright()
    shots = tmp_path / "shots"
    shots.mkdir()
    demo = Demo(tmp_path)
    errors: list[str] = []
    try:
        db = Path(demo.wait_for(r"results (\S+demo\.db)").group(1))
        url = demo.wait_for(r"status (http://127\.0\.0\.1:\d+)/api/status").group(1)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800}, locale="en-US")
            page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
            page.on("console", lambda m: errors.append(f"console: {m.text}")
                    if m.type == "error" and "Content Security Policy" in m.text else None)
            page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}")
                    if "/image" not in r.url else None)  # a picture aborted by the next board is fine
            page.goto(url + "/")

            # counters rise, the banner shows a verdict
            page.wait_for_function(f"() => {INSPECTED} > 0", timeout=30_000)
            first = _number(page.text_content("#c-inspected"))
            page.wait_for_function(f"() => {INSPECTED} > {first}", timeout=15_000)
            assert page.text_content("#verdict") in ("PASS", "FAIL", "REVIEW", "ERROR")
            assert re.search(r"banner v-(PASS|FAIL|REVIEW|ERROR)", page.get_attribute("#banner", "class"))
            assert page.locator("#banner-icon *").count() >= 2  # an icon, not only a colour
            assert page.text_content("#conn-text") == "Live"
            page.wait_for_selector(".thumb img", timeout=20_000)
            page.wait_for_timeout(2500)  # the charts' first refresh, a few more boards
            page.screenshot(path=str(shots / "1_live_en.png"))

            # a tap on a reject opens it, with its defects and the template beside it
            thumb = page.locator(".thumb").first
            inspection_id = thumb.get_attribute("data-id")
            thumb.click()
            page.wait_for_selector("#review:not([hidden]) #r-list .item", timeout=10_000)
            assert page.locator("#r-list .item").count() >= 1
            page.wait_for_function("() => document.getElementById('r-board').width > 10")
            page.wait_for_timeout(500)
            page.screenshot(path=str(shots / "2_review.png"))

            # mark the first defect a false call; sending asks for the operator and the token once
            page.locator("#r-list .item").first.locator("[data-choice=false_call]").click()
            page.click("#r-send")
            page.wait_for_selector("#signin-dialog:not([hidden])")
            page.fill("#f-operator", "Operator 7")
            page.fill("#f-token", TOKEN)
            page.screenshot(path=str(shots / "3_sign_in.png"))
            page.click("#f-submit")
            page.wait_for_function("() => document.getElementById('r-message').textContent"
                                   ".startsWith('Feedback saved')", timeout=10_000)
            assert TOKEN not in page.content()
            page.screenshot(path=str(shots / "4_feedback_saved.png"))
            stored = read_feedback(db, inspection_id)
            assert len(stored) == 1 and stored[0]["operator"] == "Operator 7" and stored[0]["images"]
            assert stored[0]["items"][0]["judgement"] == "false_call"
            assert all(i["judgement"] == "confirmed" for i in stored[0]["items"][1:])

            # a defect the model missed: drag a box on the board, pick its class, send again
            page.click("#r-add")
            box = page.locator("#r-board").bounding_box()
            x, y = box["x"] + box["width"] * 0.45, box["y"] + box["height"] * 0.45
            page.mouse.move(x, y)
            page.mouse.down()
            page.mouse.move(x + 30, y + 25, steps=5)
            page.mouse.up()
            page.click("#r-picker-buttons button:has-text('spur')")
            assert page.locator("#r-list .item").last.text_content().startswith("＋ spur")
            page.click("#r-send")
            deadline = time.monotonic() + 10
            while len(stored := read_feedback(db, inspection_id)) < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert len(stored) == 2 and stored[1]["items"][-1]["judgement"] == "added"
            assert stored[1]["items"][-1]["cls"] == "spur"
            assert stored[1]["items"][0]["judgement"] == "false_call"  # the earlier judgements kept
            page.click("#r-close")

            # the language switch changes the text (and survives a reload, from localStorage)
            assert page.text_content("[data-i18n=inspected]") == "Inspected"
            page.click("#lang")
            assert page.text_content("[data-i18n=inspected]") == "已检"
            assert page.text_content("#verdict") in ("合格", "不合格", "待复检", "错误")
            assert page.get_attribute("html", "lang") == "zh-CN"
            page.wait_for_timeout(1000)
            page.screenshot(path=str(shots / "5_live_zh.png"))

            # a tablet, upright, in Chinese from the browser's own language
            tablet = browser.new_page(viewport={"width": 820, "height": 1180}, locale="zh-CN", has_touch=True)
            tablet.on("pageerror", lambda e: errors.append(f"tablet page error: {e}"))
            tablet.goto(url + "/")
            tablet.wait_for_function("() => document.getElementById('verdict').textContent !== '等待中'",
                                     timeout=20_000)
            assert tablet.text_content("[data-i18n=recent_rejects]") == "最近不良板"
            tablet.wait_for_timeout(2500)
            tablet.screenshot(path=str(shots / "6_tablet_zh.png"), full_page=True)
            browser.close()
    finally:
        demo.stop()
        SHOTS.mkdir(exist_ok=True)
        for shot in shots.glob("*.png"):
            shutil.copy(shot, SHOTS / shot.name)
    assert not errors, errors
