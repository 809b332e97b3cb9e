"""Building model images offline: staged contexts, wheelhouses, a local Debian base."""
