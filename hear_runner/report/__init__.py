"""`hear report`: one self-contained HTML page of a results folder (tables and inline SVG plots).

``data`` reads the records, ``svg`` draws primitives, ``charts`` the plots, ``html`` the page.
"""

from hear_runner.report.html import Report, write_report

__all__ = ["Report", "write_report"]
