"""Built-in plugins of hear-runner, registered through the ``hear`` entry-point group."""
