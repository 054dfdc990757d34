"""The run's static HTML report, ``RUN/report.html``: what ran, how it went, and where everything is.

Written after every ``astroflow run``/``demo`` (and by ``astroflow report RUN``) from the ledger
alone (:func:`astroflow.status.collect`) plus the pipeline's own section (``Pipeline.report``).
The page says when the run ran and with what (configuration, its hash, code version, hosts);
per step the state, the items, the time on the clock and the CPU time, each labelled for what it
is; every failed item with its error, its file and its unit's log; links to each step's log,
dataset parts and products; each step's documentation rendered from its docstring.

The page works offline and from any copy of the run directory: every link is relative, figures
are PNG files beside it (``RUN/report_files/``, drawn with matplotlib's Agg renderer), and the
only script, inline, makes every table sortable (click a column header) and long ones
filterable.  Pipelines build their sections with the helpers here: :func:`table_html`,
:func:`link`, :func:`figure` (``new_figure`` + ``figure`` writes the PNG and returns its HTML),
:func:`axis_label` (a column's description and unit from its Parquet metadata) and
:func:`rst_html` (docstring markup to HTML).
"""

from __future__ import annotations

import html
import inspect
import json
import re
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from astroflow import config as run_config
from astroflow import rundir
from astroflow.atomic import atomic_path, write_text
from astroflow.registry import get_pipeline
from astroflow.status import collect

REPORT = "report.html"
FIGURES = "report_files"  # the report's figures, beside the page
MAX_LINKS = 1000  # products, parts, logs or failed items listed per step (the page says how many more)
EXOFOP_TESS = "https://exofop.ipac.caltech.edu/tess/target.php?id={tic}"


class Markup(str):
    """A string that is already HTML."""


def escape(value) -> str:
    """HTML for a cell or a text: ``Markup`` as it is, anything else escaped."""
    return value if isinstance(value, Markup) else html.escape("" if value is None else str(value))


def link(href: str, text=None, title: str | None = None) -> Markup:
    """A link; one to another site (``http...``) opens in a new tab."""
    external = href.startswith(("http://", "https://"))
    attrs = f' title="{html.escape(title)}"' if title else ""
    if external:
        attrs += ' target="_blank" rel="noopener"'
    return Markup(f'<a href="{html.escape(href)}"{attrs}>{escape(href if text is None else text)}</a>')


_NUMBER = re.compile(r"^[-+]?(\d[\d,]*\.?\d*|\.\d+)(e[-+]?\d+)?(/\d+)?%?$", re.I)


def _cell(value) -> str:
    if isinstance(value, bool) or value is None:
        return f"<td>{escape('-' if value is None else value)}</td>"
    if isinstance(value, (int, float)) or (type(value) is str and _NUMBER.match(value)):
        return f'<td class="num">{escape(value)}</td>'
    return f"<td>{escape(value)}</td>"


def table_html(headers: Sequence[str], rows: Iterable[Sequence], classes: Sequence[str] | None = None,
               caption: str | None = None) -> Markup:
    """A sortable table (the page's script sorts on a click of a header); cells are escaped
    unless they are ``Markup``, numbers are right-aligned, ``classes`` are per-row CSS classes
    (``ok``, ``bad``, ``warn``)."""
    out = ['<div class="scroll"><table>']
    if caption:
        out.append(f"<caption>{escape(caption)}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in headers) + "</tr></thead><tbody>")
    for i, row in enumerate(rows):
        cls = f' class="{classes[i]}"' if classes and classes[i] else ""
        out.append(f"<tr{cls}>" + "".join(_cell(c) for c in row) + "</tr>")
    return Markup("\n".join(out + ["</tbody></table></div>"]))


# --- figures --------------------------------------------------------------------------------------
def new_figure(width: float = 6.4, height: float = 4.2):
    """A matplotlib Figure drawn by the Agg renderer (no display, no pyplot state)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def figure(run_dir: str | Path, name: str, fig, caption: str, alt: str | None = None, wide: bool = False) -> Markup:
    """Write ``fig`` as ``RUN/report_files/NAME.png`` (atomically) and return its HTML: the image,
    a link to the full-size file and the caption (``wide``: the figure may take the page's width)."""
    rel = f"{FIGURES}/{name}.png"
    with atomic_path(Path(run_dir) / rel) as tmp:
        fig.savefig(tmp, format="png")
    return Markup(f'<figure{" class=wide" if wide else ""}><a href="{rel}"><img src="{rel}" '
                  f'alt="{html.escape(alt or caption)}"></a><figcaption>{escape(caption)}</figcaption></figure>')


def figures(*items: str) -> Markup:
    """Figures side by side (wrapping on narrow screens)."""
    return Markup('<div class="figures">' + "".join(items) + "</div>")


def axis_label(table, column: str, fallback: str | None = None) -> str:
    """``description [unit]`` of a column from its Arrow field metadata (``astroflow.units``)."""
    from astroflow.units import description_of, unit_of

    field = table.schema.field(column)
    unit = unit_of(field)
    text = fallback or description_of(field) or column
    return f"{text} [{unit}]" if unit else text


# --- docstrings -----------------------------------------------------------------------------------
_INLINE = re.compile(
    r"``(?P<lit>.+?)``"
    r"|:(?P<role>[\w:.+-]+):`(?P<target>[^`]+)`"
    r"|`(?P<title>[^`<]+?)\s*<(?P<url>[^`>]+)>`__?"
    r"|`(?P<interp>[^`]+)`"
    r"|\*\*(?P<strong>[^*\s](?:[^*]*[^*\s])?)\*\*"
    r"|(?<![\w*`])\*(?P<em>[^*\s](?:[^*]*[^*\s])?)\*(?![\w*])"
    r"|(?P<bare>https?://[^\s<>()]+[^\s<>().,;:])"
)
_BULLET = re.compile(r"^(?P<indent> *)(?P<marker>[-*+]|\d+[.)]|#\.)\s+(?P<text>.*)$")


def _inline(text: str) -> str:
    out, pos = [], 0
    for m in _INLINE.finditer(text):
        out.append(html.escape(text[pos:m.start()]))
        pos = m.end()
        if m["lit"] is not None:
            out.append(f"<code>{html.escape(m['lit'])}</code>")
        elif m["role"] is not None:
            target = m["target"]
            titled = re.match(r"(?s)(.+?)\s*<([^>]+)>$", target)
            if titled:
                target = titled[1]
            elif target.startswith("~"):
                target = target[1:].rsplit(".", 1)[-1]
            out.append(f'<code class="xref">{html.escape(target.lstrip("!"))}</code>')
        elif m["url"] is not None:
            out.append(link(m["url"], m["title"]))
        elif m["interp"] is not None:
            out.append(f"<code>{html.escape(m['interp'])}</code>")
        elif m["strong"] is not None:
            out.append(f"<strong>{html.escape(m['strong'])}</strong>")
        elif m["em"] is not None:
            out.append(f"<em>{html.escape(m['em'])}</em>")
        else:
            out.append(link(m["bare"]))
    out.append(html.escape(text[pos:]))
    return "".join(out)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _list_tag(m: re.Match) -> str:
    return "ul" if m["marker"] in "-*+" else "ol"


def rst_html(doc: str | None) -> Markup:
    """The reStructuredText of the project's docstrings as HTML: paragraphs, bullet and numbered
    lists, literal blocks (after ``::`` or indented), and the inline markup (````literal````,
    ``:role:`target``` with ``~``, ```text <url>`_``, ``*emphasis*``, ``**strong**``, bare URLs)."""
    if not doc or not doc.strip():
        return Markup("")
    lines = inspect.cleandoc(doc).expandtabs(4).splitlines()
    out: list[str] = []
    i, literal_next = 0, False
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        base = _indent(line)
        if literal_next or (base > 0 and not _BULLET.match(line)):
            block = []
            while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) >= base):
                block.append(lines[i][base:])
                i += 1
            while block and not block[-1].strip():
                block.pop()
            out.append(f"<pre>{html.escape(chr(10).join(block))}</pre>")
            literal_next = False
            continue
        bullet = _BULLET.match(line)
        if bullet:
            tag = _list_tag(bullet)

            def same_list(k: int) -> bool:
                m = _BULLET.match(lines[k])
                return bool(m) and _indent(lines[k]) == base and _list_tag(m) == tag

            items: list[list[str]] = []
            while i < len(lines):
                if same_list(i):
                    items.append([_BULLET.match(lines[i])["text"]])
                elif lines[i].strip() and _indent(lines[i]) > base and items:
                    items[-1].append(lines[i].strip())
                elif not lines[i].strip() and i + 1 < len(lines) and (_indent(lines[i + 1]) > base or same_list(i + 1)):
                    pass  # a blank line between items, or inside one
                else:
                    break
                i += 1
            out.append(f"<{tag}>" + "".join(f"<li>{_inline(' '.join(it))}</li>" for it in items) + f"</{tag}>")
            continue
        para = []
        while i < len(lines) and lines[i].strip() and _indent(lines[i]) == base and not (
                para and _BULLET.match(lines[i])):
            para.append(lines[i].strip())
            i += 1
        text = " ".join(para)
        if text.endswith("::"):
            literal_next = True
            text = text[:-2].rstrip() + (":" if not text[:-2].endswith(" ") else "")
        if text:
            out.append(f"<p>{_inline(text)}</p>")
    return Markup("\n".join(out))


# --- the page -------------------------------------------------------------------------------------
STATE_CLASS = {"done": "ok", "done with problems": "warn", "failed": "bad", "partial": "warn", "planned": "warn",
               "stale": "warn", "not started": "muted", "disabled": "muted"}

STYLE = """
:root{--fg:#1d2330;--muted:#667085;--line:#e3e7ee;--bg:#f6f8fb;--card:#fff;--accent:#2f5bd3;
--ok:#1f8a4c;--okbg:#e7f6ec;--bad:#b42318;--badbg:#fdecea;--warn:#a15c00;--warnbg:#fff4e0}
*{box-sizing:border-box}
body{font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--fg);
background:var(--bg);margin:0}
header.top{background:#16213e;color:#fff;padding:18px 32px}
header.top h1{margin:0;font-size:22px;font-weight:600}
header.top .sub{color:#c4cce0;margin-top:4px}
header.top code{background:rgba(255,255,255,.12);color:#fff}
nav{background:#fff;border-bottom:1px solid var(--line);padding:8px 32px;position:sticky;top:0;z-index:5}
nav a{margin-right:18px;color:var(--accent);text-decoration:none;font-weight:500}
main{padding:8px 32px 48px;max-width:1400px}
h2{font-size:18px;margin:28px 0 8px;padding-bottom:4px;border-bottom:2px solid var(--line)}
h3{font-size:15px;margin:18px 0 6px}
a{color:var(--accent)}
code,pre{font-family:"DejaVu Sans Mono",ui-monospace,Menlo,Consolas,monospace;font-size:12.5px}
code{background:#eef1f6;padding:1px 4px;border-radius:3px}
pre{background:#eef1f6;padding:8px 10px;border-radius:4px;overflow-x:auto}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 14px;min-width:150px}
.card .k{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:17px;font-weight:600;margin-top:2px;word-break:break-all}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;white-space:nowrap}
.badge.ok{background:var(--okbg);color:var(--ok)}.badge.bad{background:var(--badbg);color:var(--bad)}
.badge.warn{background:var(--warnbg);color:var(--warn)}.badge.muted{background:#eef1f6;color:var(--muted)}
.scroll{overflow-x:auto;margin:8px 0 14px}
table{border-collapse:collapse;background:var(--card);border:1px solid var(--line);font-size:13px}
caption{caption-side:top;text-align:left;color:var(--muted);padding:4px 0}
th,td{padding:4px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
thead th{background:#f0f3f8;vertical-align:bottom;min-width:3em}
table[data-sortable] th{cursor:pointer;user-select:none}
table[data-sortable] th:after{content:"\\00a0\\2195";color:#b0b8c6;font-size:11px}
th[aria-sort=ascending]:after{content:"\\00a0\\25B2"!important;color:var(--accent)!important}
th[aria-sort=descending]:after{content:"\\00a0\\25BC"!important;color:var(--accent)!important}
tbody tr:nth-child(even){background:#fafbfd}
tbody tr:hover{background:#eef3ff}
tr.ok td{background:var(--okbg)}tr.bad td{background:var(--badbg)}tr.warn td{background:var(--warnbg)}
input.filter{margin:4px 0;padding:4px 8px;border:1px solid var(--line);border-radius:4px;min-width:260px}
details{background:var(--card);border:1px solid var(--line);border-radius:6px;margin:6px 0;padding:4px 12px}
details>summary{cursor:pointer;padding:4px 0;font-weight:500}
details[open]>summary{border-bottom:1px solid var(--line);margin-bottom:6px}
.doc p{margin:6px 0}.doc ul,.doc ol{margin:4px 0 4px 18px;padding:0}
.muted{color:var(--muted)}.small{font-size:12px;max-width:340px}
.figures{display:flex;flex-wrap:wrap;gap:16px;margin:10px 0}
figure{margin:0;background:var(--card);border:1px solid var(--line);border-radius:8px;padding:8px;
flex:1 1 520px;max-width:680px}figure.wide{max-width:1100px;flex-basis:900px}
figure img{max-width:100%;height:auto;display:block}
.broken-note{color:var(--bad);background:var(--badbg);padding:6px}
figcaption{color:var(--muted);font-size:12.5px;margin-top:4px}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:6px 0}
dl.kv dt{color:var(--muted)}dl.kv dd{margin:0}
footer{color:var(--muted);padding:16px 32px;border-top:1px solid var(--line)}
"""

SCRIPT = """
(function(){
function key(cell){
  if(!cell) return [1,''];
  var v=cell.getAttribute('data-sort'); if(v===null) v=cell.textContent.trim();
  var t=v.replace(/[,\\s]/g,'');
  if(/^[-+]?(\\d+\\.?\\d*|\\.\\d+)(e[-+]?\\d+)?%?$/i.test(t)) return [0,parseFloat(t)];
  return [1,v.toLowerCase()];
}
function sortBy(table,head,i,th){
  var rows=[].filter.call(table.rows,function(r){return r!==head&&r.parentNode.tagName!=='THEAD';});
  var asc=th.getAttribute('aria-sort')!=='ascending';
  [].forEach.call(head.cells,function(c){c.removeAttribute('aria-sort');});
  th.setAttribute('aria-sort',asc?'ascending':'descending');
  rows.map(function(r,k){return [key(r.cells[i]),k,r];}).sort(function(a,b){
    var x=a[0],y=b[0],c=(x[0]-y[0])||(x[1]<y[1]?-1:(x[1]>y[1]?1:0));
    return (asc?c:-c)||(a[1]-b[1]);
  }).forEach(function(e){e[2].parentNode.appendChild(e[2]);});
}
[].forEach.call(document.querySelectorAll('table'),function(table){
  var head=table.tHead?table.tHead.rows[0]:table.rows[0];
  if(!head||!head.cells.length||[].some.call(head.cells,function(c){return c.tagName!=='TH';})) return;
  [].forEach.call(head.cells,function(th,i){
    th.tabIndex=0; th.title='sort by this column';
    var go=function(){sortBy(table,head,i,th);};
    th.addEventListener('click',go);
    th.addEventListener('keydown',function(e){if(e.key==='Enter'||e.key===' '){e.preventDefault();go();}});
  });
  table.setAttribute('data-sortable','ready');
  if(table.rows.length>30){
    var box=document.createElement('input');
    box.type='search'; box.className='filter'; box.placeholder='filter these '+(table.rows.length-1)+' rows';
    box.addEventListener('input',function(){
      var q=box.value.toLowerCase();
      [].forEach.call(table.rows,function(r){
        if(r!==head&&r.parentNode.tagName!=='THEAD') r.style.display=r.textContent.toLowerCase().indexOf(q)<0?'none':'';
      });
    });
    var at=table.parentNode.classList.contains('scroll')?table.parentNode:table;
    at.parentNode.insertBefore(box,at);
  }
});
window.addEventListener('load',function(){
  [].forEach.call(document.images,function(img){
    img.setAttribute('data-size',img.naturalWidth+'x'+img.naturalHeight);
    if(!img.naturalWidth){
      img.classList.add('broken');
      var note=document.createElement('div'); note.className='broken-note';
      note.textContent='figure file missing or unreadable: '+img.getAttribute('src');
      img.parentNode.insertBefore(note,img);
    }
  });
  document.body.setAttribute('data-images','checked');
});
function openTarget(){
  var el=location.hash&&document.getElementById(decodeURIComponent(location.hash.slice(1)));
  if(el&&el.tagName==='DETAILS'){el.open=true;el.scrollIntoView();}
}
window.addEventListener('hashchange',openTarget); openTarget();
})();
"""


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t)) if t else "-"


def _seconds(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s:.2f}" if s < 10 else f"{s:.1f}" if s < 1000 else f"{s:,.0f}"


def _badge(state: str) -> Markup:
    return Markup(f'<span class="badge {STATE_CLASS.get(state, "muted")}">{html.escape(state)}</span>')


def _cards(pairs: Sequence[tuple[str, object]]) -> Markup:
    return Markup('<div class="cards">' + "".join(
        f'<div class="card"><div class="k">{escape(k)}</div><div class="v">{escape(v)}</div></div>' for k, v in pairs)
        + "</div>")


def _kv(pairs: Iterable[tuple[str, object]]) -> Markup:
    return Markup('<dl class="kv">' + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in pairs) + "</dl>")


def _value(v) -> Markup:
    """A configuration value as it is written in JSON (strings quoted, null for None)."""
    return Markup(f"<code>{html.escape(json.dumps(v, default=str))}</code>")


def file_link(run_dir: Path, path: str | None) -> Markup | str:
    """A file named in a record: a relative link when it lies in the run directory (and exists),
    else its path as code (raw data are read in place and are not linked)."""
    if not path:
        return "-"
    p = Path(path)
    try:
        rel = (p if p.is_absolute() else run_dir / p).resolve().relative_to(run_dir.resolve())
    except (ValueError, OSError):
        return Markup(f"<code>{html.escape(str(path))}</code>")
    if (run_dir / rel).exists():
        return link(rel.as_posix(), rel.as_posix())
    return Markup(f"<code>{html.escape(rel.as_posix())}</code> (missing)")


def _step_files(run_dir: Path, step: str) -> dict:
    """The logs, dataset parts and products of a step's active commits (paths relative to the run)."""
    ledger = rundir.Ledger(run_dir / step)
    logs, parts, products = [], [], []
    for m in ledger.active:
        if m.get("log"):
            logs.append((m["unit"], f"{step}/{rundir.LOGS}/{m['log']}", m))
        if m.get("part"):
            parts.append((m["unit"], f"{step}/{m['part']}", m.get("rows", 0)))
        products += m.get("files", ())
    schema = None
    if ledger.parts:
        import pyarrow.parquet as pq

        try:
            schema = pq.read_schema(ledger.parts[0].path)
        except OSError:
            schema = None
    return {"logs": logs, "parts": parts, "products": sorted(set(products)), "schema": schema}


def _run_span(status: dict) -> tuple[float | None, float | None]:
    starts = [s["started"] for s in status["steps"] if s.get("started")]
    ends = [s["finished"] for s in status["steps"] if s.get("finished")]
    return (min(starts) if starts else None), (max(ends) if ends else None)


def _header(run_dir: Path, cfg, status: dict, pipeline) -> list[str]:
    started, finished = _run_span(status)
    totals = {k: sum(s[k] for s in status["steps"]) for k in ("items_ok", "items_failed", "items_skipped", "cpu_s",
                                                               "units")}
    active = [m for s in status["steps"] if s["units"] for m in rundir.Ledger(run_dir / s["step"]).active]
    versions = sorted({m["code_version"] for m in active if m.get("code_version")})
    hosts = sorted({m["host"] for m in active if m.get("host")})
    state = "complete" if status["complete"] else "incomplete"
    return [
        f'<header class="top"><h1>astroflow · {html.escape(cfg.pipeline)} · {html.escape(run_dir.name)} '
        f'<span class="badge {"ok" if status["complete"] else "bad"}">{state}</span></h1>',
        f'<div class="sub">{escape(pipeline.doc)}<br>run directory <code>{html.escape(str(run_dir))}</code></div>'
        "</header>",
        '<nav><a href="#summary">Summary</a><a href="#steps">Steps</a><a href="#failures">Failures</a>'
        f'<a href="#pipeline">{html.escape(cfg.pipeline.upper())}</a><a href="#details">Step details</a>'
        '<a href="#config">Configuration</a></nav><main>',
        '<h2 id="summary">Summary</h2>',
        _cards([("ran from", _when(started)), ("to", _when(finished)),
                ("first start to last commit", f"{_seconds(finished - started) if started and finished else '-'} s"),
                ("CPU time", f"{_seconds(totals['cpu_s'])} s"),
                ("items ok / failed / skipped", f"{totals['items_ok']} / {totals['items_failed']} / "
                                                f"{totals['items_skipped']}"),
                ("code version", cfg.code_version), ("config hash", cfg.config_hash())]),
        _kv([("units committed", totals["units"]),
             ("code of the units", ", ".join(versions) or "-"),
             ("hosts", ", ".join(hosts) or "-"),
             ("workers", cfg.run.workers),
             ("report written", _when(time.time())),
             ("configuration", Markup(f'{link(run_config.RUN_FILE)} (shown <a href="#config">below</a>)'))]),
    ]


TIME_NOTE = ("<p class='muted'><b>on the clock</b>: from the first unit's start to the last unit's commit "
             "(parallel units overlap); <b>unit wall</b>: the units' own times on the clock, summed; "
             "<b>CPU</b>: the units' user + system CPU time (all threads, and child processes), summed; "
             "<b>CPU / wall</b> near 1 means the units computed, far below 1 that they waited (I/O, sleep); "
             "<b>peak RSS</b>: the largest resident memory of one unit.</p>")


def first_paragraph(doc: str | None) -> str:
    """A docstring's first paragraph on one line (the runbook step it replaces, in full)."""
    return " ".join(inspect.cleandoc(doc or "").split("\n\n", 1)[0].split())


def _steps_table(pipeline, status: dict) -> Markup:
    reasons = any(s["reason"] for s in status["steps"])
    rows, classes = [], []
    for n, s in enumerate(status["steps"], start=1):
        ratio = f"{s['cpu_s'] / s['wall_s']:.2f}" if s["wall_s"] > 0 else "-"
        logs = Markup(f'<a href="{html.escape(s["step"])}/{rundir.LOGS}/">logs</a>') if s["units"] else "-"
        name = Markup(f'<a href="#step-{html.escape(s["step"])}">{html.escape(s["step"])}</a>'
                      f'<div class="muted small">{_inline(first_paragraph(pipeline.step(s["step"]).doc))}</div>')
        rows.append([n, name, _badge(s["state"]), f"{s['shards_done']}/{s['shards_total']}", s["items_ok"], s["items_failed"],
                     s["items_skipped"], s["rows"], _seconds(s["elapsed_s"] if s["units"] else None),
                     _seconds(s["wall_s"] if s["units"] else None), _seconds(s["cpu_s"] if s["units"] else None),
                     ratio, f"{s['peak_rss_mb']:.0f}" if s["units"] else "-", logs] + ([s["reason"]] if reasons else []))
        classes.append("bad" if s["state"] == "failed" or s["items_failed"] else "")
    return table_html(["#", "step (the runbook step it replaces)", "state", "shards", "ok", "failed", "skipped", "rows",
                       "on the clock s", "unit wall s", "CPU s", "CPU / wall", "peak RSS MB", "logs"]
                      + (["stale or failed because"] if reasons else []), rows, classes)


def _failures(run_dir: Path, status: dict) -> list[str]:
    parts = ['<h2 id="failures">Failures</h2>']
    whole = [[s["step"], s["failure"]["error_type"], s["failure"]["message"], file_link(run_dir, s["failure"]["file"])]
             for s in status["steps"] if s["failure"]]
    crashes = [[s["step"], c.get("unit", ""), c.get("message", ""), _when(c.get("time"))]
               for s in status["steps"] for c in s["crashes"]]
    errors = [[s["step"], e["item"], e["error_type"], e["message"], file_link(run_dir, e["file"]),
               link(e["log"], e["unit"]) if e.get("log") else e.get("unit") or "-"]
              for s in status["steps"] for e in s["errors"]]
    problems = [[s["step"], what, p] for s in status["steps"]
                for what, paths in (("missing", s["missing_outputs"]), ("zero-length", s["empty_outputs"]))
                for p in paths]
    if not (whole or crashes or errors or problems):
        return parts + ["<p>No step failed, no item failed, no output is missing.</p>"]
    if whole:
        parts += ["<h3>Steps that failed as a whole</h3>", table_html(["step", "error", "message", "file"], whole)]
    if crashes:
        parts += ["<h3>Units whose worker died</h3>", table_html(["step", "unit", "message", "when"], crashes)]
    if errors:
        total = sum(s["items_failed"] for s in status["steps"])
        parts += [f"<h3>Failed items ({total})</h3>",
                  "<p class='muted'>The retry command redoes exactly these: <code>astroflow run ... "
                  "--retry-failed</code>.</p>" + ("" if total <= len(errors) else
                                                  f"<p>The first {len(errors)} are listed.</p>"),
                  table_html(["step", "item", "error", "message", "file", "unit (log)"], errors)]
    if problems:
        parts += ["<h3>Outputs missing or empty</h3>", table_html(["step", "problem", "file"], problems)]
    return parts


def _step_details(run_dir: Path, cfg, pipeline, status: dict) -> list[str]:
    parts = ['<h2 id="details">Step details</h2>',
             "<p class='muted'>Each step's documentation, parameters, inputs, dataset, logs and products.</p>"]
    enabled = cfg.enabled_steps(pipeline)
    for s in status["steps"]:
        step = pipeline.step(s["step"])
        files = _step_files(run_dir, s["step"]) if s["units"] else {"logs": [], "parts": [], "products": [],
                                                                      "schema": None}
        body = [f'<div class="doc">{rst_html(step.doc)}</div>']
        inputs = pipeline.upstream(step, enabled)
        params = cfg.step_params(pipeline, s["step"]).model_dump(mode="json")
        body.append(_kv([
            ("inputs", Markup(", ".join(f'<a href="#step-{html.escape(i)}">{html.escape(i)}</a>' for i in inputs))
             if inputs else "-"),
            ("fans out over", ", ".join(getattr(step, "key", ()) or ()) or "one unit"),
            ("parameters", Markup(" ".join(f"<code>{html.escape(k)}={html.escape(json.dumps(v))}</code>"
                                           for k, v in params.items()))),
            ("folder", link(f"{s['step']}/", f"{s['step']}/") if (run_dir / s["step"]).is_dir() else "none yet"),
        ]))
        if files["parts"]:
            body.append(f"<h3>Dataset ({s['rows']} rows in {len(files['parts'])} part files)</h3>")
            if files["schema"] is not None:
                from astroflow.units import description_of, unit_of

                body.append(table_html(["column", "type", "unit", "description"],
                                       [[f.name, str(f.type), unit_of(f) or "", description_of(f) or ""]
                                        for f in files["schema"]]))
            body.append(table_html(["unit", "part file", "rows"],
                                   [[u, link(p, Path(p).name), n] for u, p, n in files["parts"][:MAX_LINKS]]))
        if files["logs"]:
            body.append(f"<h3>Logs ({len(files['logs'])} units)</h3>")
            body.append(table_html(
                ["unit", "log", "items", "ok", "failed", "skipped", "unit wall s", "CPU s", "peak RSS MB", "host"],
                [[u, link(p, Path(p).name), len(m.get("items", ())), len(m.get("ok", ())), len(m.get("failed", ())),
                  len(m.get("skipped", ())), m.get("wall_s", 0.0), m.get("cpu_s", 0.0), m.get("peak_rss_mb", 0.0),
                  m.get("host", "")] for u, p, m in files["logs"][:MAX_LINKS]]))
        if files["products"]:
            shown = files["products"][:MAX_LINKS]
            body.append(f"<h3>Products ({len(files['products'])})</h3>")
            if len(shown) < len(files["products"]):
                body.append(f"<p>The first {len(shown)} are listed; all are in the step's manifests.</p>")
            body.append(table_html(["product", "kind"], [[file_link(run_dir, p), Path(p).suffix.lstrip(".")]
                                                         for p in shown]))
        summary = (f'<summary>{_badge(s["state"])} <b>{html.escape(s["step"])}</b> '
                   f'<span class="muted">— {_inline(first_paragraph(step.doc))}</span></summary>')
        parts.append(f'<details id="step-{html.escape(s["step"])}">{summary}{"".join(body)}</details>')
    return parts


def _configuration(run_dir: Path, cfg, pipeline) -> list[str]:
    fields = pipeline.settings.model_fields
    parts = ['<h2 id="config">Configuration</h2>',
             f"<p>Configuration hash <code>{cfg.config_hash()}</code> (the pipeline, its settings and step "
             f"parameters; products carry it as <code>CONFHASH</code>); code <code>{html.escape(cfg.code_version)}"
             f"</code>; the resolved file: {link(run_config.RUN_FILE)}.</p>",
             "<h3>Settings</h3>",
             table_html(["setting", "value", "meaning"],
                        [[k, _value(v), getattr(fields.get(k), "description", None) or ""]
                         for k, v in sorted(cfg.settings.items())])]
    if cfg.steps:
        parts += ["<h3>Step parameters set for this run</h3>",
                  table_html(["step", "parameter", "value"], [[s, k, _value(v)] for s, p in sorted(cfg.steps.items())
                                                              for k, v in sorted(p.items())])]
    parts += ["<h3>Runner</h3>", table_html(["option", "value"],
                                            [[k, _value(v)] for k, v in cfg.run.model_dump(mode="json").items()])]
    history = run_dir / run_config.HISTORY
    if history.is_file():
        rows = []
        for line in history.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            rows.append([_when(rec.get("time")), Markup("<br>".join(html.escape(c) for c in rec.get("changes", [])))])
        if rows:
            parts += [f"<h3>Changes of the configuration ({link(run_config.HISTORY)})</h3>",
                      table_html(["when", "changes"], rows)]
    return parts


def pipeline_section(pipeline, run_dir: Path) -> str:
    """The pipeline's own section: ``Pipeline.report`` is a function of the run directory, or its
    ``"module:function"`` name (imported only when a report is written, as ``tools`` are)."""
    report = pipeline.report
    if report is None:
        return f"<h2>{html.escape(pipeline.name)}</h2><p class='muted'>This pipeline has no section of its own.</p>"
    if isinstance(report, str):
        import importlib

        module, _, name = report.partition(":")
        report = getattr(importlib.import_module(module), name)
    return report(run_dir)


def render(run_dir: str | Path) -> str:
    """The report page's HTML (figures of the pipeline's section are written as a side effect)."""
    run_dir = Path(run_dir)
    status = collect(run_dir, max_errors=MAX_LINKS)
    cfg = run_config.load(run_dir)
    pipeline = get_pipeline(cfg.pipeline)
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>astroflow {html.escape(cfg.pipeline)} run {html.escape(run_dir.name)}</title>",
        f"<style>{STYLE}</style></head><body>",
        *_header(run_dir, cfg, status, pipeline),
        '<h2 id="steps">Steps</h2>', _steps_table(pipeline, status), TIME_NOTE,
        *_failures(run_dir, status),
        '<section id="pipeline">', pipeline_section(pipeline, run_dir), "</section>",
        *_step_details(run_dir, cfg, pipeline, status),
        *_configuration(run_dir, cfg, pipeline),
        f"</main><footer>astroflow {html.escape(cfg.code_version)} · written {_when(time.time())} · "
        "the page and its figures work offline; click a column header to sort</footer>",
        f"<script>{SCRIPT}</script></body></html>",
    ]
    return "\n".join(parts)


def write_report(run_dir: str | Path) -> Path:
    """Write ``RUN/report.html`` (atomically) and its figures; returns the page's path."""
    return write_text(Path(run_dir) / REPORT, render(run_dir))
