"""The page in a real browser: log text stays text, days collapse and expand."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmlab.transcript import Options, Publisher, Settings

FIX = Path(__file__).parent / "fixtures" / "transcript" / "claude" / "-home-alice-llm-course"
SID = "0b6f6f0e-1c1a-4b7e-9a51-3c2b8d9e0a11"
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.mark.browser
def test_script_in_a_prompt_a_tool_result_and_a_reply_renders_as_text(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed")
    out = tmp_path / "out"
    Publisher(Settings(out=out, opts=Options(tz="UTC"))).build([FIX / f"{SID}.jsonl"])
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page()
            requests = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto((out / f"{SID}.html").as_uri())
            assert page.evaluate("typeof window.pwned") == "undefined"
            payload = "<script>window.pwned=1</script>"
            assert payload in page.locator(".msg.learner").first.inner_text()
            assert payload in page.locator(".msg.assistant .prose").first.inner_text()
            tool = page.locator("details.tool").first
            tool.locator("summary").click()
            assert payload in tool.locator(".tool-result").inner_text()
            assert page.locator("script").count() == 0
            assert all(u.startswith("file://") for u in requests)  # nothing fetched from a network

            day = page.locator("details.day").first
            body = day.locator(".day-body")
            assert day.evaluate("d => d.open") and body.is_visible()
            day.locator(":scope > summary").click()
            assert not day.evaluate("d => d.open") and not body.is_visible()
            day.locator(":scope > summary").click()
            assert day.evaluate("d => d.open") and body.is_visible()
            assert "2 exchanges" in day.locator(":scope > summary").inner_text()
            assert page.evaluate("typeof window.pwned") == "undefined"
        finally:
            browser.close()
