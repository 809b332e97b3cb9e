"""Which packages the wheel holds: pyproject.toml's ``find`` cannot also map a package to
another folder, and one must be: the repository's top-level ``images/`` (beside the
Dockerfile that copies it) ships as ``hear_runner/images``, so ``pip install hear-runner``
is enough to build hear/base and the named models (`hear image build base`).

Everything else about the project is declared in pyproject.toml.
"""

from setuptools import find_namespace_packages, setup

PLUGINS = ("hear_core", "hear_mini", "hear_2021", "hear_models")  # built-ins, in plugins/


def _found(where: str, *names: str) -> list[str]:
    return find_namespace_packages(where, include=[*names, *(f"{n}.*" for n in names)])


setup(
    packages=[*_found(".", "hear_runner"), *_found("plugins", *PLUGINS), "hear_runner.images"],
    package_dir={"hear_runner.images": "images", **{name: f"plugins/{name}" for name in PLUGINS}},
    package_data={
        "hear_runner": ["py.typed"],
        "hear_runner.plan": ["throughputs.json"],  # the measured throughputs a plan assumes
        "hear_2021.reference": ["*.json"],  # the published leaderboard (--reference hear2021)
        "hear_runner.images": ["**/*"],
    },
    exclude_package_data={"hear_runner.images": ["**/__pycache__/*", "**/wheels/*"]},
    # Only what package_data names: the image folders are data, not Python subpackages.
    include_package_data=False,
)
