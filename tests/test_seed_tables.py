"""The seed documents' tables as the repository carries them: ``params/seed_tables/<document stem>.csv``.

Always: each CSV has its document's rows (registered short names), the six task columns, fractions in [0, 1], and a
header comment naming its document. Where the seed documents themselves are at hand (``$DELTALAB_SEEDS``, a folder
holding the five ``<stem>.txt``), each document's table is parsed here and must equal its CSV exactly: this is the
only place the documents are read, and the analysis never needs them.
"""
import os
import re
from pathlib import Path

import pandas as pd
import pytest

from deltalab.analysis import accuracies
from deltalab import tasks as T
from deltalab.analysis import study
from deltalab.analysis.names import display_name
from deltalab.variants import VARIANTS

ROWS = {  # document → rows in its table (chronological order: 003, 004, 001, 002, 000)
    "003_9826a221f536bfd8.txt": 8,
    "004_477b876134327047.txt": 15,
    "001_9e165c1cc01685c8.txt": 22,
    "002_017d9b558cdb9257.txt": 24,
    "000_6ad374f8df70496e.txt": 25,
}
SEEDS = os.environ.get("DELTALAB_SEEDS")


def read_document_table(path: Path) -> pd.DataFrame:
    """A seed document's table (a pandas repr at the top, followed by prose) as printed: the label column and the
    six task columns as strings, exactly as the document writes them."""
    lines = path.read_text().splitlines()
    row = re.compile(r"^\s*\d+\s+(\S+)" + r"\s+(-?\d+\.\d+)" * len(T.COLUMNS))  # prose may follow the last number
    assert "Compress" in lines[0], f"{path}: no accuracies table at the top"
    rows = []
    for line in lines[1:]:
        m = row.match(line)
        if not m:
            break
        rows.append(m.groups())
    assert rows, f"{path}: no accuracies table at the top"
    return pd.DataFrame([r[1:] for r in rows], index=[r[0] for r in rows], columns=T.COLUMNS)


def test_the_repository_has_one_table_per_document():
    assert study.seed_documents() == sorted(ROWS)


@pytest.mark.parametrize("document", list(ROWS))
def test_seed_table_csv(document):
    path = study.seed_table_path(document)
    assert path == study.SEED_TABLES_DIR / f"{Path(document).stem}.csv"
    header = [line for line in path.read_text().splitlines() if line.startswith("#")]
    assert header and f"seed document {document}" in header[0], header
    table = study.seed_table(document)
    assert table.shape == (ROWS[document], len(T.COLUMNS))
    assert list(table.columns) == T.COLUMNS
    assert table.index.is_unique and set(table.index) <= set(VARIANTS), sorted(set(table.index) - set(VARIANTS))
    assert {"delta_net", "gated_delta_net"} <= set(table.index)
    assert table.notna().all().all() and ((table >= 0) & (table <= 1)).all().all()


def test_a_malformed_table_is_refused(tmp_path):
    bad = tmp_path / "x.csv"
    bad.write_text("# source: nothing\nvariant,Compress,Memorize\ndelta_net,0.1,0.2\n")
    with pytest.raises(ValueError, match="expected a variant column and the columns"):
        accuracies.read_seed_table(bad)


@pytest.mark.skipif(not SEEDS, reason="the seed documents are not at hand: set DELTALAB_SEEDS to the folder that "
                                      "holds them (<stem>.txt) to check the transcription")
@pytest.mark.parametrize("document", list(ROWS))
def test_each_csv_transcribes_its_document_exactly(document):
    source = read_document_table(Path(SEEDS) / document)
    expected = source.rename(index=display_name)
    csv = pd.read_csv(study.seed_table_path(document), comment="#", index_col=0, dtype=str)
    csv.index.name = None
    pd.testing.assert_frame_equal(csv, expected)  # the same rows, in order, and the same printed figures
