"""`hear report`: one self-contained HTML page of a results folder (tables and inline SVG plots).

Records are read by hear_runner.results.reader, as every command reads them; ``data`` is
what the page shows of one, ``board`` the leaderboard table (hear_runner.results.leaderboard's,
as it is), ``svg`` draws primitives, ``charts`` the plots, ``html`` the page.
"""

from hear_runner.report.html import Report, write_report

__all__ = ["Report", "write_report"]
