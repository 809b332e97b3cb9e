"""Built-in named models of hear-runner (``hear models list``), registered as a plugin."""
