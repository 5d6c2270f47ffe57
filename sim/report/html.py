"""One self-contained HTML page of a result folder: figures embedded, the scenario's assumptions
with their sources, the predictive check where a calibration exists, the policy table of a
comparison. Rendered with jinja2; no file is fetched when the page opens."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import jinja2
import matplotlib.pyplot as plt

from sim.metrics import format_number
from sim.report.plots import figures, load_results
from sim.scenario.loader import extends_chain

TEMPLATE = jinja2.Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
td, th { border: 1px solid #ddd; padding: 0.2em 0.5em; text-align: left; vertical-align: top; }
td.num { text-align: right; } .pass { color: #2a7d2a; font-weight: bold; }
.fail { color: #b22222; font-weight: bold; } figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; }
</style>
</head>
<body>
<h1>{{ title }}</h1>
<p>{{ subtitle }}</p>

<h2>Figures</h2>
{% for fig in figures %}
<figure><img class="figure" alt="{{ fig.caption }}" src="data:image/png;base64,{{ fig.png }}">
<figcaption>{{ fig.caption }}</figcaption></figure>
{% endfor %}

<h2>Summary over replications</h2>
<table><tr><th>metric</th><th>mean</th><th>5%</th><th>95%</th></tr>
{% for r in summary %}<tr><td>{{ r.metric }}</td><td class="num">{{ r.mean }}</td>
<td class="num">{{ r.p5 }}</td><td class="num">{{ r.p95 }}</td></tr>{% endfor %}
</table>

{% if check %}
<h2>Predictive check against the documented record</h2>
<p>{{ check.caption }}</p>
<table><tr><th>target</th><th>documented</th><th>median</th><th>5-95%</th><th>inside</th>
<th>result</th><th>source</th></tr>
{% for r in check.rows %}<tr><td>{{ r.name }}</td><td>{{ r.documented }}</td>
<td class="num">{{ r.median }}</td><td class="num">{{ r.interval }}</td><td class="num">{{ r.inside }}</td>
<td class="{{ r.css }}">{{ r.status }}</td><td>{{ r.quote }}</td></tr>{% endfor %}
</table>
{% for n in check.notes %}<p><em>Note:</em> {{ n }}</p>{% endfor %}
{% endif %}

{% if comparison %}
<h2>Policies compared on the same seeds</h2>
<table><tr><th>policy</th><th>metric</th><th>mean</th><th>difference from {{ comparison.reference }}</th>
<th>95% CI</th></tr>
{% for r in comparison.rows %}<tr><td>{{ r.policy }}</td><td>{{ r.metric }}</td>
<td class="num">{{ r.mean }}</td><td class="num">{{ r.difference }}</td>
<td class="num">{{ r.ci }}</td></tr>{% endfor %}
</table>
{% endif %}

<h2>Assumptions and their sources</h2>
<p>Every value of the scenario file{% if assumptions_file %} ({{ assumptions_file }}){% endif %}
with the comment that names its source: <em>seed</em> (the documented record), <em>facts</em>
(reference figures), <em>fitted</em> (the calibration) or <em>assumption</em>.</p>
<table><tr><th>key</th><th>value</th><th>source</th></tr>
{% for a in assumptions %}<tr><td>{{ a.key }}</td><td>{{ a.value }}</td><td>{{ a.source }}</td></tr>
{% endfor %}
</table>
<script>
// figures report their drawn size in the page, for anyone (or any test) reading it
document.querySelectorAll("img.figure").forEach(function (img) {
  img.dataset.drawn = img.naturalWidth + "x" + img.naturalHeight;
});
</script>
</body>
</html>
""", autoescape=True)

_LINE = re.compile(r"^\s*([A-Za-z0-9_.\-\"]+)\s*=\s*(.+?)\s+#\s*(.+)$")
_TABLE = re.compile(r"^\s*\[([^\]]+)\]")


def scenario_assumptions(path: str | Path) -> list[dict]:
    """``key = value  # source`` lines of a scenario file and the files it extends, in order."""
    out = []
    for file in extends_chain(path):
        table = ""
        for line in file.read_text(encoding="utf-8").splitlines():
            m = _TABLE.match(line)
            if m:
                table = m.group(1).strip()
                continue
            m = _LINE.match(line)
            if m:
                key = f"{table}.{m.group(1)}" if table else m.group(1)
                out.append({"key": key, "value": m.group(2).strip(), "source": m.group(3).strip(),
                            "file": file.name})
    return out



def render_report(folder: str | Path, check_reps: int = 200) -> str:
    """The HTML page of a result folder (see the module docstring)."""
    from sim.metrics import describe

    folder = Path(folder)
    results = load_results(folder)
    s = results.scenario
    info = folder / "manifest.json"
    manifest = json.loads(info.read_text()) if info.is_file() else {}
    figs = []
    for stem, fig in figures(results).items():
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        plt.close(fig)
        figs.append({"png": base64.b64encode(buf.getvalue()).decode(),
                     "caption": stem.replace("_", " ")})
    summary = [{"metric": name, **{k: format_number(r[k]) for k in ("mean", "p5", "p95")}}
               for name, r in describe(results.summary).iterrows()] if "outcome" in results.summary else []
    source_file = manifest.get("scenario_file")
    assumptions = scenario_assumptions(source_file) if source_file and Path(source_file).is_file() else []
    check = _check_section(s, source_file, check_reps)
    comparison = _comparison_section(results.comparison)
    subtitle = (f"{s.meta.description} {s.meta.start_date.isoformat()} to {s.meta.end_date.isoformat()}; "
                f"{len(results.summary)} replications"
                + (f", seed {manifest['seed']}" if "seed" in manifest else "") + ".")
    return TEMPLATE.render(title=f"escalation-sim: {s.meta.name}", subtitle=subtitle, figures=figs,
                           summary=summary, check=check, comparison=comparison,
                           assumptions=assumptions, assumptions_file=source_file)


def _check_section(s, source_file, reps: int) -> dict | None:
    from sim.calibrate import find_targets_file, load_targets, predictive_check

    if not source_file or not Path(source_file).is_file():
        return None
    tfile = find_targets_file(source_file)
    if tfile is None:
        return None
    result = predictive_check(s, load_targets(tfile), reps=reps, seed=20231017,
                              folder=Path(tfile).parent)
    rows = [{"name": r.name, "documented": r.documented, "median": format_number(r.median),
             "interval": f"{format_number(r.p5)} - {format_number(r.p95)}",
             "inside": "-" if r.share_inside != r.share_inside else f"{r.share_inside:.0%}",
             "status": r.status + (f": {r.why}" if r.why else ""),
             "css": "pass" if r.passed else "fail", "quote": r.quote}
            for r in result.rows]
    passed = sum(r.passed for r in result.rows)
    notes = [f"Dated series '{c.name}': {'PASS' if c.passed else 'FAIL'}"
             f"{': ' + c.why if c.why else ''}; the 5-95% band covers {c.covered} of {c.points} "
             f"points, mean width {c.relative_width:.2f} of the value, mean CRPS {c.model.cumulative:.2f} "
             f"against {c.constant.cumulative:.2f} for a constant-rate Poisson forecast."
             for c in result.series]
    if result.story is not None:
        notes.append(f"The documented story at once ({', '.join(result.story.targets)}): "
                     f"{result.story.share:.0%} of replications (at least "
                     f"{result.story.min_share:.0%} needed): {'PASS' if result.story.passed else 'FAIL'}.")
    return {"rows": rows, "notes": notes + result.notes,
            "caption": f"{passed} of {len(rows)} targets pass over {reps} replications "
                       f"({Path(tfile).name}): a target fails when the documented value lies in a "
                       f"tail of the simulated distribution beyond {result.rules.tail_probability:g}, "
                       "or too few replications land inside its documented set."}


def _comparison_section(comp) -> dict | None:
    if comp is None:
        return None
    policies = list(dict.fromkeys(comp["policy"]))
    keep = comp[comp["metric"].isin(["attacks", "us_killed", "militia_killed", "civilians_killed",
                                     "outcome=halted"])]
    rows = [{"policy": r["policy"], "metric": r["metric"], "mean": format_number(r["mean"]),
             "difference": f"{r['difference']:+.3g}", "ci": f"[{r['ci_low']:+.3g}, {r['ci_high']:+.3g}]"}
            for _, r in keep.iterrows() if r["policy"] != policies[0]]
    return {"reference": policies[0], "rows": rows}


def write_report(folder: str | Path, out: str | Path, check_reps: int = 200) -> Path:
    from sim.store import atomic_write

    html = render_report(folder, check_reps)
    out = Path(out)
    atomic_write(out, lambda p: p.write_text(html, encoding="utf-8"))
    return out
