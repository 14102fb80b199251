"""The course website: ``python -m refdense.course.book [--site SITE]`` (what ``make book`` runs).

mkdocs-material with mkdocs-jupyter renders the course map (``notebooks/README.md``, the home
page) and the eleven notebooks from their stored outputs; nothing is executed. The build works
offline: the pages are staged in ``build/book/`` first, and staging

- rewrites links between notebooks (``01_pat_backbone.ipynb``) to their pages, and links out of
  the course folder (``../docs/METHOD.md``) to the repository at the release tag;
- adds the line an explorer stores next to its figure ("run this cell to get the sliders") as
  text under the figure (a page shows one output per mime bundle: the picture);
- replaces the remote "Open in Colab" badge image with a local copy;
- copies MathJax 2 from the ``jupyter-server-mathjax`` package (no CDN), set to the fonts it ships.

The site is written to ``site/`` (``--site`` to change it) through a temporary folder, so that an
interrupted build leaves the previous site whole. Settings: ``docs/book/mkdocs.yml``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from refdense.course.header import BADGE, project_settings
from refdense.course.storage import RUN_TO_INTERACT

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "docs" / "book" / "mkdocs.yml"
STAGE = ROOT / "build" / "book"
LOCAL_BADGE = "assets/colab-badge.svg"
BADGE_SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="117" height="20" role="img" aria-label="Open in Colab">
<rect width="117" height="20" rx="3" fill="#444"/><rect x="20" width="97" height="20" rx="3" fill="#f9ab00"/>
<circle cx="10" cy="10" r="5" fill="none" stroke="#f9ab00" stroke-width="3"/>
<text x="68" y="14" font-family="Verdana,sans-serif" font-size="11" text-anchor="middle" fill="#222">Open in Colab</text>
</svg>
"""
# MathJax 2 as the package ships it: the HTML-CSS output probes fonts the package lacks (console
# errors in Chromium), so the page sets MathJax to its browser-MathML output and no fast preview
# before loading it, synchronously, and the notebook page's own MathJax settings apply after
# (docs/book/mkdocs.yml: custom_mathjax_url). Its MathML output names TeX web fonts the package
# lacks either (MathJax_AMS for \mathbb, Script, Fraktur, Caligraphic): a style sets those variants
# to the browser's own math font, which draws them from Unicode, so that no font is ever requested.
MATHJAX_LOADER = """window.MathJax = {menuSettings: {renderer: "NativeMML"}, "fast-preview": {disabled: true},
  "HTML-CSS": {availableFonts: [], preferredFont: null, webFont: "STIX-Web", imageFont: null}};
document.write('<script src="assets/mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"><\\/script>');
document.write('<style>math [mathvariant*="double-struck"], math [mathvariant*="script"], math [mathvariant*="fraktur"], ' +
  'math [class^="MJX-tex-"] {font-family: math, serif !important}</style>');
"""
NOTEBOOK_LINK = re.compile(r"\]\((\d\d_\w+)\.ipynb(#[^)]*)?\)")
OUTSIDE_LINK = re.compile(r"\]\(\.\./([^)#\s]+)(#[^)]*)?\)")


def stage_notebook(nb: nbformat.NotebookNode, repository: str, tag: str) -> nbformat.NotebookNode:
    """The notebook as the website shows it (in place; returns ``nb``): links, badge, explorer hints."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            text = NOTEBOOK_LINK.sub(lambda m: f"]({m[1]}.html{m[2] or ''})", cell.source)
            text = OUTSIDE_LINK.sub(lambda m: f"]({repository}/blob/{tag}/{m[1]}{m[2] or ''})", text)
            cell.source = text.replace(BADGE, LOCAL_BADGE)
        elif cell.cell_type == "code":
            outputs = []
            for output in cell.outputs:
                outputs.append(output)
                if output.get("data", {}).get("text/plain") == RUN_TO_INTERACT:
                    outputs.append(
                        nbformat.v4.new_output("stream", name="stdout", text=f"({RUN_TO_INTERACT})\n")
                    )
            cell.outputs = outputs
    return nb


def stage(notebooks: Path, stage_dir: Path) -> None:
    """Write the website's sources into ``stage_dir`` (emptied first): the course map, the notebooks, assets."""
    import jupyter_server_mathjax

    repository, tag = project_settings()
    if stage_dir.exists():
        shutil.rmtree(stage_dir)
    (stage_dir / "assets").mkdir(parents=True)
    readme = OUTSIDE_LINK.sub(
        lambda m: f"]({repository}/blob/{tag}/{m[1]}{m[2] or ''})",
        (notebooks / "README.md").read_text(encoding="utf-8"),
    )
    (stage_dir / "index.md").write_text(readme, encoding="utf-8")
    paths = sorted(notebooks.glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"{notebooks}: no course notebooks (NN_name.ipynb)")
    for path in paths:
        nb = stage_notebook(nbformat.read(path, as_version=4), repository, tag)
        nbformat.write(nb, stage_dir / path.name)
    (stage_dir / LOCAL_BADGE).write_text(BADGE_SVG, encoding="utf-8")
    mathjax = Path(jupyter_server_mathjax.__file__).parent / "static"
    shutil.copytree(
        mathjax, stage_dir / "assets" / "mathjax", ignore=shutil.ignore_patterns("localization", "unpacked")
    )
    (stage_dir / "assets" / "mathjax-offline.js").write_text(MATHJAX_LOADER, encoding="utf-8")


def build_book(site: Path, notebooks: Path = ROOT / "notebooks") -> Path:
    """Stage the sources and build the website into ``site`` (replaced whole once the build succeeded)."""
    stage(notebooks, STAGE)
    site = site.resolve()
    site.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=site.parent, prefix=f".{site.name}-") as tmp:
        built = Path(tmp) / "site"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "mkdocs",
                "build",
                "--strict",
                "--quiet",
                "-f",
                str(CONFIG),
                "-d",
                str(built),
            ],
            capture_output=True,
            text=True,
            cwd=STAGE.parent,  # mkdocs-jupyter caches its renderings in .cache/ of the current folder
        )
        if done.returncode != 0:
            raise RuntimeError(f"mkdocs build -f {CONFIG} failed:\n{done.stdout}\n{done.stderr}")
        if site.exists():
            shutil.rmtree(site)
        built.rename(site)
    return site


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m refdense.course.book", description="Build the course website."
    )
    parser.add_argument(
        "--site", type=Path, default=ROOT / "site", help="output folder (default: site/ in the clone)"
    )
    args = parser.parse_args(argv)
    site = build_book(args.site)
    print(f"course website in {site} (open {site / 'index.html'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
