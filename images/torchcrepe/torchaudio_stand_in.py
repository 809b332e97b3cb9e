"""A stand-in for torchaudio, installed as ``torchaudio.py``: NOT the real package.

torchcrepe 0.0.24 does ``import torchaudio`` at import time (torchcrepe/load.py), but only
its file helpers (``torchcrepe.load.audio``, ``*_from_file``) ever call it. HEAR hands the
model decoded audio, so nothing here needs torchaudio; and the torchaudio build that pip
picks beside torch 2.13.0 fails to load. This module lets ``import torchcrepe`` succeed and
makes any real use of torchaudio fail loudly instead of silently.
"""

__version__ = "0.0.0+hear.stand.in"
HEAR_STAND_IN = True


def load(*args, **kwargs):
    raise NotImplementedError(
        "torchaudio here is a stand-in (see its docstring): pass decoded audio, not files"
    )


def __getattr__(name):
    raise AttributeError(
        f"torchaudio.{name}: torchaudio here is a stand-in that only makes "
        "'import torchcrepe' work (see its docstring)"
    )
