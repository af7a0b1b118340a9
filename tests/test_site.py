"""The study's static site (deltalab.publish.site, docs/site.md), checked as a reader would meet it.

A small study is executed once for the module, the way scripts/test.sh executes the notebooks: run_variant, round 1
and round 6 (the concluding round) at `smoke` on two tasks, into a temporary folder with a temporary results store
(about a minute on two cores), with an archived study beside it (cpu-v1's committed run_variant). The site built from
it must copy the notebooks' numbers unchanged, have no link or image that does not resolve, and load in a real
headless browser without a console error or a broken image. The committed `cpu` study is built too.

The browser test needs Debian's Chromium and the `playwright` package (the `site` extra); where Chromium is missing
it is skipped, with how to install it (apt-get install -y chromium chromium-driver) and how to run the check by hand:
bash scripts/check_site.sh. Screenshots go to $DELTALAB_SITE_SHOTS if set, else a temporary folder.
"""
from __future__ import annotations

import base64
import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from deltalab.publish import site, site_answer
from deltalab.runtime import REPO_ROOT

TWO_TASKS = "memorization,noisy-in-context-recall"


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    """outputs/smoke/ of a fresh smoke study (run_variant, round 1, round 6), and outputs/cpu-v1/ beside it."""
    import papermill

    root = tmp_path_factory.mktemp("site-study")
    out = root / "outputs" / "smoke"
    out.mkdir(parents=True)
    runs = [("run_variant.ipynb", "run_variant.ipynb", {"variant": "l2_norm_error"}),
            ("round.ipynb", "round_1.ipynb", {"round_file": "params/rounds/round_1.yaml"}),
            ("round.ipynb", "round_6.ipynb", {"round_file": "params/rounds/round_6.yaml"})]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DELTALAB_RESULTS", str(root / "results"))
        mp.setenv("DELTALAB_DATA", os.environ.get("DELTALAB_DATA") or str(root / "data"))
        for source, target, parameters in runs:
            papermill.execute_notebook(
                str(REPO_ROOT / "notebooks" / source), str(out / target), cwd=str(REPO_ROOT), progress_bar=False,
                log_output=False, parameters={"scale": "smoke", "tasks": TWO_TASKS,
                                              "figures_dir": str(root / "figures"), **parameters})
    subprocess.run([sys.executable, "-m", "deltalab.publish.nbclean", *map(str, out.glob("*.ipynb"))], check=True)
    archived = root / "outputs" / "cpu-v1"
    archived.mkdir()
    shutil.copy(REPO_ROOT / "outputs" / "cpu-v1" / "run_variant.ipynb", archived)
    return out


@pytest.fixture(scope="module")
def built(study, tmp_path_factory) -> site.Built:
    return site.build("smoke", tmp_path_factory.mktemp("site") / "site", study)


def _text(page: Path) -> str:
    """A page's visible text, whitespace collapsed, quotes straightened (Sphinx curls them)."""
    body = re.sub(r"<!--.*?-->", " ", page.read_text(), flags=re.S)
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
    text = html.unescape(re.sub(r"<[^>]+>", "", body))  # inline markup splits no word
    return _flat(text)


def _flat(text: str) -> str:
    text = text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    return re.sub(r"\s+", " ", text).strip()


def _tables(markup: str) -> list[str]:
    return re.findall(r"<table\b.*?</table>", markup, flags=re.S)


def _notebook(path: Path) -> site.Notebook:
    return site.read_notebook(path)


def test_the_site_has_a_page_per_notebook_and_no_warning(built, study):
    assert not built.warnings, "\n".join(built.warnings)
    for name in ("index", "round_1", "round_6", "run_variant", "archive/cpu-v1/index", "archive/cpu-v1/run_variant"):
        assert (built.out / f"{name}.html").exists(), name
    round_1 = (built.out / "round_1.html").read_text()
    title = _notebook(study / "round_1.ipynb").title
    page_title = re.search(r"<title>(.*?)</title>", round_1, flags=re.S).group(1)
    assert title.startswith("Round 1: ") and _flat(html.unescape(page_title)).startswith(_flat(title))
    assert "figure" in round_1 and "<img" in round_1  # figures inline
    assert "Archived" in (built.out / "archive" / "cpu-v1" / "run_variant.html").read_text()
    assert "archived" in _text(built.out / "index.html")


def test_the_landing_page_shows_the_notebooks_numbers(built, study):
    """Tables are the notebooks' HTML verbatim; sentences their text; the ranking figure their PNG; the answer and
    the per-task agreement are read from the notebook's tables, and every number they show is one of those tables'."""
    index = (built.out / "index.html").read_text()
    text = _text(built.out / "index.html")
    concluding = _notebook(study / "round_6.ipynb")
    conclusion = site.role_outputs(concluding.nb, "conclusion")
    ranking, proposals = [o.data for o in conclusion if o.kind == "html"]
    assert "Δ Average vs delta_net" in ranking and "proposal" in proposals
    for table in (ranking, proposals):
        assert _tables(table)[0] in index
    said = next(o.data for o in conclusion if o.kind == "markdown")
    assert _flat(site.plain(site.sentence(site.paragraphs(said)[0]))) in text
    assert _flat(site.plain(concluding.header_paragraph("**Question.**"))) in text
    assert _flat(site.plain(site.scale_description("smoke"))) in text
    for name in ("round_1", "round_6"):
        n = _notebook(study / f"{name}.ipynb")
        for line in (n.summary("claims"), n.proposal_line()):
            assert line and _flat(site.plain(line)) in text, (name, line)
        assert f'href="{name}.html#the-seed-document-s-claims-re-examined"' in index
        assert f'href="{name}.html#the-proposal-and-its-own-success-criteria"' in index
    png = base64.b64decode(site.role_outputs(concluding.nb, "ranking-figure", "png")[0].data)
    assert png in [p.read_bytes() for p in (built.out / "_images").glob("ranking*.png")]
    assert 'id="ranking-figure"' in index

    # the answer opens the page, before any other section, and its numbers are the ranking table's
    answer = re.search(r'<div[^>]*id="the-answer"[^>]*>(.*?)</div>', index, flags=re.S)
    assert answer and index.index('id="the-answer"') < index.index('id="the-ranking"')
    said = _flat(html.unescape(re.sub(r"<[^>]+>", "", answer.group(1))))
    shown = _flat(html.unescape(re.sub(r"<[^>]+>", " ", _tables(ranking)[0])))
    rows = site_answer.ranking(ranking)
    top = next(r for r in rows if r.rank is not None and r.row != "delta_net")
    assert f"{top.row} comes out on top" in said and f"{top.average:.3f}" in said
    for number in re.findall(r"[+-]?\d+\.\d{3}", said):
        assert number in shown, number
    assert "NaN" not in text and "nan" not in said

    # how far the scale predicts the full protocol: per task, the notebook's held-out numbers, and no NaN
    agreement = site.role_outputs(concluding.nb, "agreement", "html")
    if agreement:
        cells = _flat(html.unescape(re.sub(r"<[^>]+>", " ", index)))
        for a in site_answer.agreement(agreement[0].data):
            assert a.rows == "held-out" or a.rows == "all"
            assert f"{a.task} {a.shown} {a.interval}" in cells
    else:
        assert "not measured" in text


def test_the_answer_is_read_from_the_tables():
    """site_answer on small tables as pandas writes them: the leader, its interval, the counts; an agreement table
    with empty cells shows "—", never NaN."""
    import pandas as pd

    ranking = pd.DataFrame({"rank": [1, 2, 3], "Average": [0.7, 0.6, 0.5],
                            "Δ Average vs delta_net": ["+0.200 ▲ [+0.100, +0.300]", "", "-0.100 [-0.300, +0.100]"],
                            "n seeds": [3, 3, 3], "not clearly learned (†)": ["", "", "Memorize"]},
                           index=["a", "delta_net", "b"])
    said = site_answer.answer(ranking.to_html(), None, "smoke", top=2)
    assert said[0].startswith("**The answer.** At scale `smoke`, **`a`** comes out on top of 3 ranked rows")
    assert "+0.200 (95% interval [+0.100, +0.300], paired over 3 seeds: clearly above)" in said[0]
    assert "Next: `b` -0.100 [-0.300, +0.100]" in said[0]
    assert said[1].startswith("1 row is clearly above DeltaNet on the Average, 0 clearly below and 1 not clearly")
    assert "DeltaNet ranks #2." in said[1]
    agreed = pd.DataFrame({"task": ["Compress", "Compress", "Noisy Recall"], "rows": ["all", "held-out", "held-out"],
                           "measure": ["spearman", "spearman", "classified alike"], "n": [5, 3, 3],
                           "value": [0.5, 0.9, float("nan")], "low": [0.1, 0.2, float("nan")],
                           "high": [0.8, 1.0, float("nan")], "target": [float("nan"), 0.5, 0.9]}
                          ).set_index(["task", "rows"])
    table = site_answer.agreement_table(agreed.to_html(), "smoke")
    assert "NaN" not in table and "nan" not in table
    assert "<th>Compress</th><td>ρ = 0.90 [0.20, 1.00]</td><td>0.50: met*</td>" in table
    assert "<th>Noisy Recall</th><td>— —</td><td>90%</td>" in table


def test_every_link_and_image_resolves(built):
    assert site.broken_links(built.out) == []
    hrefs = re.findall(r'href="([^"]+)"', (built.out / "index.html").read_text())
    assert any("#" in h and h.startswith("round_") for h in hrefs)  # fragments are among what was checked


def test_a_broken_link_is_found(tmp_path):
    (tmp_path / "a.html").write_text('<a href="b.html#x">b</a><img src="missing.png"><a href="b.html#y">y</a>'
                                     '<script src="https://cdn.example/x.js"></script>')
    (tmp_path / "b.html").write_text('<section id="y"></section>')
    problems = site.broken_links(tmp_path)
    assert len(problems) == 3 and any("'x'" in p for p in problems) and any("missing.png" in p for p in problems)
    assert any("outside the site" in p for p in problems)


@pytest.mark.skipif(site.browser_ready() is not None,
                    reason=f"browser check not run: {site.browser_ready()}; install it, or run "
                           "bash scripts/check_site.sh where it is installed")
def test_in_a_headless_browser(built, tmp_path):
    """At 1280 × 800 and 390 × 844: no console error (the favicon loads), the answer starts on the first screen,
    every table wider than its box scrolls inside it, no figure's text under 8 px; screenshots beside the site."""
    shots = Path(os.environ.get("DELTALAB_SITE_SHOTS") or built.out / "screenshots")
    results = site.check_in_browser(built.out, shots)
    assert [r.page for r in results] == ["index", "round_6"]
    for r in results:
        assert r.problems == [], (r.page, r.problems)
        assert r.images >= 1 and all(s.stat().st_size > 10_000 for s in r.shots)
        assert set(r.layout) == {"1280", "390"}
        for width, layout in r.layout.items():
            assert layout["tables"] >= 1 and layout["unboxed"] == [] and layout["small"] == [], (r.page, layout)
    index = results[0].layout
    assert index["1280"]["answer_top"] < 800 and index["390"]["answer_top"] < 844
    assert {s.name for r in results for s in r.shots} >= {
        "index_1280.png", "index_390.png", "round_6_1280.png", "round_6_390.png", "index_ranking.png",
        "round_6_verdicts.png"}


def test_the_browser_check_fails_a_page_that_buries_its_answer(built, tmp_path):
    """The check's layout assertions can fail: a landing page whose answer sits below a screen of text, and whose
    table is wider than the page with no box that scrolls, is reported at both widths."""
    if site.browser_ready() is not None:
        pytest.skip(f"browser check not run: {site.browser_ready()}")
    broken = tmp_path / "site"
    shutil.copytree(built.out, broken)
    page = broken / "index.html"
    wide = "<table><tr>" + "<td>0.123456789</td>" * 60 + "</tr></table>"
    filler = "<p>" + "words " * 1500 + "</p>"
    text = page.read_text().replace('id="the-answer"', 'id="not-the-answer"', 1)
    text = text.replace('<section id="the-ranking"', f'{filler}<div id="the-answer">late</div>'
                        f'<div style="overflow: visible">{wide}</div><section id="the-ranking"', 1)
    page.write_text(text.replace('src="_static/site.js', 'src="_static/none.js', 1))
    (broken / "_static" / "none.js").write_text("")
    [result] = site.check_in_browser(broken, tmp_path / "shots", pages=["index"])
    assert any("below the first screen at 1280" in p for p in result.problems), result.problems
    assert any("below the first screen at 390" in p for p in result.problems)
    assert any("a table wider than its box" in p for p in result.problems)


def test_a_study_without_its_concluding_round(study, tmp_path):
    partial = tmp_path / "outputs" / "smoke"
    partial.mkdir(parents=True)
    for name in ("round_1.ipynb", "run_variant.ipynb"):
        shutil.copy(study / name, partial)
    built = site.build("smoke", tmp_path / "site", partial)
    text = _text(built.out / "index.html")
    assert "No executed round of this scale concludes the study" in text
    assert site.broken_links(built.out) == [] and not built.warnings


def test_the_committed_cpu_study(tmp_path):
    """python -m deltalab site: the committed cpu notebooks, offline, nothing executed; the ranking is round 6's."""
    out = tmp_path / "site"
    assert site.main(["--scale", "cpu", "--out", str(out)]) == 0
    concluding = _notebook(REPO_ROOT / "outputs" / "cpu" / "round_6.ipynb")
    ranking = next(o.data for o in site.role_outputs(concluding.nb, "conclusion", "html"))
    assert _tables(ranking)[0] in (out / "index.html").read_text()
    assert (out / "archive" / "cpu-v1" / "round_1.html").exists()


def test_an_output_folder_that_is_not_a_site_is_left_alone(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(site.SiteError, match="not a site"):
        site.build("cpu", tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_notebook_of_another_scale_is_refused(study, tmp_path):
    shutil.copy(REPO_ROOT / "outputs" / "cpu" / "run_variant.ipynb", tmp_path)
    with pytest.raises(site.SiteError, match="another scale"):
        site.read_study(tmp_path, "smoke")


def test_cells_are_found_by_tag_only_and_text_changes_are_tolerated(study):
    """Cells are found by their tag (site-<role>), whatever their source, and verdicts may be reworded (adjusted p,
    sign counts); a cell without the tag is not found, whatever its source says."""
    nb = _notebook(study / "round_1.ipynb")
    claims = site.find_cell(nb.nb, "claims")
    reworded = nbformat.from_dict(nbformat.v4.new_code_cell("display(anything)", metadata={"tags": ["site-claims"]}))
    reworded.outputs = [nbformat.v4.new_output(
        "display_data", {"text/markdown": "**Noise.** a note\n\nat scale `smoke`, of 5 (Holm-adjusted): 1 holds "
                         "(p_adj = 0.03, 4/4 seeds), 4 not established.\n\n- **holds** (p_adj 0.03): x"})]
    nb.nb.cells.insert(nb.nb.cells.index(claims), reworded)
    assert site.find_cell(nb.nb, "claims") is reworded
    assert nb.summary("claims") == "at scale `smoke`, of 5 (Holm-adjusted): 1 holds (p_adj = 0.03, 4/4 seeds), 4 not " \
                                   "established."
    for cell in nb.nb.cells:
        cell.metadata.pop("tags", None)
    assert site.find_cell(nb.nb, "claims") is None
    with pytest.raises(ValueError, match="no site role 'claim'"):
        site.find_cell(nb.nb, "claim")
