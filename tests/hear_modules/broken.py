"""A HEAR module with deliberate faults, for `hear validate`'s tests (named fakes).

These are fakes because the faults they stand for cannot be had on demand from a
real model: an embedding size that disagrees with the announced one, NaN in the
output, an irregular hop, timestamps past the end of the clip, outputs that change
from one call to the next, scene embeddings that depend on the rest of the batch, a
process that dies in every call.
A real model shows such bugs only by accident. The fault is chosen by a
``load_model`` option ``fault=``; without it the module is correct, and each output
fault breaks exactly one property, so a test can tell which check caught it.

Timestamp embeddings: 8 numbers describing each 50 ms of audio; scene embeddings:
the same numbers over the whole clip. Deterministic, per clip, 16 kHz.
"""

import os

import numpy as np

FAULTS = (
    "none",
    "wrong_size",  # scene embeddings of 7 numbers, announced as 8
    "nan",  # the first number of every embedding is NaN
    "irregular_hop",  # frames from the third on are 7 ms late
    "past_end",  # timestamps name frame ends: the last is past the clip's end
    "nondeterministic",  # unseeded noise added to every output
    "batch_dependent",  # scene embeddings centred on the batch mean (a batch-norm bug)
    "exit",  # the process dies in every call (exit code 7)
)


class Model:
    sample_rate = 16000
    scene_embedding_size = 8
    timestamp_embedding_size = 8

    def __init__(self, fault):
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; expected one of {FAULTS}")
        self.fault = fault
        self.noise = np.random.default_rng()  # unseeded on purpose: "nondeterministic"


def load_model(model_file_path="", fault="none"):
    return Model(fault)


def _features(audio):
    """(n, 8) numbers per clip: mean, spread, peak and five strided means."""
    return np.stack(
        [audio.mean(1), audio.std(1), np.abs(audio).max(1)]
        + [audio[:, i::8].mean(1) for i in range(5)],
        1,
    ).astype(np.float32)


def _finish(out, model):
    if model.fault == "exit":
        os._exit(7)
    if model.fault == "nan":
        out[..., 0] = np.nan
    if model.fault == "nondeterministic":
        out = out + model.noise.normal(0, 0.01, out.shape).astype(np.float32)
    return out


def get_scene_embeddings(audio, model):
    audio = np.asarray(audio, dtype=np.float32)
    out = _features(audio)
    if model.fault == "wrong_size":
        out = out[:, :7]
    if model.fault == "batch_dependent":
        out = out - out.mean(0, keepdims=True)
    return _finish(out, model)


def get_timestamp_embeddings(audio, model):
    audio = np.asarray(audio, dtype=np.float32)
    n, samples = audio.shape
    hop = model.sample_rate // 20
    starts = np.arange(0, samples, hop)
    frames = np.stack([_features(audio[:, s : s + hop]) for s in starts], 1)
    times_samples = starts + hop if model.fault == "past_end" else starts
    times = np.tile(times_samples * 1000.0 / model.sample_rate, (n, 1))
    if model.fault == "irregular_hop":
        times[:, 2:] += 7.0
    return _finish(frames, model), times
