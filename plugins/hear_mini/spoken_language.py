"""mini_spoken_language: which of ten languages a short phrase of numbers is spoken in.

espeak-ng reads the same numerals in each language's own words ("3 7 1" is "drei sieben
eins" in German), so only the language differs between classes, not the content. Voice
variants (the speakers) are disjoint between splits, as in HEAR's VoxLingua task the test
speakers are unseen. Deterministic: phrases come from a seeded generator.
"""

from __future__ import annotations

import random
from pathlib import Path

from hear_mini import layout
from hear_mini.shapes import SPOKEN_LANGUAGE
from hear_mini.spoken_digits import Setting, check_espeak, render

SHAPE = SPOKEN_LANGUAGE
LANGUAGES = ("de", "en", "es", "it", "nl", "pl", "pt", "ru", "sv", "tr")
SAMPLE_DURATION = SHAPE.sample_duration
_SEED = 20211
_GENERATOR_REVISION = 1
# Speakers (espeak-ng variants) per split; each is in exactly one split.
_VARIANTS = {
    "train": ("m1", "f1", "m2", "f2", "m3", "f3"),
    "valid": ("m4", "f4"),
    "test": ("m5", "f5"),
}
# Phrases per (language, variant): smoke 2, full 8.
_PHRASES = {"smoke": 2, "full": 8}


folder_name = SHAPE.folder_name


def plan(scale: str) -> dict[str, list[tuple[Setting, str]]]:
    """Per split: (voice setting, phrase) for every clip."""
    SHAPE.check_scale(scale)
    rng = random.Random(_SEED)
    clips: dict[str, list[tuple[Setting, str]]] = {}
    for split, variants in _VARIANTS.items():
        clips[split] = []
        for language in LANGUAGES:
            for i, variant in enumerate(variants):
                speed, pitch = (150 + 20 * (i % 3), 40 + 10 * (i % 3))
                for _ in range(_PHRASES[scale]):
                    phrase = " ".join(str(rng.randrange(10)) for _ in range(3))
                    clips[split].append((Setting(language, variant, speed, pitch), phrase))
    return clips


def _file_name(setting: Setting, phrase: str) -> str:
    return setting.file_name(phrase.replace(" ", ""))


def prepare(
    out_dir: Path, scale: str = "smoke", sample_rate: int = 16000, progress: bool = True
) -> Path:
    """Write the task folder under ``out_dir`` and return it; reuse it if already complete."""
    clips = plan(scale)
    digest = layout.params_hash(
        SHAPE.hashed(
            _GENERATOR_REVISION,
            sample_rate,
            clips={s: [[c.__dict__, p] for c, p in items] for s, items in clips.items()},
        )
    )

    def write(folder: Path) -> None:
        settings = {s: [c for c, _ in items] for s, items in clips.items()}
        version = check_espeak(settings, SHAPE.name)
        for split in clips:
            (folder / str(sample_rate) / split).mkdir(parents=True)

        def render_clip(split: str, setting: Setting, phrase: str) -> None:
            audio = render(setting, phrase, sample_rate, SAMPLE_DURATION)
            path = folder / str(sample_rate) / split / _file_name(setting, phrase)
            layout.write_wav(path, audio, sample_rate)

        jobs = [
            (split, setting, phrase) for split, items in clips.items() for setting, phrase in items
        ]
        layout.run_jobs(render_clip, jobs, SHAPE.progress_label(scale), progress)
        for split, items in clips.items():
            labels = {_file_name(setting, phrase): [setting.language] for setting, phrase in items}
            layout.write_split(folder, split, labels)
        layout.write_vocabulary(folder, LANGUAGES)
        layout.write_metadata(
            folder,
            SHAPE.metadata(
                scale,
                sample_rate,
                generator={
                    "tool": "espeak-ng",
                    "espeak_ng_version": version,
                    "revision": _GENERATOR_REVISION,
                    "speakers": {s: list(v) for s, v in _VARIANTS.items()},
                    "languages": list(LANGUAGES),
                },
            ),
        )

    return SHAPE.prepare(out_dir, scale, digest, write)
