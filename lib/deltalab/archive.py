"""Records carried between stores as one archive: ``python -m deltalab import-records ARCHIVE`` brings the records of
a ``tar.gz`` (paths relative to a store's root, ``<scale>/<variant>/<task>/<setting>/<run>.json``, as
scripts/gpu_check.sh writes them) into the store.

Every record is checked (``store.read_record``) and every target looked at before anything is written: a record the
store already holds byte for byte is left as it is; a run the store holds with another record is a conflict, and
the import then writes nothing and names each conflicting file. An archive member that is not a record (an absolute
path, ``..``, a link, a file not ending in .json) is refused the same way.
"""
from __future__ import annotations

import os
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

from .store import CorruptRecordError, Store, read_record


def import_archive(archive: str | os.PathLike, store: Store | None = None, dry_run: bool = False) -> dict[str, list[str]]:
    """Add the archive's records to ``store``; returns ``{"added": [...], "same": [...]}`` (paths relative to the
    store's root). Raises ValueError, writing nothing, on a conflict or a member that is not a record."""
    store = store or Store()
    archive = Path(archive)
    if not archive.is_file():
        raise ValueError(f"{archive}: no such archive")
    try:
        tar = tarfile.open(archive, "r:*")
    except tarfile.TarError as e:
        raise ValueError(f"{archive} is not a tar archive: {e}") from e
    added, same, conflicts, bad = [], [], [], []
    new: list[tuple[Path, bytes]] = []
    with tar, tempfile.TemporaryDirectory() as scratch:
        for member in tar.getmembers():
            name = PurePosixPath(member.name)
            if member.isdir():
                continue
            if not member.isfile() or name.is_absolute() or ".." in name.parts or name.suffix != ".json":
                bad.append(f"{member.name} (not a record file: only relative <scale>/…/<run>.json files are imported)")
                continue
            data = tar.extractfile(member).read()
            probe = Path(scratch, "probe.json")
            probe.write_bytes(data)
            try:
                read_record(probe)
            except CorruptRecordError as e:
                bad.append(f"{member.name} ({e.problem or e})")
                continue
            target = store.root / Path(*name.parts)
            if target.exists():
                (same if target.read_bytes() == data else conflicts).append(str(Path(*name.parts)))
            else:
                new.append((target, data))
    if bad or conflicts:
        lines = [f"  {c}: the store holds another record of this run (kept; nothing was imported)" for c in conflicts]
        lines += [f"  {b}" for b in bad]
        raise ValueError(f"{archive}: {len(conflicts)} conflicting record(s), {len(bad)} member(s) refused; nothing "
                         f"was written to {store.root}:\n" + "\n".join(lines))
    for target, data in new:
        added.append(str(target.relative_to(store.root)))
        if dry_run:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    return {"added": added, "same": same}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
