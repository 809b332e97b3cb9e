"""The site's one stylesheet and one small script, written beside the pages.

Every text colour is chosen for a contrast of at least 4.5:1 (WCAG AA) against the
background it sits on: secondary text and published (grey) rows are #595959 on at most
#f0f0f0. The script only adds sorting: the table is complete without it. Sort buttons
are real buttons (Tab reaches them, Enter and Space press them); a column sorts first
in its header's ``data-first`` direction (best first), again in reverse; cells without
a value stay last either way, ties keep the table's order (the aggregate's).
"""

from __future__ import annotations

CSS = """
:root { color-scheme: light; }
body { font: 15px/1.5 system-ui, -apple-system, 'Segoe UI', sans-serif; color: #1d1f23;
       background: #fff; margin: 0 auto; padding: 20px 28px 56px; max-width: 1400px; }
header nav a { margin-right: 16px; }
h1 { font-size: 26px; margin: 12px 0 4px; }
h2 { font-size: 19px; margin: 32px 0 8px; padding-bottom: 4px; border-bottom: 1px solid #ccd2d9; }
a { color: #0b5cad; }
.meta, .note { color: #595959; font-size: 13px; max-width: 960px; }
.warn { color: #8a4b00; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 8px 0; font-size: 13px; }
th, td { border: 1px solid #ccd2d9; padding: 4px 8px; vertical-align: top; text-align: left; }
thead th { background: #eef1f4; font-weight: 600; }
tbody th { font-weight: 600; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.missing { color: #595959; text-align: center; }
.sub { display: block; color: #595959; font-size: 11px; font-weight: normal; }
td.best { background: #e6f2e6; }
tbody tr:not(.published) th { border-left: 4px solid #0072b2; }
tbody tr:not(.published) th a { font-weight: 700; }
tr.published th, tr.published td { color: #595959; background: #f0f0f0; font-weight: normal; }
tr.published td.best { background: #e6f2e6; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 8px 0; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
code { font-size: 12px; background: #f3f5f7; color: #1d1f23; padding: 0 3px; border-radius: 3px;
       overflow-wrap: anywhere; }
figure.plot { margin: 12px 0; padding: 10px 12px; width: fit-content; max-width: 100%;
              border: 1px solid #dde1e6; border-radius: 6px; background: #fff; overflow-x: auto; }
figure.plot figcaption { font-weight: 600; margin-bottom: 6px; }
svg { display: block; }
button.sort { font: inherit; font-size: 11px; margin-left: 6px; padding: 0 6px; color: #1d1f23;
              background: #fff; border: 1px solid #6b7580; border-radius: 3px; cursor: pointer; }
button.sort:focus-visible { outline: 3px solid #0b5cad; outline-offset: 1px; }
th[aria-sort] button.sort { background: #dbe9f7; }
.hidden-label { position: absolute; width: 1px; height: 1px; overflow: hidden;
                clip: rect(0 0 0 0); white-space: nowrap; }
footer { margin-top: 40px; color: #595959; font-size: 12px; }
"""

JS = """'use strict';
// Sorting of the leaderboard table: a button in each header (added here, so that a page
// read without scripts shows no control that does nothing).
(() => {
  const table = document.getElementById('leaderboard');
  if (!table || !table.tHead || !table.tBodies.length) return;
  const heads = [...table.tHead.rows[0].cells];
  const body = table.tBodies[0];
  const original = [...body.rows];
  const numeric = th => th.dataset.task !== undefined || th.cellIndex === heads.length - 1;
  const value = (row, index, isNumber) => {
    const cell = row.cells[index];
    if (!cell || cell.classList.contains('missing')) return null;
    if (isNumber) {
      const raw = cell.dataset.score ?? cell.dataset.aggregate;
      const n = raw === undefined ? NaN : Number(raw);
      return Number.isFinite(n) ? n : null;
    }
    const text = cell.textContent.trim();
    return text === '' ? null : text;
  };
  const sort = (th, direction) => {
    const index = th.cellIndex, isNumber = numeric(th), sign = direction === 'ascending' ? 1 : -1;
    const keyed = original.map((row, position) =>
      ({row, position, v: value(row, index, isNumber)}));
    keyed.sort((a, b) => {
      if (a.v === null || b.v === null) {
        return (a.v === null) - (b.v === null) || a.position - b.position;
      }
      if (a.v < b.v) return -sign;
      if (a.v > b.v) return sign;
      return a.position - b.position;
    });
    for (const {row} of keyed) body.appendChild(row);
    for (const other of heads) other.removeAttribute('aria-sort');
    th.setAttribute('aria-sort', direction);
  };
  for (const th of heads) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'sort';
    const name = (th.firstChild && th.firstChild.textContent || '').trim();
    button.append('sort');
    const label = document.createElement('span');
    label.className = 'hidden-label';
    label.textContent = ' by ' + name;
    button.append(label);
    button.addEventListener('click', () => {
      const first = th.dataset.first || 'descending';
      const again = first === 'ascending' ? 'descending' : 'ascending';
      const now = th.getAttribute('aria-sort');
      sort(th, now === first && button.dataset.pressed ? again : first);
      for (const b of table.tHead.querySelectorAll('button.sort')) delete b.dataset.pressed;
      button.dataset.pressed = '1';
    });
    th.appendChild(button);
  }
})();
"""
