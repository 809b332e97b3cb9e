"""Desktop sound-theme recordings from Debian main, grouped into classes and mixed into clips.

The mini sound tasks need real recorded sounds that any Debian machine can install, with
the same kind of event recorded differently several times: desktop sound themes are that.
Each theme records a "message", an "error" or a "camera shutter" in its own way, so the
splits put different themes (or at least different files) in train and test, and the test
split measures generalization to recordings never heard in training.

The class mapping below was made by hand from the file names, leaving out files that are
the same recording under another name (symlinks, and copies such as freedesktop's
message-new-instant.oga, which is Oxygen-Im-Message-In.ogg) so that no recording can sit
on both sides of a split.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import soundfile as sf
import soxr

from hear_mini import layout
from hear_mini.shapes import TaskShape

# Where the packages install their sounds; tests point it elsewhere.
SOUNDS_DIR = Path("/usr/share/sounds")

# theme -> (Debian package, folder under SOUNDS_DIR)
THEMES: dict[str, tuple[str, str]] = {
    "freedesktop": ("sound-theme-freedesktop", "freedesktop/stereo"),
    "oxygen": ("oxygen-sounds", ""),
    "deepin": ("deepin-sound-theme", "deepin/stereo"),
    "yaru": ("yaru-theme-sound", "Yaru/stereo"),
    "lomiri": ("lomiri-sounds", "lomiri"),
}

_LOMIRI_NOTIFICATIONS = (
    "Amsterdam", "Blip", "Ede", "Mallet", "Noti Karinding", "Rhodes", "Sintesis", "Sintonia",
    "Slick", "Soft delay", "Xylo",
)  # fmt: skip
# All but "Alarm clock" and "Alarm synth".
_LOMIRI_RINGTONES = (
    "Array mbira", "Bliss", "Call me", "Celestial", "Counterpoint", "Entropy", "Glass marimba",
    "Halo Pentatonic", "Harmonics", "Harp arp", "Koto chords", "Latin", "Mangoré", "Marimbach",
    "Melody piano", "Sam's Song", "Soul", "Sparkle", "Supreme", "Suru arpeggio", "Time not Lost",
    "Tongue drum", "UBports", "Ubuntu", "Wind chime", "Wooden Drive", "sakenointi",
)  # fmt: skip

# class -> theme -> files in the theme's folder.
CATALOGUE: dict[str, dict[str, tuple[str, ...]]] = {
    "camera_shutter": {
        "freedesktop": ("camera-shutter.oga",),  # screen-capture.oga links to it
        "deepin": ("camera-shutter.wav", "screen-capture.wav"),
        "lomiri": ("camera/click/camera_click.ogg",),
    },
    "complete": {
        "freedesktop": ("complete.oga",),
        "yaru": ("complete.oga",),
        "deepin": ("complete-copy.wav",),  # complete-print.wav is message.wav again
        "oxygen": ("Oxygen-K3B-Finish-Success.ogg", "Oxygen-Sys-App-Positive.ogg"),
    },
    "device_added": {
        "freedesktop": ("device-added.oga",),  # power-plug.oga links to it
        "yaru": ("device-added.oga",),  # power-plug.oga is a copy
        "deepin": ("device-added.wav", "power-plug.wav"),
    },
    "device_removed": {
        "freedesktop": ("device-removed.oga",),  # power-unplug.oga links to it
        "yaru": ("device-removed.oga",),  # power-unplug.oga is a copy
        "deepin": ("device-removed.wav", "power-unplug.wav"),
    },
    "dialog_error": {  # error and warning dialogs
        "freedesktop": ("dialog-warning.oga",),  # dialog-error.oga links to it
        "yaru": ("dialog-error.oga", "dialog-warning.oga"),
        "deepin": ("dialog-error.wav", "dialog-error-critical.wav", "dialog-error-serious.wav"),
        # Sys-App-Error-Serious(-Very) are near copies of Sys-App-Error
        "oxygen": (
            "Oxygen-Sys-App-Error.ogg",
            "Oxygen-Sys-App-Error-Critical.ogg",
            "Oxygen-Sys-Warning.ogg",
            "Oxygen-K3B-Finish-Error.ogg",
            "Oxygen-Im-Internal-Error.ogg",
        ),
    },
    "login_logout": {  # session start and end jingles
        "freedesktop": ("service-login.oga", "service-logout.oga"),
        "yaru": ("desktop-login.oga", "desktop-logoff.oga"),  # system-ready.oga is a copy
        "deepin": ("desktop-login.wav", "desktop-logout.wav", "system-shutdown.wav"),
        # Log-In-Short, Log-In-Long and Log-Out-Long are the same music as Log-In
        "oxygen": ("Oxygen-Sys-Log-In.ogg",),
    },
    "message": {  # new message and notification
        "freedesktop": ("message.oga",),  # message-new-instant.oga is Oxygen-Im-Message-In
        "yaru": ("message.oga", "message-new-instant.oga"),  # message-new-email is a copy
        "deepin": ("message.wav",),
        "oxygen": (
            "Oxygen-Im-Message-In.ogg",
            "Oxygen-Im-New-Mail.ogg",
            "Oxygen-Im-Sms.ogg",
            "Oxygen-Sys-App-Message.ogg",
            "Oxygen-Im-Highlight-Msg.ogg",
        ),
        "lomiri": tuple(f"notifications/{name}.ogg" for name in _LOMIRI_NOTIFICATIONS),
    },
    "phone_ring": {  # incoming call ringtones and the ringback tone
        "freedesktop": ("phone-incoming-call.oga", "phone-outgoing-calling.oga"),
        "oxygen": ("Oxygen-Im-Phone-Ring.ogg",),
        "lomiri": tuple(f"ringtones/{name}.ogg" for name in _LOMIRI_RINGTONES),
    },
    "trash_empty": {
        "freedesktop": ("trash-empty.oga",),
        "yaru": ("trash-empty.oga",),
        "deepin": ("trash-empty.wav",),
        "oxygen": ("Oxygen-Sys-Trash-Emptied.ogg",),
    },
}

# How a recording becomes a placed sound, and a clip's level: part of every task's hash.
TRIM_DB = 30.0  # the audible extent: 5 ms frames within this many dB of the loudest
FADE_S = 0.005  # raised-cosine fade at both ends, so a cut sound does not click
GAIN_DB = (-12.0, -2.0)  # a placed sound's peak, dBFS
NOISE_DB = (-60.0, -50.0)  # the background's RMS, dBFS: quiet, but never digital silence
PEAK_LIMIT = 0.95  # a clip whose overlapping sounds peak higher is scaled down whole
PROCESSING = {
    "trim_db": TRIM_DB,
    "fade_s": FADE_S,
    "gain_db": GAIN_DB,
    "noise_rms_db": NOISE_DB,
    "noise": "pink",
    "peak_limit": PEAK_LIMIT,
}

T = TypeVar("T")


@dataclass(frozen=True, order=True)
class Source:
    """One recording of a theme."""

    theme: str
    file: str

    @property
    def package(self) -> str:
        return THEMES[self.theme][0]

    @property
    def path(self) -> str:
        """Relative to SOUNDS_DIR, so metadata does not depend on the machine."""
        folder = THEMES[self.theme][1]
        return f"{folder}/{self.file}" if folder else self.file


@dataclass(frozen=True)
class Placed:
    """A sound placed in a clip: its class, recording, and extent in samples."""

    label: str
    source: Source
    offset: int
    length: int

    def milliseconds(self, sample_rate: int) -> tuple[float, float]:
        return (
            round(1000 * self.offset / sample_rate, 3),
            round(1000 * (self.offset + self.length) / sample_rate, 3),
        )


def sources(label: str) -> list[Source]:
    return sorted(Source(theme, f) for theme, files in CATALOGUE[label].items() for f in files)


def missing_packages(classes: Sequence[str]) -> list[str]:
    """The packages whose recordings of ``classes`` are not installed."""
    return sorted(
        {s.package for c in classes for s in sources(c) if not (SOUNDS_DIR / s.path).is_file()}
    )


def check_installed(classes: Sequence[str], task_name: str) -> None:
    missing = missing_packages(classes)
    if missing:
        raise RuntimeError(
            f"sound themes not found in {SOUNDS_DIR}: install them with "
            f"'apt-get install {' '.join(missing)}' to prepare {task_name}"
        )


def package_versions(packages: Sequence[str]) -> dict[str, str | None]:
    """Installed Debian versions, for provenance (None where dpkg does not know one)."""
    versions: dict[str, str | None] = dict.fromkeys(packages)
    try:
        done = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Package}\t${Version}\n", *packages],
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        return versions
    for line in done.stdout.splitlines():
        package, _, version = line.partition("\t")
        if package in versions and version:
            versions[package] = version
    return versions


def assign(items: Sequence[Source], weights: Mapping[str, float]) -> dict[str, list[Source]]:
    """Split recordings among groups (splits or folds), each group getting at least one.

    Whole themes go to one group where there are enough themes; otherwise the largest
    theme is halved until there are enough parts. Parts go largest first to the group
    furthest below its weight, so train (the heaviest) gets the theme with most files.
    """
    by_theme: dict[str, list[Source]] = {}
    for item in sorted(items):
        by_theme.setdefault(item.theme, []).append(item)

    def order(part: list[Source]) -> tuple[int, Source]:
        return (-len(part), part[0])

    parts = sorted(by_theme.values(), key=order)
    while len(parts) < len(weights):
        if len(parts[0]) < 2:
            raise ValueError(f"{len(items)} recordings cannot fill {len(weights)} groups")
        half = (len(parts[0]) + 1) // 2
        parts = sorted([*parts[1:], parts[0][:half], parts[0][half:]], key=order)
    groups = list(weights)
    assigned: dict[str, list[Source]] = {g: [] for g in groups}
    for part in parts:
        group = min(groups, key=lambda g: (len(assigned[g]) / weights[g], groups.index(g)))
        assigned[group] += part
    return {g: sorted(assigned[g]) for g in groups}


def assignment(
    classes: Sequence[str], weights: Mapping[str, float]
) -> dict[str, dict[str, list[Source]]]:
    """group -> class -> recordings, every class's recordings split by ``assign``."""
    per_class = {c: assign(sources(c), weights) for c in classes}
    return {g: {c: per_class[c][g] for c in classes} for g in weights}


def load(source: Source, sample_rate: int, max_seconds: float) -> np.ndarray:
    """A recording, mono at ``sample_rate``, trimmed to its audible extent and at most
    ``max_seconds`` long, faded at both ends and peak-normalized to 1."""
    with sf.SoundFile(SOUNDS_DIR / source.path) as f:
        # Long ringtones: decode only what can be used, allowing for leading silence.
        frames = min(f.frames, int((max_seconds + 2.0) * f.samplerate))
        audio = f.read(frames, dtype="float32", always_2d=True).mean(axis=1)
        rate = f.samplerate
    if rate != sample_rate:
        audio = soxr.resample(audio, rate, sample_rate, "HQ")
    hop = max(1, sample_rate // 200)
    rms = np.sqrt(np.mean(audio[: len(audio) // hop * hop].reshape(-1, hop) ** 2.0, axis=1))
    floor = float(rms.max(initial=0.0)) * 10 ** (-TRIM_DB / 20)
    loud = np.flatnonzero(rms >= floor) if floor > 0 else np.array([], dtype=int)
    if not len(loud):
        raise RuntimeError(f"{SOUNDS_DIR / source.path} is silent")
    audio = audio[loud[0] * hop : (loud[-1] + 1) * hop][: round(max_seconds * sample_rate)]
    # A cut may end in a pause between rings: end at the last loud frame that is left.
    last = int(np.flatnonzero(rms[loud[0] : loud[0] + len(audio) // hop] >= floor)[-1])
    audio = audio[: (last + 1) * hop].astype(np.float64)
    fade = min(len(audio) // 2, round(FADE_S * sample_rate))
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, fade, endpoint=False))
    audio[:fade] *= ramp
    audio[len(audio) - fade :] *= ramp[::-1]
    return (audio / np.abs(audio).max()).astype(np.float32)


def load_all(
    items: Sequence[Source], sample_rate: int, max_seconds: float, advance: Callable[[], Any]
) -> dict[Source, np.ndarray]:
    """``load`` for every item; libsndfile and soxr release the GIL, so threads help."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = {s: pool.submit(load, s, sample_rate, max_seconds) for s in items}
        loaded = {}
        for item, future in futures.items():
            loaded[item] = future.result()
            advance()
    return loaded


class Deck(Generic[T]):
    """Deals items in shuffled rounds, so that every item comes up about equally often."""

    def __init__(self, items: Sequence[T], rng: np.random.Generator) -> None:
        self._items = list(items)
        self._rng = rng
        self._cards: list[T] = []

    def draw(self, k: int) -> list[T]:
        """``k`` distinct items (k at most the number of items)."""
        drawn: list[T] = []
        while len(drawn) < k:
            fresh = [i for i, card in enumerate(self._cards) if card not in drawn]
            if not fresh:
                self._cards += [self._items[i] for i in self._rng.permutation(len(self._items))]
                continue
            drawn.append(self._cards.pop(fresh[0]))
        return drawn


def pink_noise(n: int, rms: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of 1/f noise at ``rms``: a room-like background, not hiss."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum[1:] /= np.sqrt(np.arange(1, len(spectrum)))
    spectrum[0] = 0.0
    noise = np.fft.irfft(spectrum, n)
    return noise * (rms / np.sqrt(np.mean(noise**2)))


def render_splits(
    folder: Path,
    *,
    sample_rate: int,
    clip_seconds: float,
    max_sound_seconds: float,
    plan: Mapping[str, Mapping[str, Sequence[Source]]],
    counts: Mapping[str, int],
    seed: int,
    labels_per_clip: Callable[[np.random.Generator], int],
    description: str,
    progress: bool,
) -> dict[str, dict[str, list[Placed]]]:
    """Write ``<rate>/<split>/<split>_NNNN.wav`` clips and return what each holds.

    Each clip is pink noise plus ``labels_per_clip(rng)`` sounds of distinct classes, each
    a recording of its class from this split's part of ``plan``, at a random time and
    gain. Classes and recordings are dealt from decks so all of them are used evenly.
    """
    from rich.progress import Progress

    n = round(clip_seconds * sample_rate)
    needed = sorted({s for split in plan.values() for items in split.values() for s in items})
    placed: dict[str, dict[str, list[Placed]]] = {}
    with Progress(disable=not progress) as bar:
        task = bar.add_task(description, total=len(needed) + sum(counts.values()))
        sounds = load_all(needed, sample_rate, max_sound_seconds, lambda: bar.advance(task))
        for index, (split, per_class) in enumerate(plan.items()):
            (folder / str(sample_rate) / split).mkdir(parents=True)
            rng = np.random.default_rng([seed, index])
            classes = Deck(sorted(per_class), rng)
            recordings = {c: Deck(items, rng) for c, items in sorted(per_class.items())}
            placed[split] = {}
            for i in range(counts[split]):
                clip = []
                for label in classes.draw(labels_per_clip(rng)):
                    source = recordings[label].draw(1)[0]
                    length = len(sounds[source])
                    offset = int(rng.integers(0, n - length + 1))
                    clip.append(Placed(label, source, offset, length))
                gains = 10 ** (rng.uniform(*GAIN_DB, size=len(clip)) / 20)
                audio = pink_noise(n, 10 ** (rng.uniform(*NOISE_DB) / 20), rng)
                for p, gain in zip(clip, gains, strict=True):
                    audio[p.offset : p.offset + p.length] += gain * sounds[p.source]
                audio *= min(1.0, PEAK_LIMIT / np.abs(audio).max())
                name = f"{split}_{i:04d}.wav"
                layout.write_wav(folder / str(sample_rate) / split / name, audio, sample_rate)
                placed[split][name] = sorted(clip, key=lambda p: (p.offset, p.label))
                bar.advance(task)
    return placed


def plan_params(plan: Mapping[str, Mapping[str, Sequence[Source]]]) -> dict[str, Any]:
    """The plan as JSON: group -> class -> recording paths."""
    return {g: {c: [s.path for s in items] for c, items in p.items()} for g, p in plan.items()}


def provenance(
    plan: Mapping[str, Mapping[str, Sequence[Source]]],
    placed: Mapping[str, Mapping[str, list[Placed]]],
) -> dict[str, Any]:
    """Metadata saying where every sound came from: packages, classes, which recordings
    each split (or fold) drew from, and each clip's recording per class."""
    classes = sorted({c for p in plan.values() for c in p})
    used = sorted({s for p in plan.values() for items in p.values() for s in items})
    themes = sorted({s.theme for s in used}, key=list(THEMES).index)
    return {
        "tool": "Debian desktop sound themes",
        "packages": package_versions([THEMES[t][0] for t in themes]),
        "sounds_dir": "/usr/share/sounds",
        "themes": {t: THEMES[t][0] for t in themes},
        "classes": {c: [s.path for s in sources(c)] for c in classes},
        "sources": plan_params(plan),
        "processing": PROCESSING,
        "clip_sources": {
            split: {name: {p.label: p.source.path for p in clip} for name, clip in clips.items()}
            for split, clips in placed.items()
        },
    }


@dataclass(frozen=True)
class Mix:
    """How a sound-theme task mixes its clips: the recipe both sound tasks share, each
    adding only how it labels what was placed."""

    shape: TaskShape
    classes: tuple[str, ...]
    weights: Mapping[str, float]  # split -> its share of each class's recordings
    seed: int
    max_sound_seconds: float
    labels_per_clip: Callable[[np.random.Generator], int]

    def plan(self) -> dict[str, dict[str, list[Source]]]:
        """split -> class -> the recordings it draws from (the same at every scale)."""
        return assignment(self.classes, self.weights)

    def params_hash(
        self, revision: int, counts: Mapping[str, int], sample_rate: int, **params: Any
    ) -> str:
        """What the audio depends on, hashed without reading the recordings (so a complete
        folder is reused where the sound themes are not installed)."""
        return layout.params_hash(
            self.shape.hashed(
                revision,
                sample_rate,
                plan=plan_params(self.plan()),
                counts=counts,
                seed=self.seed,
                processing=PROCESSING,
                **params,
            )
        )

    def render(
        self, folder: Path, scale: str, counts: Mapping[str, int], sample_rate: int, progress: bool
    ) -> tuple[dict[str, dict[str, list[Source]]], dict[str, dict[str, list[Placed]]]]:
        """The plan and what each clip of each split holds, after writing the clips."""
        check_installed(self.classes, self.shape.name)
        sources = self.plan()
        placed = render_splits(
            folder,
            sample_rate=sample_rate,
            clip_seconds=self.shape.sample_duration,
            max_sound_seconds=self.max_sound_seconds,
            plan=sources,
            counts=counts,
            seed=self.seed,
            labels_per_clip=self.labels_per_clip,
            description=self.shape.progress_label(scale),
            progress=progress,
        )
        return sources, placed
