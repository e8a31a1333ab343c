"""Small fixes to the HTML pages that Jupyter Book 1.x produces.

* sphinx-thebe and sphinx-togglebutton add their configuration scripts twice
  to every page, so the browser console shows "Identifier 'THEBE_JS_URL' has
  already been declared". After the build, repeated identical ``<script>``
  lines in a page's ``<head>`` are removed.
* pydata-sphinx-theme logs "Got invalid theme mode" on a first visit when no
  default mode is configured: we set it to light.

The browser test (tests/built/test_pages.py) fails on console errors, which is how these
were found.
"""

from pathlib import Path


def _set_default_mode(app, config):
    context = dict(config.html_context or {})
    context.setdefault("default_mode", "light")  # read by pydata-sphinx-theme
    config.html_context = context


def _dedupe_head_scripts(html: str) -> str:
    head_end = html.find("</head>")
    if head_end < 0:
        return html
    seen, lines = set(), []
    for line in html[:head_end].split("\n"):
        key = line.strip()
        if key.startswith("<script") and key.endswith("</script>"):
            if key in seen:
                continue
            seen.add(key)
        lines.append(line)
    return "\n".join(lines) + html[head_end:]


def _fix_pages(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    for page in Path(app.outdir).rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        fixed = _dedupe_head_scripts(text)
        if fixed != text:
            page.write_text(fixed, encoding="utf-8")


def setup(app):
    app.connect("config-inited", _set_default_mode)
    app.connect("build-finished", _fix_pages)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
