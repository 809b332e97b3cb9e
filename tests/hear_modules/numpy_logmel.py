"""A numpy-only HEAR-API module: log band energies, 64 bands every 25 ms at 16 kHz.

Real, deterministic and fast; it shows that a module needing neither torch nor
TensorFlow runs under the contract unchanged.
"""

import itertools

import numpy as np

FRAME = 400
HOP = 400  # 25 ms at 16 kHz
N_BANDS = 64


class Model:
    sample_rate = 16000
    scene_embedding_size = 2 * N_BANDS
    timestamp_embedding_size = N_BANDS

    def __init__(self):
        edges = np.geomspace(2, FRAME // 2 + 1, N_BANDS + 1).astype(int)
        self.bands = [(a, max(b, a + 1)) for a, b in itertools.pairwise(edges)]
        self.window = np.hanning(FRAME).astype(np.float32)


def load_model(model_file_path=""):
    return Model()


def get_timestamp_embeddings(audio, model):
    audio = np.asarray(audio, dtype=np.float32)
    n, samples = audio.shape
    padded = np.pad(audio, ((0, 0), (FRAME // 2, FRAME // 2)))
    starts = np.arange(0, samples + 1, HOP)
    frames = np.stack([padded[:, s : s + FRAME] for s in starts], axis=1) * model.window
    power = np.abs(np.fft.rfft(frames, axis=-1)) ** 2
    bands = np.stack([power[..., a:b].sum(-1) for a, b in model.bands], axis=-1)
    embeddings = np.log(bands + 1e-6).astype(np.float32)
    timestamps = np.tile(starts * 1000.0 / model.sample_rate, (n, 1))
    return embeddings, timestamps


def get_scene_embeddings(audio, model):
    embeddings, _ = get_timestamp_embeddings(audio, model)
    return np.concatenate([embeddings.mean(1), embeddings.std(1)], axis=-1)
