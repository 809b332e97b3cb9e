"""A deliberately broken HEAR module (a named fault): load_model raises."""


def load_model(model_file_path=""):
    raise RuntimeError("weights file is corrupt (deliberate fault for tests)")


def get_scene_embeddings(audio, model):
    raise AssertionError("never reached")


def get_timestamp_embeddings(audio, model):
    raise AssertionError("never reached")
