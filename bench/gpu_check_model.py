"""A torch HEAR module with a real network, for bench/gpu-check: log-mel frames into convolutions.

Not a trained model: its weights are random (seeded, so runs are comparable). It exists so
that the GPU check can serve a torch module that does real work on CUDA (about 8 M
parameters, 0.8 GFLOP per second of audio) with nothing but torch installed: the device
machine has no network, and the repository's real models need packages it lacks.

1024-d timestamp embeddings every 20 ms at 16 kHz; the scene embedding is their mean.
"""

from __future__ import annotations

import math

import torch

SAMPLE_RATE = 16000
N_FFT = 512
HOP = 320  # 20 ms
N_MELS = 64
WIDTH = 1024


def _mel_matrix() -> torch.Tensor:
    """Triangular mel filters (n_mels, n_fft // 2 + 1): torchaudio is not needed."""

    def mel(hz: float) -> float:
        return 2595.0 * math.log10(1.0 + hz / 700.0)

    edges_mel = torch.linspace(mel(30.0), mel(SAMPLE_RATE / 2), N_MELS + 2)
    edges_hz = 700.0 * (10 ** (edges_mel / 2595.0) - 1.0)
    bins = torch.linspace(0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    lower, centre, upper = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]
    rising = (bins - lower) / (centre - lower)
    falling = (upper - bins) / (upper - centre)
    return torch.clamp(torch.minimum(rising, falling), min=0.0)


class ConvEmbedder(torch.nn.Module):
    sample_rate = SAMPLE_RATE
    scene_embedding_size = WIDTH
    timestamp_embedding_size = WIDTH

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("window", torch.hann_window(N_FFT))
        self.register_buffer("mel", _mel_matrix())
        self.net = torch.nn.Sequential(
            torch.nn.Conv1d(N_MELS, 512, 5, padding=2),
            torch.nn.GELU(),
            torch.nn.Conv1d(512, WIDTH, 3, padding=1),
            torch.nn.GELU(),
            torch.nn.Conv1d(WIDTH, WIDTH, 3, padding=1),
            torch.nn.GELU(),
            torch.nn.Conv1d(WIDTH, WIDTH, 3, padding=1),
        )

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """(n, samples) -> (n, frames, WIDTH)."""
        spec = (
            torch.stft(
                audio, N_FFT, HOP, window=self.window, center=True, return_complex=True
            ).abs()
            ** 2
        )
        logmel = torch.log(self.mel @ spec + 1e-6)
        return self.net(logmel).transpose(1, 2)


def load_model(model_file_path: str = "") -> ConvEmbedder:
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(0)
    model = ConvEmbedder()
    torch.random.set_rng_state(generator_state)
    return model.eval()


def get_timestamp_embeddings(
    audio: torch.Tensor, model: ConvEmbedder
) -> tuple[torch.Tensor, torch.Tensor]:
    embeddings = model(audio)
    times = torch.arange(embeddings.shape[1], device=audio.device) * (1000.0 * HOP / SAMPLE_RATE)
    return embeddings, times.expand(audio.shape[0], -1)


def get_scene_embeddings(audio: torch.Tensor, model: ConvEmbedder) -> torch.Tensor:
    return model(audio).mean(dim=1)
