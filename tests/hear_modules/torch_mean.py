"""A minimal torch HEAR module: proves tensors go in and float32 numpy comes out."""

import torch


class Model(torch.nn.Module):
    sample_rate = 16000
    scene_embedding_size = 4
    timestamp_embedding_size = 4


def load_model(model_file_path=""):
    return Model()


def get_scene_embeddings(audio, model):
    assert isinstance(audio, torch.Tensor)
    stats = [audio.mean(1), audio.std(1), audio.abs().max(1).values, (audio**2).mean(1)]
    return torch.stack(stats, 1).double()  # float64 on purpose: the server converts


def get_timestamp_embeddings(audio, model):
    emb = get_scene_embeddings(audio, model)[:, None, :]
    return emb, torch.zeros(audio.shape[0], 1)
