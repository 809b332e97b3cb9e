"""A user's folder of clips and labels.csv, over real recordings: the freedesktop sound theme
(spoken channel names are "voice", the other sounds "chime")."""

from __future__ import annotations

from pathlib import Path

import pytest

SOUNDS = Path("/usr/share/sounds/freedesktop/stereo")
VOICES = sorted(SOUNDS.glob("audio-channel-*.oga"))  # a spoken channel name each
CHIMES = sorted(p for p in SOUNDS.glob("*.oga") if not p.name.startswith("audio-"))


def labels_csv(folder: Path, splits: tuple[str, ...] = ("train", "valid", "test")) -> Path:
    """``folder/labels.csv`` over links to six voices and six chimes, dealt into ``splits``."""
    if len(VOICES) < 6 or len(CHIMES) < 6:
        pytest.skip("no freedesktop sound theme")
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["file,label,split"]
    for label, paths in (("voice", VOICES[:6]), ("chime", CHIMES[:6])):
        for i, path in enumerate(paths):
            (folder / path.name).symlink_to(path)
            rows.append(f"{path.name},{label},{splits[i % len(splits)]}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return folder / "labels.csv"
