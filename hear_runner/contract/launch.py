"""Start the contract server whatever the image's environment says (``hear/base``'s entrypoint).

``python3 /opt/hear/hear_contract/launch.py`` finds ``hear_contract`` beside this file, not
through ``PYTHONPATH``: an image that sets ``ENV PYTHONPATH=/app`` still starts. The working
directory comes first on ``sys.path``, as with ``python -m``, so a module in the image's
``WORKDIR`` is importable; the image's ``PYTHONPATH`` entries follow, as before.

Standard library only; runs as a script (no package context), so no relative imports.
"""

import os
import sys


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))  # .../hear_contract
    root = os.path.dirname(here)  # the folder holding hear_contract/
    # A script's folder is sys.path[0]: it would make wire.py and server.py top-level modules.
    if sys.path and os.path.abspath(sys.path[0] or ".") == here:
        del sys.path[0]
    sys.path[:0] = [os.getcwd(), root]
    from hear_contract.server import main as serve

    return serve()


if __name__ == "__main__":
    sys.exit(main())
