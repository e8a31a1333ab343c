"""Every built page, opened in headless Chromium with the network blocked.

Checks, per page of the table of contents:
- math is typeset (every ``.math`` element holds MathJax output; no raw TeX
  delimiters left in the text);
- every image has loaded;
- on pages that carry widget state, the widgets are rendered;
- the sidebar lists every part of ``_toc.yml``;
- the console shows no errors and no request leaves the machine.

Run after the book build (``make test`` does): it reads ``_build/html``. A
screenshot of each page is saved under ``_build/screenshots/``.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())


def _toc_files(node) -> list[str]:
    if isinstance(node, dict):
        out = [node[k] for k in ("root", "file") if k in node]
        for key, value in node.items():
            if key not in ("root", "file"):
                out += _toc_files(value)
        return out
    if isinstance(node, list):
        return [f for item in node for f in _toc_files(item)]
    return []


PAGES = _toc_files(TOC)
PARTS = [part["caption"] for part in TOC["parts"]]

pytestmark = [
    pytest.mark.skipif(not (HTML / "index.html").exists(), reason="book not built: run `make book` first"),
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (make test installs it)"),
]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        yield browser
        browser.close()


RAW_TEX = re.compile(r"\\\(|\\\[|\$\$|(?<![\w$])\$[^$\s][^$]{0,200}?\$(?![\w$])")

TEXT_OUTSIDE_CODE = """() => {
  const root = document.querySelector('article') || document.body;
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT, {
    acceptNode(node) {
      const el = node.parentElement;
      if (!el || el.closest('pre, code, script, style, mjx-container, .cell_output, .output')) {
        return NodeFilter.FILTER_REJECT;
      }
      return NodeFilter.FILTER_ACCEPT;
    }
  });
  const parts = [];
  while (walker.nextNode()) parts.push(walker.currentNode.textContent);
  return parts.join(' ');
}"""


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_offline(browser, page):
    url = (HTML / f"{page}.html").as_uri()
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    tab = context.new_page()
    errors, external = [], []
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: errors.append(str(e)))

    def route(r):
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            external.append(r.request.url)
            r.abort()

    tab.route("**/*", route)
    tab.goto(url)
    tab.wait_for_load_state("load")
    n_math = tab.evaluate("() => document.querySelectorAll('.math').length")
    if n_math:
        tab.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=20000)
        tab.evaluate("() => MathJax.startup.promise")
    has_widgets = tab.evaluate(
        "() => document.querySelectorAll('script[type=\"application/vnd.jupyter.widget-view+json\"]').length")
    if has_widgets:
        tab.wait_for_function("() => document.querySelectorAll('.jupyter-widgets').length > 0", timeout=20000)
    tab.wait_for_load_state("networkidle")
    rendered_widgets = tab.evaluate("() => document.querySelectorAll('.jupyter-widgets').length")

    untypeset = tab.evaluate("() => Array.from(document.querySelectorAll('.math'))"
                             ".filter(e => !e.querySelector('mjx-container')).length")
    raw = RAW_TEX.findall(tab.evaluate(TEXT_OUTSIDE_CODE))
    broken_images = tab.evaluate("() => Array.from(document.images)"
                                 ".filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(-60))")
    captions = tab.evaluate("() => Array.from(document.querySelectorAll('.bd-sidebar-primary p.caption'))"
                            ".map(e => e.textContent.trim())")
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SHOTS / f"{page.replace('/', '__')}.png"), full_page=True)
    context.close()

    assert rendered_widgets >= has_widgets, f"{page}: {has_widgets} widget views, {rendered_widgets} rendered"
    assert untypeset == 0, f"{page}: {untypeset} of {n_math} math elements not typeset"
    assert not raw, f"{page}: raw TeX in the text: {raw[:5]}"
    assert not broken_images, f"{page}: images that did not load: {broken_images}"
    assert captions == PARTS, f"{page}: sidebar parts {captions}, expected {PARTS}"
    assert not errors, f"{page}: console errors: {errors[:5]}"
    assert not external, f"{page}: requests to the network: {external[:5]}"
