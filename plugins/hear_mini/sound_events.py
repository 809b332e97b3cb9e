"""mini_sound_events: desktop event sounds to detect in time, in hear-preprocess layout.

Each 4 s clip is a quiet background with one to three sounds of distinct classes (a
camera shutter, a message, an error...) at random times, possibly overlapping, labelled
with their audible extent in milliseconds. The recordings come from Debian's desktop
sound themes, and train, valid and test use different recordings (different themes
where a class has enough), so the task measures onset/offset detection on sounds never
heard in training. Generation is deterministic (same packages, same bytes) and takes
seconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hear_mini import layout, sound_themes
from hear_mini.shapes import SOUND_EVENTS

SHAPE = SOUND_EVENTS
CLASSES = (
    "camera_shutter", "complete", "device_added", "device_removed",
    "dialog_error", "message", "phone_ring", "trash_empty",
)  # fmt: skip
SPLITS = ("train", "valid", "test")
SAMPLE_DURATION = SHAPE.sample_duration
MAX_EVENT_SECONDS = 2.0  # ringtones and jingles are cut: events stay shorter than a clip
EVALUATION_PARAMS = {
    "event_postprocessing_grid": {"median_filter_ms": [150, 250], "min_duration": [60, 125]}
}
# Bump when the audio processing changes, so complete folders from older code are rebuilt.
_GENERATOR_REVISION = 1
_SEED = 4242
_CLIPS = {"smoke": (120, 40, 40), "full": (600, 200, 200)}
# train is weighted up, so the class's largest theme trains and the others test.
_WEIGHTS = {"train": 3.0, "valid": 1.0, "test": 1.0}


folder_name = SHAPE.folder_name


def clip_counts(scale: str) -> dict[str, int]:
    """Clips per split at ``scale``."""
    SHAPE.check_scale(scale)
    return dict(zip(SPLITS, _CLIPS[scale], strict=True))


def plan() -> dict[str, dict[str, list[sound_themes.Source]]]:
    """split -> class -> the recordings it draws from (the same at every scale)."""
    return MIX.plan()


def _events_per_clip(rng: np.random.Generator) -> int:
    return int(rng.integers(1, 4))


MIX = sound_themes.Mix(SHAPE, CLASSES, _WEIGHTS, _SEED, MAX_EVENT_SECONDS, _events_per_clip)


def _write_folder(folder: Path, scale: str, sample_rate: int, progress: bool) -> None:
    sources, placed = MIX.render(folder, scale, clip_counts(scale), sample_rate, progress)
    for split, clips in placed.items():
        events: dict[str, list[dict[str, Any]]] = {}
        for name, clip in clips.items():
            spans = (p.milliseconds(sample_rate) for p in clip)
            events[name] = [
                {"label": p.label, "start": start, "end": end}
                for p, (start, end) in zip(clip, spans, strict=True)
            ]
        layout.write_split(folder, split, events)
    layout.write_vocabulary(folder, CLASSES)
    layout.write_metadata(
        folder,
        SHAPE.metadata(
            scale,
            sample_rate,
            evaluation_params=EVALUATION_PARAMS,
            generator={
                **sound_themes.provenance(sources, placed),
                "revision": _GENERATOR_REVISION,
                "seed": _SEED,
                "max_event_seconds": MAX_EVENT_SECONDS,
                "events_per_clip": [1, 3],
            },
        ),
    )


def prepare(
    out_dir: Path, scale: str = "smoke", sample_rate: int = 16000, progress: bool = True
) -> Path:
    """The task folder under ``out_dir`` (see TaskShape.prepare); a complete one is reused
    without reading any recording."""
    digest = MIX.params_hash(
        _GENERATOR_REVISION, clip_counts(scale), sample_rate, max_event_seconds=MAX_EVENT_SECONDS
    )
    return SHAPE.prepare(
        out_dir, scale, digest, lambda folder: _write_folder(folder, scale, sample_rate, progress)
    )
