"""Example hear model plugin: ``hear run --model my_model``.

The image folder ships inside this package (``image/``: a Dockerfile FROM hear/base and a
numpy-only HEAR module), found from this file's location, so it works once pip-installed:
the first run builds ``hear-example/my-model:latest`` from it.
"""

from pathlib import Path

from hear_runner.api import ModelSpec, hookimpl

IMAGE_FOLDER = Path(__file__).resolve().parent / "image"


@hookimpl
def hear_register_models(register):
    register(
        ModelSpec(
            name="my_model",
            image="hear-example/my-model:latest",
            build=IMAGE_FOLDER,
            sample_rate=16000,
            description="Example: log band energies (numpy), 32-d every 20 ms",
        )
    )
