"""mini_sound_mix: which desktop sounds a 2 s mix holds, in hear-preprocess layout.

Each clip is a quiet background with zero to three sounds of distinct classes (a
message, an error, a ringtone...) mixed in at random times, labelled with the classes it
holds (none is a valid answer). The recordings come from Debian's desktop sound themes;
the five folds draw from disjoint recordings (whole themes where a class has enough), so
cross-validation measures recognition of recordings never heard in training. Only classes
with at least five recordings are used, so that every fold has its own. Generation is
deterministic (same packages, same bytes) and takes seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hear_mini import layout, sound_themes
from hear_mini.shapes import SOUND_MIX

SHAPE = SOUND_MIX
CLASSES = ("complete", "dialog_error", "login_logout", "message", "phone_ring")
FOLDS = SHAPE.folds
NFOLDS = len(FOLDS)
SAMPLE_DURATION = SHAPE.sample_duration
MAX_SOUND_SECONDS = 1.5  # ringtones and jingles are cut, so that a sound fits a clip
# Bump when the audio processing changes, so complete folders from older code are rebuilt.
_GENERATOR_REVISION = 1
_SEED = 5151
_CLIPS_PER_FOLD = {"smoke": 40, "full": 200}
# How many classes a clip holds: 0, 1, 2 or 3.
_LABEL_COUNT_P = (0.1, 0.3, 0.35, 0.25)


folder_name = SHAPE.folder_name


def clip_counts(scale: str) -> dict[str, int]:
    """Clips per fold at ``scale``."""
    SHAPE.check_scale(scale)
    return dict.fromkeys(FOLDS, _CLIPS_PER_FOLD[scale])


def plan() -> dict[str, dict[str, list[sound_themes.Source]]]:
    """fold -> class -> the recordings it draws from (the same at every scale)."""
    return MIX.plan()


def _labels_per_clip(rng: np.random.Generator) -> int:
    return int(rng.choice(len(_LABEL_COUNT_P), p=_LABEL_COUNT_P))


MIX = sound_themes.Mix(
    SHAPE, CLASSES, dict.fromkeys(FOLDS, 1.0), _SEED, MAX_SOUND_SECONDS, _labels_per_clip
)


def _write_folder(folder: Path, scale: str, sample_rate: int, progress: bool) -> None:
    sources, placed = MIX.render(folder, scale, clip_counts(scale), sample_rate, progress)
    for fold, clips in placed.items():
        labels = {name: sorted(p.label for p in clip) for name, clip in clips.items()}
        layout.write_split(folder, fold, labels)
    layout.write_vocabulary(folder, CLASSES)
    layout.write_metadata(
        folder,
        SHAPE.metadata(
            scale,
            sample_rate,
            generator={
                **sound_themes.provenance(sources, placed),
                "revision": _GENERATOR_REVISION,
                "seed": _SEED,
                "max_sound_seconds": MAX_SOUND_SECONDS,
                "label_count_p": list(_LABEL_COUNT_P),
            },
        ),
    )


def prepare(
    out_dir: Path, scale: str = "smoke", sample_rate: int = 16000, progress: bool = True
) -> Path:
    """The task folder under ``out_dir`` (see TaskShape.prepare); a complete one is reused
    without reading any recording."""
    digest = MIX.params_hash(
        _GENERATOR_REVISION,
        clip_counts(scale),
        sample_rate,
        max_sound_seconds=MAX_SOUND_SECONDS,
        label_count_p=_LABEL_COUNT_P,
    )
    return SHAPE.prepare(
        out_dir, scale, digest, lambda folder: _write_folder(folder, scale, sample_rate, progress)
    )
