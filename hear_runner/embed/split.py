"""What embedding a split yields: the data the pipeline computes and the store reads back.

Its own module so the pipeline and the store both depend on it, and not on each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class SplitEmbeddings:
    split: str
    files: list[str]
    embeddings: np.ndarray  # scene: (n_clips, D); event: (n_frames, D)
    audio_seconds: float
    seconds: float
    # Event tasks: the clip index and time (ms) of every frame row.
    frame_clip: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    frame_ms: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    cached: bool = False  # read back from the store, not computed in this run
    batch_size: int = 0  # the batch size the split ended with (smaller after out-of-memory)
    wall_seconds: float = 0.0  # wall time this run spent embedding the split (0 when cached)
    clips_embedded: int = 0  # clips this run sent to the model (the others were in the store)
    clips_from_store: int = 0  # clips whose embeddings came from the store
    clips_changed: int = 0  # stored clips embedded again because their audio file changed
