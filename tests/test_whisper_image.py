"""images/whisper: Whisper tiny.en's encoder through CTranslate2, in its own image, no torch.

Real speech: Debian's asterisk-core-sounds-en-wav (one professional speaker, 8 kHz), which
records some words twice under different prompt names; where that package is missing,
espeak-ng (installed by scripts/setup) says the same words in two voices instead.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from hear_runner.engines.base import ModelSource
from hear_runner.engines.docker import DockerEngine

ROOT = Path(__file__).parent.parent
FOLDER = ROOT / "images" / "whisper"
RATE = 16000
ASTERISK = Path("/usr/share/asterisk/sounds/en")
# Two takes of one word each (distinct recordings: waveform correlation 0.2-0.6;
# seconds.wav and queue-seconds.wav are one recording, so they are not used).
ASTERISK_TAKES = [
    ("goodbye", "vm-goodbye"),
    ("minutes", "vm-minutes"),
    ("for", "vm-for"),
    ("digits/at", "letters/at"),
    ("digits/oh", "letters/o"),
]
ASTERISK_OTHERS = ["digits/1", "digits/2", "digits/3", "digits/7", "digits/9", "hello", "letters/b"]
ESPEAK_WORDS = ["goodbye", "minutes", "four", "seven", "hello", "yesterday"]
ESPEAK_VOICES = ("en-us", "en-gb-x-rp+f3")


def _module():
    """hear_whisper.py imported from the image folder (its log-mel needs numpy only)."""
    spec = importlib.util.spec_from_file_location("hear_whisper", FOLDER / "hear_whisper.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _read(data: bytes | Path) -> np.ndarray:
    import soundfile as sf
    import soxr

    audio, rate = sf.read(data if isinstance(data, Path) else io.BytesIO(data), dtype="float32")
    return soxr.resample(audio, rate, RATE).astype(np.float32)


def _speech() -> tuple[str, list[tuple[str, np.ndarray]]]:
    """(source, [(word, audio)]): pairs of takes first (0-1, 2-3, ...), then other words."""
    if ASTERISK.is_dir():
        names = [n for pair in ASTERISK_TAKES for n in pair] + ASTERISK_OTHERS
        return "asterisk", [(n, _read(ASTERISK / f"{n}.wav")) for n in names]
    if shutil.which("espeak-ng"):

        def say(word: str, voice: str) -> np.ndarray:
            command = ["espeak-ng", "-v", voice, "--stdout", word]
            return _read(subprocess.run(command, capture_output=True, check=True).stdout)

        return "espeak-ng", [(f"{w}@{v}", say(w, v)) for w in ESPEAK_WORDS for v in ESPEAK_VOICES]
    pytest.skip("no speech: install asterisk-core-sounds-en-wav or espeak-ng")


@pytest.fixture
def whisper(whisper_image, no_leftover_containers):
    with DockerEngine().start(ModelSource(kind="image", ref=whisper_image)) as model:
        yield model.client


# -- log-mel, on the host -----------------------------------------------------------------


def test_mel_filterbank_equals_whispers_own():
    """reference/: mel_filters.npz from the openai-whisper 20250625 sdist (librosa-made)."""
    reference = np.load(FOLDER / "reference" / "openai-whisper-20250625-mel_filters.npz")
    np.testing.assert_allclose(_module().mel_filters(80), reference["mel_80"], rtol=0, atol=1e-7)


def test_log_mel_equals_whispers_torch_code():
    """openai-whisper's log_mel_spectrogram, line for line in torch, on real speech."""
    torch = pytest.importorskip("torch")
    hear_whisper = _module()
    _, speech = _speech()
    audio = np.zeros(30 * RATE, np.float32)
    audio[RATE : RATE + len(speech[0][1])] = speech[0][1]
    filters = np.load(FOLDER / "reference" / "openai-whisper-20250625-mel_filters.npz")["mel_80"]

    x = torch.from_numpy(audio)
    stft = torch.stft(x, 400, 160, window=torch.hann_window(400), return_complex=True)
    log_spec = torch.clamp(torch.from_numpy(filters) @ stft[..., :-1].abs() ** 2, min=1e-10)
    log_spec = log_spec.log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    expected = ((log_spec + 4.0) / 4.0).numpy()

    ours = hear_whisper.log_mel(audio)
    assert ours.shape == (80, 3000)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-4)


# -- the image ----------------------------------------------------------------------------


@pytest.mark.docker
def test_image_builds_with_contract_labels_and_no_torch(whisper_image, docker_client):
    labels = docker_client.images.get(whisper_image).labels
    assert labels["org.hear.contract"] == "1"
    assert labels["org.hear.model"] == "hear_whisper"
    assert labels["org.hear.sample_rate"] == "16000"
    assert labels["org.hear.scene_embedding_size"] == "384"
    assert labels["org.hear.timestamp_embedding_size"] == "384"
    assert json.loads(labels["org.hear.versions"])["numpy"].startswith("2.")
    probe = (
        "import importlib.util as u; print(u.find_spec('torch'), u.find_spec('ctranslate2').name)"
    )
    out = docker_client.containers.run(
        whisper_image, ["-c", probe], entrypoint="python3", network_mode="none", remove=True
    )
    assert out.decode().split() == ["None", "ctranslate2"]


@pytest.mark.docker
def test_real_speech_gives_regular_frames_inside_the_clip(whisper):
    _, speech = _speech()
    hello = whisper.hello
    assert (hello.sample_rate, hello.device) == (16000, "cpu")
    n_samples = RATE * 3 // 4  # 750 ms, 37.5 frames: the last centre, 740 ms, is inside
    audio = np.zeros((2, n_samples), np.float32)
    for row, (_, clip) in zip(audio, (speech[0], speech[2]), strict=True):
        row[: min(len(clip), n_samples)] = clip[:n_samples]
    embeddings, timestamps = whisper.timestamps(audio)
    frames = -(-n_samples // 320)  # one frame per 20 ms whose centre lies in the clip
    assert embeddings.shape == (2, frames, 384) and timestamps.shape == (2, frames)
    assert np.isfinite(embeddings).all() and embeddings.std() > 0.1
    np.testing.assert_array_equal(timestamps[0], np.arange(frames) * 20.0)
    assert timestamps[1, -1] < n_samples / RATE * 1000
    scene = whisper.scene(audio)
    assert scene.shape == (2, 384) and np.isfinite(scene).all()
    np.testing.assert_allclose(scene, embeddings.mean(axis=1), atol=1e-5)


@pytest.mark.docker
def test_35_seconds_span_two_windows_with_continuous_timestamps(whisper):
    """The same word at 2 s and at 32 s: the second window's frames line up 30 000 ms later."""
    _, speech = _speech()
    word = speech[0][1]
    audio = np.zeros((1, 35 * RATE), np.float32)
    audio[0, 2 * RATE : 2 * RATE + len(word)] = word
    audio[0, 32 * RATE : 32 * RATE + len(word)] = word
    embeddings, timestamps = whisper.timestamps(audio)
    assert embeddings.shape == (1, 1750, 384) and np.isfinite(embeddings).all()
    np.testing.assert_array_equal(timestamps[0], np.arange(1750) * 20.0)  # 29 980, 30 000, ...
    first = embeddings[0, 100 : 100 + len(word) // 320]
    second = embeddings[0, 1600 : 1600 + len(word) // 320]
    same = _cosine(first, second)
    assert same.min() > 0.999, same.min()
    shifted = embeddings[0, 1601 : 1601 + len(word) // 320]  # one frame off: clearly worse
    assert _cosine(first, shifted).mean() < 0.99  # 0.93 on the asterisk word


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity."""
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.mark.docker
def test_two_takes_of_a_word_are_nearest_neighbours(whisper):
    """Each take's nearest clip (cosine, scene embeddings) is the other take of its word."""
    source, speech = _speech()
    scenes = np.concatenate([whisper.scene(audio[None]) for _, audio in speech])
    again = whisper.scene(speech[3][1][None])
    np.testing.assert_allclose(again[0], scenes[3], rtol=0, atol=1e-5)  # deterministic
    unit = scenes / np.linalg.norm(scenes, axis=1, keepdims=True)
    distance = 1 - unit @ unit.T
    np.fill_diagonal(distance, np.inf)
    pairs = len(ASTERISK_TAKES) if source == "asterisk" else len(ESPEAK_WORDS)
    nearest = {speech[i][0]: speech[int(np.argmin(distance[i]))][0] for i in range(2 * pairs)}
    expected = {speech[i][0]: speech[i ^ 1][0] for i in range(2 * pairs)}
    assert nearest == expected, f"{source}: {nearest}"


# -- one environment for naive and whisper is impossible -----------------------------------


def _metadata_wheelhouse(docker_client, image: str, requirements: Path, into: Path) -> None:
    """Wheels holding only the dist-info of every locked package installed in ``image``.

    hear image build keeps its wheelhouse in a temporary folder and removes it; the images
    keep each package's METADATA and WHEEL, which is all pip's resolver reads.
    """
    names = [
        ln.split("==")[0].strip()
        for ln in requirements.read_text().splitlines()
        if ln.strip() and not ln.lstrip().startswith("#")
    ]
    script = (
        "import json, sys, importlib.metadata as m\n"
        "out = []\n"
        "for name in sys.argv[1:]:\n"
        "    d = m.distribution(name)\n"
        "    out.append([d.metadata['Name'], d.version, d.read_text('METADATA'),"
        " d.read_text('WHEEL')])\n"
        "print(json.dumps(out))\n"
    )
    from packaging.tags import sys_tags

    here = {str(t) for t in sys_tags()}
    raw = docker_client.containers.run(
        image, ["-c", script, *names], entrypoint="python3", network_mode="none", remove=True
    )
    for name, version, metadata, wheel in json.loads(raw):
        tags = [ln.split(":", 1)[1].strip() for ln in wheel.splitlines() if ln.startswith("Tag:")]
        tag = next((t for t in tags if t in here), tags[0])  # one this interpreter installs
        stem = f"{name.replace('-', '_').replace('.', '_')}-{version}"
        with zipfile.ZipFile(into / f"{stem}-{tag}.whl", "w") as whl:
            whl.writestr(f"{stem}.dist-info/METADATA", metadata)
            whl.writestr(f"{stem}.dist-info/WHEEL", wheel)
            whl.writestr(f"{stem}.dist-info/RECORD", "")


def _resolve(wheelhouse: Path, lines: list[str], tmp: Path) -> tuple[int, str]:
    """pip's resolver, offline, over ``lines``: (exit code, stdout + stderr)."""
    requirements = tmp / "union.txt"
    requirements.write_text("\n".join(lines) + "\n")
    command = [
        sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--no-index",
        "--disable-pip-version-check", "--find-links", str(wheelhouse), "-r", str(requirements),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}  # no other links
    env["PIP_CONFIG_FILE"] = os.devnull
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    return done.returncode, done.stdout + done.stderr


def _locked(folder: str) -> list[str]:
    text = (ROOT / "images" / folder / "requirements.txt").read_text()
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


@pytest.mark.docker
def test_naive_and_whisper_locks_cannot_share_an_environment(
    docker_client, naive_image, whisper_image, tmp_path
):
    wheelhouse = tmp_path / "wheels"
    wheelhouse.mkdir()
    for image, folder in ((naive_image, "naive"), (whisper_image, "whisper")):
        requirements = ROOT / "images" / folder / "requirements.txt"
        _metadata_wheelhouse(docker_client, image, requirements, wheelhouse)
    naive, whisper = _locked("naive"), _locked("whisper")
    assert "numpy==1.23.5" in naive and "numba==0.57.1" in naive
    whisper_numpy = next(ln for ln in whisper if ln.startswith("numpy=="))
    assert whisper_numpy.startswith("numpy==2.")

    # hearbaseline's own metadata pins the 2021 stack (numpy==1.19.2, numba==0.48,
    # tensorflow): images/naive installs --no-deps for that reason, and with it no lock that
    # includes it resolves at all. Leave it out to see what the rest of the locks declare.
    naive = [ln for ln in naive if not ln.startswith("hearbaseline==")]

    code, out = _resolve(wheelhouse, naive + whisper, tmp_path)
    assert code != 0 and "ResolutionImpossible" in out, out
    assert "numpy==1.23.5" in out and whisper_numpy in out

    # Not just two pins: without naive's numpy pin, numba's metadata still refuses numpy 2.
    code, out = _resolve(
        wheelhouse, [ln for ln in naive if ln != "numpy==1.23.5"] + whisper, tmp_path
    )
    assert code != 0 and "ResolutionImpossible" in out, out
    assert f"The user requested {whisper_numpy}" in out, out
    assert "numba 0.57.1 depends on numpy<1.25" in out, out

    # Control: everything resolves when whisper drops its numpy 2 pin (ctranslate2 4.8.5
    # declares plain "numpy"), so the failures above come from metadata, not missing wheels.
    code, out = _resolve(
        wheelhouse, naive + [ln for ln in whisper if ln != whisper_numpy], tmp_path
    )
    assert code == 0, out
    assert "numpy-1.23.5" in out and "ctranslate2-4.8.5" in out and "numba-0.57.1" in out
