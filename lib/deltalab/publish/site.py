"""The study as a browsable static site, built from the executed notebooks of a scale without re-executing them.

    python -m deltalab site [--scale cpu] [--out site] [--study DIR]    build the site (offline): the landing page
                                                                        and a page per executed notebook
    python -m deltalab site --check [--out site] [--shots DIR]          load it in headless Chromium: fail on a
                                                                        console error, a failed or outside request or
                                                                        an image that does not load; screenshots

The publishing tool is Sphinx with MyST-NB (``nb_execution_mode = "off"``: a page shows the executed notebook's
committed outputs, nothing is run) and sphinx-book-theme, all pure Python from PyPI (the ``site`` extra). docs/site.md
says why, what the landing page shows and where each of its parts comes from.

The landing page is generated, not typed: every sentence, table and figure on it is copied from an output of an
executed notebook (or, for the scale, from params/scales/<scale>.yaml; the answer it opens with and its per-task
agreement are read from the concluding round's tables by ``deltalab.publish.site_answer``), so its numbers are the notebooks'
numbers.
A cell is found by its tag ``site-<role>`` only (``ROLES``; notebooks/round.py sets them); a part the notebooks do not have says so on the page instead of failing the build. The rank-agreement
table is the concluding round's (its `site-agreement` cell); a study whose concluding notebook has none says so.

The source tree Sphinx reads is staged in a temporary folder: copies of the notebooks, each retitled with its round's
title (the round notebooks all open with the same generic heading), with its code cells folded (``hide-input``)
and, for another scale's study, an "archived" note; outputs are never touched. Exit status of ``main``: 0 built (or
checked) cleanly, 1 the check found problems, 2 bad input or a missing tool.
"""
from __future__ import annotations

import argparse
import base64
import copy
import html
import http.server
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from . import site_answer
from ..runtime import REPO_ROOT

OUTPUTS = REPO_ROOT / "outputs"
SCALES = REPO_ROOT / "params" / "scales"
MARKER = ".deltalab-site"  # written into a built site, so a rebuild may clear the folder (and nothing else)
INSTALL = "pip install -e '.[site]'"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# The roles a round notebook's cells play for the site: a code cell tagged `site-<role>` plays it (notebooks/round.py
# sets the tags; tests/test_notebook_sources.py checks every committed executed round notebook has each once).
ROLES = {
    "header": "the round's title, scale and seed document",
    "training": "what was trained and what is missing",
    "claims": "the seed document's claims, judged",
    "criteria": "the proposal's success criteria, judged",
    "agreement": "how well the scale predicts the full protocol (concluding round)",
    "conclusion": "the ranking of every variant (concluding round)",
    "ranking-figure": "the ranking's figures",
    "cost": "the cost note and figure",
}


class SiteError(Exception):
    """Bad input (no executed notebooks, a notebook of another scale, an output folder that is not a site)."""


# ---------------------------------------------------------------------------------------------------------------
# Reading executed notebooks


@dataclass(frozen=True)
class Output:
    kind: str  # markdown | html | png | text | error
    data: str


def outputs(cell) -> list[Output]:
    """A code cell's outputs, each in its richest kind (an image, then Markdown, HTML, plain text)."""
    found = []
    for out in cell.get("outputs", []):
        kind = out.get("output_type")
        if kind in ("display_data", "execute_result"):
            data = out.get("data", {})
            for mime, name in (("image/png", "png"), ("text/markdown", "markdown"), ("text/html", "html"),
                               ("text/plain", "text")):
                if mime in data:
                    value = data[mime]
                    found.append(Output(name, "".join(value) if isinstance(value, list) else value))
                    break
        elif kind == "stream":
            found.append(Output("text", "".join(out.get("text", ""))))
        elif kind == "error":
            found.append(Output("error", f"{out.get('ename', '')}: {out.get('evalue', '')}"))
    return found


def find_cell(nb, role: str):
    """The code cell tagged ``site-<role>`` (one of ``ROLES``), or None."""
    if role not in ROLES:
        raise ValueError(f"no site role {role!r}; the roles are {', '.join(ROLES)}")
    return next((c for c in nb.cells if c.cell_type == "code" and f"site-{role}" in c.get("metadata", {}).get("tags", [])),
                None)


def role_outputs(nb, role: str, kind: str | None = None) -> list[Output]:
    cell = find_cell(nb, role)
    found = outputs(cell) if cell is not None else []
    return [o for o in found if kind is None or o.kind == kind]


def parameter(nb, name: str) -> str | None:
    """A string parameter as the notebook ran: the injected value (papermill), else the parameters cell's default."""
    pattern = re.compile(rf"^{re.escape(name)}\s*=\s*(['\"])(.*?)\1", re.M)
    value = None
    for tag in ("parameters", "injected-parameters"):  # injected last: it wins
        for cell in nb.cells:
            if cell.cell_type == "code" and tag in cell.get("metadata", {}).get("tags", []):
                match = pattern.search(cell.source)
                if match:
                    value = match.group(2)
    return value


def paragraphs(markdown: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", markdown) if p.strip()]


def headings(markdown: str) -> list[tuple[int, str]]:
    return [(len(m.group(1)), m.group(2).strip()) for m in re.finditer(r"^(#{1,6})\s+(.+?)\s*#*\s*$", markdown, re.M)]


def plain(markdown: str) -> str:
    """Markdown inline text without its markup (for a heading's id and for comparing texts)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", markdown)
    return re.sub(r"[`*]", "", text).strip()


def section_id(title: str) -> str:
    """The id Sphinx gives the section of a heading (docutils' make_id of its text)."""
    from docutils.nodes import make_id

    return make_id(plain(title))


def section_of(nb, cell) -> str | None:
    """The id of the section a cell sits in: the last heading of a Markdown cell before it."""
    title = None
    for c in nb.cells:
        if c is cell:
            return section_id(title) if title else None
        if c.cell_type == "markdown":
            found = headings(c.source)
            if found:
                title = found[-1][1]
    return None


def sentence(text: str) -> str:
    """A notebook's sentence as the start of a line: its first letter capitalised, nothing else changed."""
    return text[:1].upper() + text[1:]


@dataclass
class Notebook:
    """One executed notebook of a study, and what the landing page takes from it."""
    path: Path
    nb: object
    name: str  # round_1 … / run_variant
    number: int | None  # the round's number; None for run_variant
    scale: str | None
    title: str

    @property
    def page(self) -> str:
        return self.name

    def header_paragraph(self, opening: str) -> str | None:
        for out in role_outputs(self.nb, "header", "markdown"):
            for p in paragraphs(out.data):
                if p.startswith(opening):
                    return p
        return None

    def summary(self, role: str) -> str | None:
        """The tally a claims/criteria cell shows: the paragraph just before its list of verdicts (the first
        paragraph of the first output with a list; of its first output if none has one)."""
        found = [o for o in role_outputs(self.nb, role, "markdown") if paragraphs(o.data)]
        listed = [o for o in found if re.search(r"^\s*[-*] ", o.data, re.M)]
        if not found:
            return None
        parts = paragraphs((listed or found)[0].data)
        first_item = next((i for i, p in enumerate(parts) if re.match(r"[-*] ", p)), 0)
        return parts[first_item - 1] if first_item > 0 else parts[0]

    def proposal_line(self) -> str | None:
        found = role_outputs(self.nb, "criteria", "markdown")
        return paragraphs(found[-1].data)[0] if len(found) >= 2 and paragraphs(found[-1].data) else None

    def intro(self, role: str) -> list[str]:
        """The paragraphs of the Markdown cell just before the role's cell, headings left out (the notebook's own
        words for what the cell shows)."""
        cell = find_cell(self.nb, role)
        if cell is None:
            return []
        at = self.nb.cells.index(cell)
        before = self.nb.cells[at - 1] if at > 0 else None
        if before is None or before.cell_type != "markdown":
            return []
        return [p for p in paragraphs(before.source) if not re.match(r"#{1,6}\s", p)]

    def anchor(self, role: str) -> str | None:
        cell = find_cell(self.nb, role)
        return section_of(self.nb, cell) if cell is not None else None

    def concludes(self) -> bool:
        """Whether this round concludes the study: its conclusion cell shows a table (the ranking)."""
        return any(o.kind == "html" for o in role_outputs(self.nb, "conclusion"))

    def errors(self) -> list[str]:
        return [o.data for c in self.nb.cells if c.cell_type == "code" for o in outputs(c) if o.kind == "error"]


def read_notebook(path: Path) -> Notebook:
    import nbformat

    nb = nbformat.read(path, as_version=4)
    name = path.stem
    match = re.fullmatch(r"round_(\d+)", name)
    number = int(match.group(1)) if match else None
    title = None
    for out in role_outputs(nb, "header", "markdown"):
        found = [t for level, t in headings(out.data) if level == 1]
        if found:
            title = plain(found[0])
            break
    if title is None:
        first = next((headings(c.source) for c in nb.cells if c.cell_type == "markdown" and headings(c.source)), [])
        title = plain(first[0][1]) if first else name
        if number is not None:
            title = f"Round {number}: {title}"
        variant = parameter(nb, "variant")
        if number is None and variant:
            title = f"{title}: {variant}"
    return Notebook(path, nb, name, number, parameter(nb, "scale"), title)


def _order(path: Path) -> tuple:
    match = re.fullmatch(r"round_(\d+)", path.stem)
    return (0, int(match.group(1)), "") if match else (1, 0, path.stem)


def read_study(study: Path, scale: str) -> list[Notebook]:
    """The executed notebooks of ``study`` (round_<n>.ipynb, then run_variant*.ipynb and any other), all of
    ``scale``: a notebook run at another scale is an error, not a page."""
    paths = sorted((p for p in study.glob("*.ipynb") if not p.name.startswith(".")), key=_order)
    if not paths:
        raise SiteError(f"no executed notebooks in {study} (run the study first: bash scripts/study.sh, or "
                        f"SCALE={scale} bash scripts/study.sh)")
    notebooks = [read_notebook(p) for p in paths]
    wrong = [f"{n.path.name} ({n.scale})" for n in notebooks if n.scale not in (None, scale)]
    if wrong:
        raise SiteError(f"{study} holds notebooks executed at another scale than {scale!r}: {', '.join(wrong)}")
    return notebooks


def scale_description(scale: str) -> str:
    from ..params import load_scale

    try:
        return " ".join(load_scale(scale).description.split())
    except ValueError:
        return ""


def other_studies(study: Path, scale: str) -> list[tuple[str, Path]]:
    """Other scales' executed studies beside ``study`` (folders named after a scale of params/scales/)."""
    found = []
    for folder in sorted(p for p in study.parent.iterdir() if p.is_dir()):
        if folder.resolve() == study.resolve() or not (SCALES / f"{folder.name}.yaml").exists():
            continue
        if any(folder.glob("*.ipynb")):
            found.append((folder.name, folder))
    return found


def archived(description: str) -> bool:
    """A scale whose description says it was superseded or archived (as cpu-v1's does)."""
    return bool(re.search(r"supersed|archiv", description, re.I))


# ---------------------------------------------------------------------------------------------------------------
# The landing page


def _raw(html_text: str) -> str:
    """A table as raw HTML, exactly as the notebook's output has it."""
    fence = "````" if "```" in html_text else "```"
    return f"{fence}{{raw}} html\n<div class=\"site-table\">\n{html_text.strip()}\n</div>\n{fence}\n"


def _link(page: str, anchor: str | None, text: str) -> str:
    """An inline link to a built page's section (raw HTML: Sphinx keeps the section ids of the notebook's headings)."""
    href = f"{page}.html" + (f"#{anchor}" if anchor else "")
    return f'<a class="reference internal" href="{html.escape(href)}">{html.escape(text)}</a>'


@dataclass
class Landing:
    markdown: str
    images: dict[str, bytes] = field(default_factory=dict)  # file name under figures/ → PNG


def _lead(scale: str, concluding: Notebook | None, images: dict[str, bytes]) -> list[str]:
    """What the landing page opens with: the study's answer in a few sentences (``site_answer.answer``, from the
    concluding round's ranking and proposals tables), the ranking figure of every row against DeltaNet beside the
    table of how far the scale predicts the full protocol per task."""
    if concluding is None:
        return ["```{container} site-answer\n:name: the-answer\n\nNo executed round of this scale concludes the "
                "study (the concluding round trains every registered variant and ranks them): there is no ranking to "
                "show, and no answer yet.\n```\n"]
    anchor = concluding.anchor("conclusion")
    tables = [o.data for o in role_outputs(concluding.nb, "conclusion", "html")]
    said = site_answer.answer(tables[0], tables[-1] if len(tables) > 1 else None, scale) if tables else [
        f"The concluding round ({concluding.title}) shows no ranking table: there is no answer to show."]
    source = f"Read from the tables of {_link(concluding.page, anchor, concluding.title)}."
    md = ["```{container} site-answer\n:name: the-answer\n\n" + "\n\n".join(said)
          + f"\n\n<span class=\"site-source\">{source}</span>\n```\n"]
    figure = role_outputs(concluding.nb, "ranking-figure", "png")[:1]
    agreed = role_outputs(concluding.nb, "agreement", "html")[:1]
    side = []
    for o in figure:
        images["ranking.png"] = base64.b64decode(o.data)
        side.append("```{figure} figures/ranking.png\n:name: ranking-figure\n:alt: every ranked row against "
                    "DeltaNet\n\nEvery ranked row's Average against DeltaNet's: the paired difference over seeds with "
                    f"its 95% interval ({_link(concluding.page, anchor, 'the ranking on its page')}).\n```\n")
    compact = site_answer.agreement_table(agreed[0].data, scale) if agreed else ""
    where = concluding.anchor("agreement")
    if compact:
        side.append(f"````{{container}} site-agreement-box\n**How far `{scale}` predicts the full protocol** "
                    f"({_link(concluding.page, where, 'the measurement')})\n\n```{{raw}} html\n{compact}\n```\n````\n")
    else:
        side.append(f"````{{container}} site-agreement-box\n**How far `{scale}` predicts the full protocol**: not "
                    "measured (the concluding notebook has no agreement table; `python -m deltalab agreement --scale "
                    f"{scale}` prints it from the stored runs).\n````\n")
    md.append("`````{container} site-lead\n" + "\n".join(side) + "`````\n")
    return md


def landing(scale: str, notebooks: list[Notebook], others: list[tuple[str, str, list[Notebook]]]) -> Landing:
    """The landing page (MyST Markdown) and the figures it shows, from the executed notebooks: the answer first
    (``_lead``), then the ranking, the question, the scale, the agreement, the rounds, the proposals and the cost."""
    rounds = [n for n in notebooks if n.number is not None]
    others_nb = [n for n in notebooks if n.number is None]
    concluding = next((n for n in reversed(rounds) if n.concludes()), None)
    images: dict[str, bytes] = {}
    md = [f"# The delta-rule study at scale `{scale}`\n", *_lead(scale, concluding, images)]
    md.append(f"Executed notebooks of scale `{scale}`, shown as they ran: nothing on this site was re-executed. This "
              f"page is generated from their outputs: each table, sentence and figure on it is copied from the "
              f"notebook it links to or read from its tables. {len(rounds)} analysis round(s)"
              + (f" and {', '.join(f'`{n.name}`' for n in others_nb)}" if others_nb else "") + ".\n")

    md.append("## The ranking\n")
    if concluding is None:
        md.append("No executed round of this scale concludes the study (the concluding round trains every "
                  "registered variant and ranks them): there is no ranking to show.\n")
    else:
        anchor = concluding.anchor("conclusion")
        found = role_outputs(concluding.nb, "conclusion")
        tables = [o for o in found if o.kind == "html"]
        said = next((o for o in found if o.kind == "markdown"), None)
        md.append(f"From {_link(concluding.page, anchor, concluding.title + ', its conclusion')}.\n")
        md.extend(p + "\n" for p in concluding.intro("conclusion"))
        if tables:
            md.append(_raw(tables[0].data))
        if said is not None:
            parts = paragraphs(said.data)
            cut = next((i for i, p in enumerate(parts) if i > 0 and re.match(r"at scale", p, re.I)), len(parts))
            md.extend(sentence(p) + "\n" for p in parts[:cut])
            if cut < len(parts):
                md.append(f"The best row per task is on {_link(concluding.page, anchor, 'the round’s page')}.\n")
        for i, figure in enumerate(role_outputs(concluding.nb, "ranking-figure", "png")[1:], start=2):
            name = f"ranking_{i}.png"
            images[name] = base64.b64decode(figure.data)
            md.append(f"```{{figure}} figures/{name}\n:name: ranking-figure-{i}\n:alt: every ranked variant\n\n"
                      f"The concluding round's figure of every ranked row "
                      f"({_link(concluding.page, anchor, 'on its page')}).\n```\n")

    md.append("## The question\n")
    asked = concluding.header_paragraph("**Question.**") if concluding else None
    if concluding and asked:
        md.append(f"As the concluding round ({_link(concluding.page, None, concluding.title)}) asks it:\n\n{asked}\n")
    else:
        md.append("The concluding round is not among this scale's executed notebooks, so its question is not "
                  "shown; each round's question opens its page.\n")

    md.append(f"## The scale: `{scale}`\n")
    description = scale_description(scale)
    md.append((description or f"`params/scales/{scale}.yaml` has no description.") + "\n")
    trained = role_outputs(concluding.nb, "training", "markdown") if concluding else []
    if trained:
        md.append(sentence(paragraphs(trained[0].data)[0]) + "\n")

    md.append("## Rank agreement with the full protocol\n")
    shown = role_outputs(concluding.nb, "agreement") if concluding else []
    if any(o.kind == "html" for o in shown):  # the concluding round measured it: its note (the table is above)
        where = _link(concluding.page, concluding.anchor("agreement"), concluding.title)
        md.extend(p + "\n" for p in concluding.intro("agreement"))
        md.extend(o.data.strip() + "\n" for o in shown[:1] if o.kind == "markdown")
        md.append(f"The per-task table at the top of this page is read from {where}, which also shows the table over "
                  "all rows and the calibration rows, the baselines' state, the archived versions and the pilots.\n")
    else:
        md.append(f"Not measured: the study's concluding notebook has no agreement table (re-execute it: "
                  f"`python -m deltalab agreement --scale {scale}` prints the table from the stored runs).\n")

    md.append("## The rounds\n")
    md.append("Each round's claims and its proposal's own success criteria, as the round judges them (links: the "
              "round's page, and the section with each verdict's evidence).\n")
    for n in rounds:
        claims, criteria, proposal = n.summary("claims"), n.summary("criteria"), n.proposal_line()
        line = [f"- **{_link(n.page, None, n.title)}**"]
        if claims:
            line.append(f"  - claims ({_link(n.page, n.anchor('claims'), 'evidence')}): {claims}")
        if proposal or criteria:
            line.append(f"  - proposal ({_link(n.page, n.anchor('criteria'), 'criteria')}): "
                        f"{proposal or criteria}")
        if not (claims or proposal or criteria):
            line.append("  - no verdicts found in this notebook")
        md.append("\n".join(line) + "\n")
    for n in others_nb:
        md.append(f"- **{_link(n.page, None, n.title)}**\n")

    md.append("## The proposals' outcomes\n")
    proposals = [o for o in role_outputs(concluding.nb, "conclusion", "html")][1:] if concluding else []
    if proposals:
        md.append(f"Each round's proposal on its own success criteria "
                  f"({_link(concluding.page, concluding.anchor('conclusion'), 'the conclusion')}):\n")
        md.append(_raw(proposals[-1].data))
    else:
        md.append("Not judged: the concluding round is not among this scale's executed notebooks (each round's "
                  "page judges its own proposal).\n")

    md.append("## Cost\n")
    source = concluding or (rounds[-1] if rounds else None)
    cost = role_outputs(source.nb, "cost") if source else []
    if not cost:
        md.append("No round notebook of this scale has a cost cell.\n")
    for o in cost:
        if o.kind == "markdown":
            md.append(o.data.strip() + "\n")
        elif o.kind == "png":
            images["cost.png"] = base64.b64decode(o.data)
            md.append("```{figure} figures/cost.png\n:name: cost-figure\n:alt: throughput and cost per variant\n\n"
                      f"The cost figure ({_link(source.page, source.anchor('cost'), source.title)}).\n```\n")

    if others:
        md.append("## Other scales\n")
        for name, description, nbs in others:
            label = "archived" if archived(description) else "another scale"
            md.append(f"- **[`{name}`](archive/{name}/index.md)** ({label}, {len(nbs)} executed notebooks): "
                      f"{description}\n")

    md.append("```{toctree}\n:hidden:\n:caption: " + f"Scale {scale}\n\n"
              + "\n".join(n.page for n in notebooks) + "\n```\n")
    if others:
        md.append("```{toctree}\n:hidden:\n:caption: Other scales\n\n"
                  + "\n".join(f"archive/{name}/index" for name, _, _ in others) + "\n```\n")
    return Landing("\n".join(md), images)


# ---------------------------------------------------------------------------------------------------------------
# Staging and building


def staged(notebook: Notebook, banner: tuple[str, str] | None = None):
    """A copy of the notebook for its page: its title, code cells folded, an optional note (title, text) under the
    title; outputs untouched."""
    from nbformat.v4 import new_markdown_cell

    nb = copy.deepcopy(notebook.nb)
    first = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    heading = f"# {notebook.title}"
    if first is not None and re.match(r"#\s", first.source):
        first.source = re.sub(r"^#\s+.*$", lambda _: heading, first.source, count=1, flags=re.M)
        at = nb.cells.index(first) + 1
    else:
        nb.cells.insert(0, new_markdown_cell(heading))
        at = 1
    if banner:
        nb.cells.insert(at, new_markdown_cell(f"```{{admonition}} {banner[0]}\n:class: warning\n\n{banner[1]}\n```"))
    for i, cell in enumerate(nb.cells):
        cell.id = f"site-{i:03d}"  # unique after the insertions
        if cell.cell_type == "code":
            tags = list(cell.metadata.get("tags", []))
            if "hide-input" not in tags:
                cell.metadata["tags"] = tags + ["hide-input"]
    return nb


CONF = '''\
# Generated by deltalab.publish.site: the Sphinx configuration of the study's site.
project = {project!r}
author = {project!r}
html_title = {title!r}
extensions = ["myst_nb", "sphinx.ext.githubpages"]  # the latter: .nojekyll, for GitHub Pages
nb_execution_mode = "off"  # the committed outputs are the page: nothing is executed
nb_merge_streams = True
myst_enable_extensions = []
exclude_patterns = ["_build"]
html_theme = "sphinx_book_theme"
html_theme_options = {{"show_toc_level": 2, "use_download_button": True, "home_page_in_toc": True,
                      # the landing page's wide tables get the width of the right-hand contents column
                      "secondary_sidebar_items": {{"**": ["page-toc"], "index": []}}}}
html_context = {{"default_mode": "light"}}  # no stored mode on a fresh browser: pydata's theme logs an error
html_static_path = ["_static"]
html_css_files = ["site.css"]
html_js_files = ["site.js"]  # wraps each table in a box that scrolls sideways, and says so where it must
html_favicon = "_static/favicon.svg"
html_last_updated_fmt = None
html_show_sphinx = False
'''

STATIC = Path(__file__).parent / "site_static"  # site.css, site.js, favicon.svg: copied into _static/


MIN_TEXT_PX = 8  # no figure's text is shown smaller than this on a page
# A figure drawn before plots.py recorded its smallest text (plots.SMALLEST_TEXT): its smallest text then was 7 pt.
UNRECORDED_TEXT_PX = 7 * 100 / 72


def png_facts(data: bytes) -> tuple[int, float]:
    """A PNG's width in pixels and the size of its smallest text in pixels (its ``plots.SMALLEST_TEXT`` chunk, else
    ``UNRECORDED_TEXT_PX``)."""
    import struct

    from ..plots import SMALLEST_TEXT

    width = struct.unpack(">I", data[16:20])[0]
    at, smallest = 8, UNRECORDED_TEXT_PX
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        if kind == b"tEXt":
            key, _, value = data[at + 8:at + 8 + length].partition(b"\0")
            if key.decode("latin-1") == SMALLEST_TEXT:
                smallest = float(value)
        if kind == b"IEND":
            break
        at += 12 + length
    return width, smallest


def _legible_images(site: Path) -> None:
    """Give every PNG of every page a min-width at which its smallest text is ``MIN_TEXT_PX`` (never more than its
    own width): a narrower page scrolls the figure sideways (site.css) instead of shrinking its text away. The
    image also carries ``data-smallest-text`` (px at its own size), which the browser check reads."""
    def sized(match, page: Path) -> str:
        tag = match.group(0)
        src = re.search(r'\ssrc="([^"]+)"', tag)
        target = (page.parent / unquote(urlsplit(src.group(1)).path)).resolve() if src else None
        if target is None or target.suffix.lower() != ".png" or not target.exists() or "data-smallest-text" in tag:
            return tag
        width, smallest = png_facts(target.read_bytes())
        least = min(width, -(-width * MIN_TEXT_PX // smallest))
        return tag[:4] + f' data-smallest-text="{smallest:.1f}" style="min-width: {least:.0f}px"' + tag[4:]

    for page in site.rglob("*.html"):
        if page.relative_to(site).parts[0] == "_static":
            continue
        text = page.read_text()
        changed = re.sub(r"<img\b[^>]*>", lambda m: sized(m, page), text)
        if changed != text:
            page.write_text(changed)


@dataclass
class Built:
    out: Path
    pages: list[str]
    warnings: list[str]
    seconds: float


def _prepare_out(out: Path) -> None:
    if out.exists():
        if not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists()):
            raise SiteError(f"{out} exists and is not a site this command built (no {MARKER}): choose another --out "
                            "or remove it")
        shutil.rmtree(out)
    out.mkdir(parents=True)


def build(scale: str = "cpu", out: str | Path = "site", study: str | Path | None = None,
          others: bool = True, quiet: bool = True) -> Built:
    """Build the site of ``scale``'s executed study (``outputs/<scale>/`` unless ``study``) into ``out``."""
    try:
        import myst_nb  # noqa: F401
        import sphinx  # noqa: F401
        import sphinx_book_theme  # noqa: F401
    except ImportError as e:
        raise SiteError(f"the site needs Sphinx, MyST-NB and sphinx-book-theme ({e.name} is missing): {INSTALL}")
    import subprocess

    import nbformat

    started = time.perf_counter()
    study = Path(study) if study else OUTPUTS / scale
    if not study.is_dir():
        raise SiteError(f"no executed study for scale {scale!r} at {study}")
    notebooks = read_study(study, scale)
    for n in notebooks:
        if n.errors():
            print(f"warning: {n.path} holds an error output: {n.errors()[0]}", file=sys.stderr)
    rest = []
    for name, folder in (other_studies(study, scale) if others else []):
        try:
            rest.append((name, scale_description(name), read_study(folder, name)))
        except SiteError as e:
            print(f"warning: {name} left out: {e}", file=sys.stderr)
    page = landing(scale, notebooks, rest)
    out = Path(out)
    _prepare_out(out)
    (out / MARKER).write_text(f"scale: {scale}\nstudy: {study}\n")
    with tempfile.TemporaryDirectory(prefix="deltalab-site-") as tmp:
        src = Path(tmp) / "src"
        (src / "_static").mkdir(parents=True)
        (src / "figures").mkdir()
        (src / "conf.py").write_text(CONF.format(project="deltalab", title=f"deltalab · scale {scale}"))
        for asset in ("site.css", "site.js", "favicon.svg"):
            shutil.copy(STATIC / asset, src / "_static" / asset)
        (src / "index.md").write_text(page.markdown)
        for name, data in page.images.items():
            (src / "figures" / name).write_bytes(data)
        for n in notebooks:
            nbformat.write(staged(n), src / f"{n.page}.ipynb")
        for name, description, nbs in rest:
            folder = src / "archive" / name
            folder.mkdir(parents=True)
            kind = "archived" if archived(description) else "another scale's study"
            banner = ("Archived" if archived(description) else "Another scale",
                      f"Scale `{name}` ({kind}): this notebook belongs to `outputs/{name}/`, not to the `{scale}` "
                      f"study of this site's front page. {description}")
            for n in nbs:
                nbformat.write(staged(n, banner), folder / f"{n.page}.ipynb")
            (folder / "index.md").write_text(
                f"# Scale `{name}` ({kind})\n\n{description}\n\nIts executed notebooks (`outputs/{name}/`):\n\n"
                "```{toctree}\n:maxdepth: 1\n\n" + "\n".join(n.page for n in nbs) + "\n```\n")
        # sphinx-build in its own process: Sphinx registers its node classes with docutils process-wide, so a
        # second build in one process warns about every one of them. It writes into the temporary folder (MyST-NB
        # puts its extracted outputs beside the output folder, in ../jupyter_execute), then the site is copied out.
        log, html_dir = Path(tmp) / "warnings.log", Path(tmp) / "build" / "html"
        done = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-E", "-q", "--no-color", "-w", str(log),
                               "-d", str(Path(tmp) / "build" / "doctrees"), str(src), str(html_dir)],
                              stdout=None if not quiet else subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        found = [w for w in log.read_text().splitlines() if w.strip()] if log.exists() else []
        if done.returncode:
            raise SiteError(f"sphinx-build failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
        shutil.copytree(html_dir, out, dirs_exist_ok=True)
    _legible_images(out)
    pages = ["index"] + [n.page for n in notebooks] + [f"archive/{name}/{n.page}" for name, _, nbs in rest
                                                        for n in nbs]
    return Built(out, pages, found, time.perf_counter() - started)


# ---------------------------------------------------------------------------------------------------------------
# Checks: links and images in the files, then a real browser


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[tuple[str, str]] = []  # (tag.attribute, value)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name"):
            if attrs.get(key) and (key == "id" or tag == "a"):
                self.ids.add(attrs[key])
        for key in ("href", "src"):
            if attrs.get(key) is not None and not (tag == "link" and attrs.get("rel") in ("preconnect",)):
                self.links.append((f"{tag}.{key}", attrs[key]))


def _parsed(path: Path, cache: dict) -> _Links:
    if path not in cache:
        parser = _Links()
        parser.feed(path.read_text(errors="replace"))
        cache[path] = parser
    return cache[path]


def broken_links(site: str | Path) -> list[str]:
    """Every internal link and image of every page that does not resolve: a missing file, or a #fragment the
    target page lacks. Outside links (http, mailto) are listed too: the site is meant to need no network."""
    site = Path(site)
    cache: dict = {}
    problems = []
    for page in sorted(site.rglob("*.html")):
        if page.relative_to(site).parts[0] == "_static":  # the theme's template fragments, not pages
            continue
        for where, value in _parsed(page, cache).links:
            parts = urlsplit(value)
            if parts.scheme in ("http", "https") or value.startswith("//"):
                if where in ("img.src", "script.src", "link.href", "iframe.src"):
                    problems.append(f"{page.relative_to(site)}: {where} loads from outside the site: {value}")
                continue
            if parts.scheme in ("mailto", "data", "javascript") or (not parts.path and not parts.fragment):
                continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page.resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                problems.append(f"{page.relative_to(site)}: {where} {value} → no such file")
                continue
            fragment = unquote(parts.fragment)
            if fragment and target.suffix == ".html" and fragment not in _parsed(target, cache).ids:
                problems.append(f"{page.relative_to(site)}: {where} {value} → no element with id {fragment!r}")
    return problems


def chromium() -> str | None:
    """Debian's Chromium, or CHROMIUM on the PATH; None when neither is installed."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    return CHROMIUM if Path(CHROMIUM).exists() else found


def browser_ready() -> str | None:
    """None when the browser check can run here; otherwise what is missing and how to get it."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the Python package playwright is missing (pip install playwright; the browser is the system's)"
    if chromium() is None:
        return "Chromium is missing (Debian/Ubuntu: apt-get install -y chromium chromium-driver)"
    return None


_WAIT_IMAGES = """async () => {
  for (const img of document.images) { img.loading = "eager"; }
  await Promise.all([...document.images].map(img => img.complete ? null :
      new Promise(done => { img.addEventListener("load", done); img.addEventListener("error", done); })));
  return [...document.images].map(img => ({src: img.currentSrc || img.src, w: img.naturalWidth,
                                            alt: img.alt}));
}"""


# The two screens a reader meets the site on: a laptop's and a phone's (CSS pixels).
VIEWPORTS = {"1280": {"width": 1280, "height": 800}, "390": {"width": 390, "height": 844}}

# The layout as rendered: where the answer starts; each table against the box that holds it (the nearest ancestor
# that scrolls sideways, else the article); each figure's smallest text at its rendered size.
_LAYOUT = """() => {
  const article = document.querySelector("article") || document.body;
  const answer = document.querySelector("#the-answer");
  const tables = [...article.querySelectorAll("table")].filter(t => t.getClientRects().length);
  const scroller = t => {
    for (let box = t.parentElement; box && box !== article; box = box.parentElement) {
      const x = getComputedStyle(box).overflowX;
      if (x === "auto" || x === "scroll") return box;
    }
    return null;
  };
  const wide = [], unboxed = [];
  for (const t of tables) {
    const box = scroller(t);
    const width = t.getBoundingClientRect().width;
    if (width > (box || article).clientWidth + 1) {
      wide.push(t);
      if (!box) unboxed.push((t.innerText || "").trim().slice(0, 60));
    }
  }
  const small = [];
  for (const img of article.querySelectorAll("img[data-smallest-text]")) {
    const shown = img.getBoundingClientRect().width;
    if (!shown || !img.naturalWidth) continue;  // not displayed (a folded output)
    const px = parseFloat(img.dataset.smallestText) * shown / img.naturalWidth;
    if (px < %(least)s - 0.05) small.push({src: img.getAttribute("src"), px: Math.round(px * 10) / 10});
  }
  return {answer_top: answer ? Math.round(answer.getBoundingClientRect().top + window.scrollY) : null,
          tables: tables.length, wider: wide.length, unboxed, small};
}"""


@dataclass
class PageCheck:
    page: str
    problems: list[str]
    images: int
    shots: list[Path]
    layout: dict = field(default_factory=dict)  # viewport ("1280", "390") → what _LAYOUT measured there


def check_in_browser(site: str | Path, shots: str | Path, pages: list[str] | None = None,
                     executable: str | None = None) -> list[PageCheck]:
    """Load pages of a built site in headless Chromium, served over HTTP from 127.0.0.1, at each of ``VIEWPORTS``
    (1280 × 800 and a phone's 390 × 844), and report per page: a console error or uncaught exception, a failed
    request or one to anywhere but the site, an HTTP error (the favicon's included), an image that does not load
    (naturalWidth 0); a table wider than the box that holds it where that box does not scroll; a figure whose
    smallest text is shown under ``MIN_TEXT_PX``; on the landing page, an answer (``#the-answer``) that does not
    start on the first screen, or no ranking figure; on a round page, contents that do not open from the header's list
    button where they are a drawer. Saves screenshots under ``shots``: each page's first screen at
    each width (``<page>_<width>.png``), the whole landing page, its ranking figure and a round page's verdicts.
    ``pages``: default the landing page and the concluding round's page (else the first round's)."""
    import functools
    import threading

    from playwright.sync_api import sync_playwright

    site, shots = Path(site), Path(shots)
    shots.mkdir(parents=True, exist_ok=True)
    if pages is None:
        rounds = sorted((p.stem for p in site.glob("round_*.html")), key=lambda s: int(s.split("_")[1]))
        pages = ["index"] + rounds[-1:]  # the last round: the concluding one in a complete study
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    results = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable or chromium(), args=CHROMIUM_ARGS)
            for name in pages:
                result = PageCheck(name, [], 0, [])
                for width, viewport in VIEWPORTS.items():
                    _check_page(browser, base, name, width, viewport, shots, result)
                results.append(result)
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    return results


def _check_page(browser, base: str, name: str, width: str, viewport: dict, shots: Path, result: PageCheck) -> None:
    """One page at one viewport, in a fresh browser context: its problems and layout into ``result``."""
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "assert")
            else None)
    page.on("pageerror", lambda e: problems.append(f"uncaught exception: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} ({r.failure})"))
    page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)

    def outside(route):
        problems.append(f"request outside the site: {route.request.url}")
        route.abort()

    page.route(lambda url: not url.startswith(base), outside)
    page.goto(base + f"{name}.html", wait_until="load")
    images = page.evaluate(_WAIT_IMAGES)
    problems += [f"image does not load: {i['src']}" for i in images if not i["w"]]
    page.wait_for_load_state("networkidle")
    icon = page.evaluate("() => document.querySelector('link[rel~=\"icon\"]')?.href ?? null")
    if icon is None:
        problems.append("no favicon (<link rel=\"icon\">): a browser asks for /favicon.ico and logs its 404")
    elif page.request.get(icon).status >= 400:
        problems.append(f"the favicon does not load: {icon}")
    layout = page.evaluate(_LAYOUT % {"least": MIN_TEXT_PX})
    result.layout[width] = layout
    at = f"at {viewport['width']} × {viewport['height']}"
    problems += [f"a table wider than its box, which does not scroll, {at}: {t!r}" for t in layout["unboxed"]]
    problems += [f"a figure's smallest text is shown at {i['px']} px (under {MIN_TEXT_PX}) {at}: {i['src']}"
                 for i in layout["small"]]
    stem = name.replace("/", "_")
    taken = [shots / f"{stem}_{width}.png"]
    page.screenshot(path=str(taken[0]))
    if name == "index":
        top = layout["answer_top"]
        if top is None:
            problems.append("the landing page has no answer (#the-answer)")
        elif top >= viewport["height"]:
            problems.append(f"the answer starts at {top} px, below the first screen {at}")
        if page.locator("#ranking-figure").count():
            if width == "1280":
                taken.append(shots / "index_ranking.png")
                page.locator("#ranking-figure").screenshot(path=str(taken[-1]))
        else:
            problems.append("the landing page shows no ranking figure (#ranking-figure)")
        if width == "1280":
            taken.append(shots / "index_full.png")
            page.screenshot(path=str(taken[-1]), full_page=True)
    verdicts = page.locator("section#the-seed-document-s-claims-re-examined")
    if name.startswith("round_") and width == "1280":
        if verdicts.count():
            verdicts.evaluate("section => section.scrollIntoView()")  # its heading at the top
            taken.append(shots / f"{stem}_verdicts.png")
            page.screenshot(path=str(taken[-1]))
            if not re.search(r"holds|contradicted|not established|not testable", verdicts.inner_text()):
                problems.append("the claims section shows no verdict")
        else:
            problems.append("no claims section (#the-seed-document-s-claims-re-examined)")
        toggle = page.locator(".bd-header-article button.secondary-toggle")
        if toggle.count() and toggle.first.is_visible():  # the right-hand contents, a drawer at this width
            toggle.first.click()
            page.wait_for_timeout(300)
            if not page.evaluate("() => document.getElementById('pst-secondary-sidebar-modal')?.open ?? false"):
                problems.append(f"the page's contents (the header's list button) do not open {at}")
    result.problems += [p for p in problems if p not in result.problems]
    result.images = max(result.images, len(images))
    result.shots += taken
    context.close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """The site served as files, without a log line per request."""

    def log_message(self, *args):
        pass


# ---------------------------------------------------------------------------------------------------------------
# Command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deltalab site", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="cpu", help="the study's scale (default cpu)")
    parser.add_argument("--out", default="site", help="the folder to write the site to (default site/)")
    parser.add_argument("--study", default=None, help="the folder of executed notebooks (default outputs/<scale>/)")
    parser.add_argument("--no-others", action="store_true", help="leave out other scales' studies (outputs/*/)")
    parser.add_argument("--check", action="store_true",
                        help="check the built site in --out (links, images, then headless Chromium) instead of "
                             "building it")
    parser.add_argument("--shots", default=None,
                        help="--check: where the screenshots go (default: screenshots/ in the site's folder)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    try:
        if args.check:
            return _check(out, Path(args.shots) if args.shots else out / "screenshots")
        built = build(args.scale, out, args.study, others=not args.no_others)
    except SiteError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for w in built.warnings:
        print(f"sphinx: {w}", file=sys.stderr)
    print(f"built {len(built.pages)} pages of scale {args.scale!r} in {built.seconds:.1f} s: "
          f"{built.out / 'index.html'}" + (f" ({len(built.warnings)} Sphinx warnings)" if built.warnings else ""))
    problems = broken_links(built.out)
    for line in problems:
        print(f"broken: {line}", file=sys.stderr)
    return 1 if problems else 0


def _check(out: Path, shots: Path) -> int:
    if not (out / "index.html").exists():
        raise SiteError(f"no site in {out}: build it first (python -m deltalab site --out {out})")
    problems = broken_links(out)
    for line in problems:
        print(f"broken: {line}")
    missing = browser_ready()
    if missing:
        raise SiteError(f"the browser check cannot run: {missing}")
    for result in check_in_browser(out, shots):
        status = "ok" if not result.problems else f"{len(result.problems)} problem(s)"
        print(f"{result.page}: {status}, {result.images} images loaded; screenshots: "
              + ", ".join(str(s) for s in result.shots))
        for width, found in result.layout.items():
            top = f"the answer's top at {found['answer_top']} px; " if found["answer_top"] is not None else ""
            print(f"  at {width} px: {top}{found['tables']} tables, {found['wider']} wider than their box (each in a "
                  f"box that scrolls: {not found['unboxed']}), {len(found['small'])} figures with text under "
                  f"{MIN_TEXT_PX} px")
        for line in result.problems:
            print(f"  {line}")
        problems += result.problems
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
