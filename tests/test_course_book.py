"""The course website (refdense/course/book.py, ``make book``): its staging, and the built site
opened page by page in headless Chromium (Debian's ``chromium`` and ``chromium-driver``, which
``.ci/run`` installs): each page has its title and search box, every image loads, the math is
typeset by the MathJax copy the site ships (no network), and the browser logs no error.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from pathlib import Path

import nbformat
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

from refdense.course.book import build_book, stage_notebook
from refdense.course.header import BADGE
from refdense.course.storage import RUN_TO_INTERACT

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def test_staging_rewrites_links_adds_the_explorer_hint_and_uses_the_local_badge():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(f"[![b]({BADGE})](x) [next](01_pat_backbone.ipynb#top) [m](../docs/METHOD.md)"),
        nbformat.v4.new_code_cell("explorer()", outputs=[nbformat.v4.new_output(
            "display_data", data={"image/png": "AAAA", "text/plain": RUN_TO_INTERACT})]),
    ]
    staged = stage_notebook(nb, "https://github.com/o/n", "v1.2.3")
    assert staged.cells[0].source == ("[![b](assets/colab-badge.svg)](x) [next](01_pat_backbone.html#top) "
                                      "[m](https://github.com/o/n/blob/v1.2.3/docs/METHOD.md)")
    assert [o.get("text") for o in staged.cells[1].outputs] == [None, f"({RUN_TO_INTERACT})\n"]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # a missing file shows as a browser error, asserted below
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = build_book(tmp_path_factory.mktemp("book") / "site")
    handler = functools.partial(QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield site, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    assert shutil.which("chromium") and Path(DRIVER).is_file(), (
        "headless Chromium is needed: apt-get install chromium chromium-driver (as .ci/run does)"
    )
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    options.binary_location = shutil.which("chromium")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


PAGE_STATE = """
const images = Array.from(document.images);
return {
  title: document.title,
  h1: (document.querySelector("article h1") || {}).textContent || "",
  images: images.length,
  broken: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 80)),
  math: document.querySelectorAll(".MathJax_MathML math").length,
  mathErrors: document.querySelectorAll(".MathJax_Error, merror").length,
  searchBox: !!document.querySelector("input[data-md-component=search-query]"),
  resources: performance.getEntriesByType("resource").map(r => r.name),
};
"""
MATHJAX_DONE = "return !!(window.MathJax && MathJax.Hub && MathJax.Hub.queue.pending === 0 && MathJax.isReady)"


@pytest.mark.slow
def test_every_page_renders_offline_with_its_title_images_and_math(site, browser):
    folder, url = site
    pages = {"index.html": "refdense course"} | {
        f"{path.stem}.html": nbformat.read(path, as_version=4).cells[0].source.splitlines()[0].lstrip("# ")
        for path in NOTEBOOKS
    }
    assert sorted(p.name for p in folder.glob("*.html")) == sorted([*pages, "404.html"])
    for page, title in pages.items():
        browser.get(f"{url}/{page}")
        WebDriverWait(browser, 60).until(lambda d: d.execute_script("return document.readyState") == "complete")
        notebook = page != "index.html"
        if notebook:
            WebDriverWait(browser, 60).until(lambda d: d.execute_script(MATHJAX_DONE))
        state = browser.execute_script(PAGE_STATE)
        assert title in state["title"], f"{page}: title {state['title']!r}, expected {title!r}"
        assert state["searchBox"], f"{page}: no search box"
        assert not state["broken"], f"{page}: images that did not load: {state['broken']}"
        remote = [name for name in state["resources"] if not name.startswith(url)]
        assert not remote, f"{page}: requests outside the site (it must work offline): {remote}"
        errors = [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
        assert not errors, f"{page}: console errors: {errors}"
        if notebook:
            assert state["images"] >= 2, f"{page}: {state['images']} images (the badge and the figures expected)"
            text = "\n".join(c.source for c in nbformat.read(folder / f"{page[:-5]}.ipynb", as_version=4).cells
                             if c.cell_type == "markdown")
            if "$" in text:
                assert state["math"] > 0 and not state["mathErrors"], f"{page}: math not typeset: {state}"
    browser.get(f"{url}/search/search_index.json")
    assert "CoLV" in browser.page_source, "the search index does not hold the notebooks' text"
