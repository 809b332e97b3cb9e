"""A static leaderboard site (`hear leaderboard --format site --output DIR`): an index with
the leaderboard (sortable where scripts run), a page per task and per model, written from
the records the site's folder keeps (``records/``) and its ``site.json``.

``folder`` is the site's layout (site.json, the records copied in), ``links`` where each
page lies, ``pages`` the shared shell and the index, ``task_pages`` and ``model_pages``
the other pages, ``assets`` the stylesheet and script, ``write`` puts them together,
``submissions`` adds a checked submission pack (`hear leaderboard add`).
"""

from hear_runner.site.folder import RECORDS, SITE_FILE, SUBMISSIONS, SiteInfo
from hear_runner.site.write import SiteWritten, write_site

__all__ = ["RECORDS", "SITE_FILE", "SUBMISSIONS", "SiteInfo", "SiteWritten", "write_site"]
