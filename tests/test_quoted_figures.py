"""No stale number: every figure README, docs/ and the scale files quote from the results is checked against the
store (deltalab.analysis.quoted: a `figure` marker after the paragraph names the query that measures it)."""
import math
from pathlib import Path

import pytest

from deltalab.analysis import quoted as Q
from deltalab.runtime import REPO_ROOT


def test_every_quoted_figure_is_what_the_store_gives_now():
    found, problems = Q.check(REPO_ROOT)
    where = {f.path.relative_to(REPO_ROOT).as_posix() for f in found}
    assert {"README.md", "docs/findings.md", "params/scales/cpu.yaml"} <= where  # the convention is in use
    assert not problems, "figures that no longer hold (fix the text or the marker):\n" + "\n".join(problems)


def _copy(tmp_path: Path, doc: str, old: str, new: str) -> Path:
    """A repository root in tmp_path: the store and params of this one, ``doc`` copied with ``old`` → ``new``."""
    for shared in ("outputs", "params"):
        (tmp_path / shared).symlink_to(REPO_ROOT / shared)
    target = tmp_path / doc
    target.parent.mkdir(parents=True, exist_ok=True)
    text = (REPO_ROOT / doc).read_text()
    assert old in text
    target.write_text(text.replace(old, new))
    return tmp_path


def test_a_figure_that_drifts_from_the_store_fails(tmp_path):
    root = _copy(tmp_path, "docs/findings.md", "0.983", "0.984")  # the text and its marker, both changed
    found, problems = Q.check(root, ("docs/findings.md",))
    assert found and len(problems) == 1
    assert "docs/findings.md:" in problems[0] and "quotes 0.984, but csv outputs/cpu-v2/accuracies_summary.csv" in \
        problems[0] and "gives 0.982901 now" in problems[0]


def test_a_marker_whose_figure_left_its_paragraph_fails(tmp_path):
    root = _copy(tmp_path, "docs/findings.md", "Context Recall 0.983 for delta_net",
                 "Context Recall 0.98 for delta_net")  # the text rewritten, the marker left behind
    _, problems = Q.check(root, ("docs/findings.md",))
    assert len(problems) == 1 and "'0.983' is not in the paragraph the marker closes" in problems[0]


def test_a_scale_file_that_describes_another_scale_fails(tmp_path):
    root = _copy(tmp_path, "README.md", "<!-- figure 2: scale cpu tasks.noisy-in-context-recall.epochs -->",
                 "<!-- figure 2: scale cpu-v2 tasks.noisy-in-context-recall.epochs -->")
    _, problems = Q.check(root, ("README.md",))
    assert len(problems) == 1 and "quotes 2, but scale cpu-v2 tasks.noisy-in-context-recall.epochs gives 4" in \
        problems[0]


def test_markers_close_their_own_paragraph_and_bad_queries_name_the_marker(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("A first paragraph quotes 0.5.\n<!-- figure 0.5: scale smoke seeds.0 -->\n"
                   "The next quotes 1e-3, not 0.5.\n<!-- figure 1e-3: scale cpu lrs -->\n"
                   "<!-- figure 0.5: nowhere x -->\n\n"
                   "# figure 3: a heading, not a marker\n<!-- figure 3: csv missing.csv mean -->\n")
    found = Q.figures(doc)
    assert [(f.quoted, f.line) for f in found] == [("0.5", 2), ("1e-3", 4), ("0.5", 5), ("3", 8)]
    assert found[0].paragraph == "A first paragraph quotes 0.5." and found[2].paragraph == found[1].paragraph
    assert "unknown source 'nowhere' (sources: csv, agreement, curve, score, wall, scale)" in \
        Q.problems(found[2], REPO_ROOT)
    assert "missing.csv" in Q.problems(found[3], REPO_ROOT)  # the heading above holds the 3; the csv is not there
    assert Q.problems(found[1], REPO_ROOT) is None
    scale = tmp_path / "s.yaml"
    scale.write_text("lrs: [0.001]  # 1e-3\n# lr 1e-3 because ...\n# figure 1e-3: scale cpu lrs\n")
    (comment,) = Q.figures(scale)
    assert comment.paragraph == "# lr 1e-3 because ..."  # a scale file's paragraph: its comment block


def test_a_figure_holds_at_the_precision_it_is_written_at():
    assert Q.parse_quoted("0.983") == pytest.approx((0.983, 0.0005))
    assert Q.parse_quoted("93%") == pytest.approx((0.93, 0.005))
    assert Q.parse_quoted("9 of 10") == pytest.approx((0.9, 0.05))
    assert Q.parse_quoted("3,200") == (3200, 0.5)
    assert Q.parse_quoted("−0.062") == pytest.approx((-0.062, 0.0005))
    assert Q.parse_quoted("+0.051") == pytest.approx((0.051, 0.0005))
    assert Q.parse_quoted("3e-3") == pytest.approx((0.003, 0.0005))
    with pytest.raises(ValueError, match="'about a third': not a figure"):
        Q.parse_quoted("about a third")
    assert not math.isnan(Q.parse_quoted("0")[0])
