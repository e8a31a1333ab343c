"""Serve MathJax and the Jupyter-widgets runtime from the built book itself.

Sphinx and myst-nb load MathJax 3 and the widget manager (require.js +
@jupyter-widgets/html-manager) from CDNs by default, so a page opened without
network shows raw TeX and no widgets. ``make assets`` installs pinned copies
with npm (``package.json``) and copies the files the pages need into
``book/_vendor/``. When they are there, this extension points Sphinx at them;
when they are not (no npm on the machine), the CDN defaults stay and the build
says so once.

Not ``book/_static``: Jupyter Book adds every ``.js`` under a ``_static`` source
folder as a page script, which would load MathJax twice and require.js out of
order.
"""

from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)

VENDOR = Path(__file__).resolve().parent.parent / "_vendor"
OWN = Path(__file__).resolve().parent.parent / "_static_book"  # our small scripts
MATHJAX = "mathjax/tex-mml-chtml.js"
REQUIRE = "require.js"
EMBED = "html-manager/embed-amd.js"


def _use_vendored(app, config):
    have = {p: (VENDOR / p).is_file() for p in (MATHJAX, REQUIRE, EMBED)}
    if not all(have.values()):
        missing = ", ".join(p for p, ok in have.items() if not ok)
        logger.info("offline_assets: %s missing under %s; pages will load them from CDNs "
                    "(run `make assets` to read offline)", missing, VENDOR)
        return
    config.html_static_path = list(config.html_static_path) + [str(VENDOR), str(OWN)]
    config.mathjax_path = MATHJAX
    config.nb_ipywidgets_js = {REQUIRE: {}, "widgets-config.js": {}, EMBED: {}}


def setup(app):
    app.connect("config-inited", _use_vendored)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
