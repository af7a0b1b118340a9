"""The test harness's one setting: the suite trains into temporary stores from whatever tree it runs in, so a
working tree with uncommitted changes under lib/ must not stop it. The grid refuses such a tree unless allowed
(deltalab.grid.provenance: a record must name the code that trained it); the suite allows it with
DELTALAB_ALLOW_DIRTY=1, and the records it trains keep the diff beside them in their temporary store. A clean
clone (CI) is not refused either way. tests/test_provenance.py takes the permission away to test the refusal."""
import os

os.environ.setdefault("DELTALAB_ALLOW_DIRTY", "1")
