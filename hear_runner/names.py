"""One rule for turning free text (model names, image refs, labels) into a safe name part.

Records on disk (``results/<slug>/<task>.json``), report file names and container names
are all built with :func:`slug`; the callers differ only in which punctuation they keep
and what stands in for the rest, so those are parameters, not copies.
"""

from __future__ import annotations


def slug(
    text: str,
    *,
    keep: str = "-_.",
    fill: str = "_",
    strip: bool = True,
    default: str = "x",
) -> str:
    """``text`` with every character that is not alphanumeric or in ``keep`` replaced by ``fill``.

    With ``strip``, leading and trailing ``fill`` characters go; an empty result is ``default``.
    """
    safe = "".join(c if c.isalnum() or c in keep else fill for c in text)
    if strip:
        safe = safe.strip(fill)
    return safe or default
