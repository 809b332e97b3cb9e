"""A HEAR module with deliberate faults, chosen by a load_model option (named fakes).

These faults cannot be had on demand from a real model: a call that raises
once, an output of the wrong size, NaN output, a hang, a crash of the process.
Without a ``fault`` option it is a correct (trivial) model.
"""

import os
import time

import numpy as np


class Model:
    sample_rate = 16000
    scene_embedding_size = 8
    timestamp_embedding_size = 8

    def __init__(self, fault, delay):
        self.fault = fault
        self.delay = delay


def load_model(model_file_path="", fault="none", delay=0.05):
    """``delay``: the seconds each call of the "slow" fault sleeps."""
    return Model(fault, float(delay))


def _features(audio):
    audio = np.asarray(audio, dtype=np.float32)
    return np.stack(
        [audio.mean(1), audio.std(1), np.abs(audio).max(1)]
        + [audio[:, i::8].mean(1) for i in range(5)],
        1,
    )


def _log_call(audio):
    """With HEAR_TEST_CALL_LOG set, append each call's batch size and the server's process id:
    tests count model calls, and see which server made them."""
    path = os.environ.get("HEAR_TEST_CALL_LOG")
    if path:
        with open(path, "a") as log:
            log.write(f"{audio.shape[0]} {os.getpid()}\n")


def _check_length(audio, model):
    """The "oom_long" fault: no memory for more than 1.5 s of audio in one call."""
    if model.fault == "oom_long" and audio.shape[1] > 1.5 * model.sample_rate:
        raise MemoryError("clip too long for this model (deliberate fault)")


def get_scene_embeddings(audio, model):
    audio = np.asarray(audio)
    _log_call(audio)
    _check_length(audio, model)
    if model.fault == "raise_on_3" and audio.shape[0] == 3:
        raise ValueError("cannot embed a batch of three (deliberate fault)")
    if model.fault == "wrong_size":
        return np.zeros((audio.shape[0], 7), np.float32)
    if model.fault == "nan":
        out = _features(audio)
        out[0, 0] = np.nan
        return out
    if model.fault == "hang":
        time.sleep(3600)
    if model.fault == "oom" and audio.shape[0] > 2:
        raise MemoryError("batch too large for this model (deliberate fault)")
    if model.fault == "slow":
        time.sleep(model.delay)
    if model.fault == "exit":
        os._exit(7)
    return _features(audio).astype(np.float32)


def get_timestamp_embeddings(audio, model):
    audio = np.asarray(audio)
    _log_call(audio)
    _check_length(audio, model)
    n, samples = audio.shape
    hop = model.sample_rate // 20
    starts = np.arange(0, samples, hop)
    if model.fault == "slow":
        time.sleep(model.delay)
    frames = np.stack([_features(audio[:, s : s + hop]) for s in starts], 1)
    times = np.tile(starts * 1000.0 / model.sample_rate, (n, 1))
    if model.fault == "irregular_hop":
        times[:, 2:] += 7.0
    if model.fault == "nan":
        frames[0, 0, 0] = np.nan
    return frames.astype(np.float32), times
