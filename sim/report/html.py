"""One self-contained HTML page of a result folder: figures embedded, the scenario's assumptions
with their sources, the predictive check where a calibration exists, the policy table of a
comparison. Rendered with jinja2; no file is fetched when the page opens."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import jinja2
import matplotlib.pyplot as plt

from sim.metrics import format_number
from sim.report.plots import figures, load_results

_CSS = """body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 62em; padding: 0 1em;
       color: #222; line-height: 1.4; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
.what { background: #f4f6f8; border-left: 4px solid #4a78a8; padding: 0.5em 0.8em; }
.what dt { font-weight: bold; float: left; clear: left; width: 9em; }
.what dd { margin-left: 9.5em; overflow-wrap: anywhere; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
td, th { border: 1px solid #ddd; padding: 0.2em 0.5em; text-align: left; vertical-align: top; }
td.num { text-align: right; white-space: nowrap; } .pass { color: #2a7d2a; font-weight: bold; }
.fail { color: #b22222; font-weight: bold; } .override { background: #fff3cd; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; }
@media (max-width: 40em) { .what dt { float: none; width: auto; } .what dd { margin-left: 0; }
  body { margin: 0.5em auto; } table { font-size: 0.78em; } }
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
{{ css }}
</style>
</head>
<body>
<h1>{{ title }}</h1>
{% if description %}<p>{{ description }}</p>{% endif %}
<dl class="what">
{% for k, v in what %}<dt>{{ k }}</dt><dd>{{ v }}</dd>
{% endfor %}</dl>

<h2>Figures</h2>
{% for fig in figures %}
<figure><img class="figure" alt="{{ fig.caption }}" src="data:image/png;base64,{{ fig.png }}">
<figcaption>{{ fig.caption }}</figcaption></figure>
{% endfor %}

{% block body %}{% endblock %}
<script>
// figures report their drawn size in the page, for anyone (or any test) reading it
document.querySelectorAll("img.figure").forEach(function (img) {
  img.dataset.drawn = img.naturalWidth + "x" + img.naturalHeight;
});
</script>
</body>
</html>
"""

_RUN = """{% extends "page.html" %}{% block body %}
<h2>Summary over replications</h2>
<p>Mean, and 5-95% of the replications{% if policies|length > 1 %}, per scenario{% endif %}.</p>
<div class="scroll"><table><tr><th>metric</th>
{% for p in policies %}<th>{{ p }}: mean</th><th>5-95%</th>{% endfor %}</tr>
{% for r in summary %}<tr><td>{{ r.metric }}</td>
{% for c in r.cells %}<td class="num">{{ c.mean }}</td><td class="num">{{ c.interval }}</td>{% endfor %}
</tr>{% endfor %}
</table></div>

<h2>Predictive check against the documented record</h2>
{% if check %}
<p>{{ check.caption }}</p>
<div class="scroll"><table><tr><th>target</th><th>documented</th><th>median</th><th>5-95%</th><th>inside</th>
<th>result</th><th>source</th></tr>
{% for r in check.rows %}<tr><td>{{ r.name }}</td><td>{{ r.documented }}</td>
<td class="num">{{ r.median }}</td><td class="num">{{ r.interval }}</td><td class="num">{{ r.inside }}</td>
<td class="{{ r.css }}">{{ r.status }}</td><td>{{ r.quote }}</td></tr>{% endfor %}
</table></div>
{% for n in check.notes %}<p><em>Note:</em> {{ n }}</p>{% endfor %}
{% else %}
<p id="no-check">{{ no_check }}</p>
{% endif %}

{% if informed %}
<h2>What the record informs</h2>
<p>The posterior this run drew its parameters from ({{ informed.file }}): for each fitted parameter,
its prior, the posterior median and 90% interval, and the interval's share of the prior's width.
A parameter that keeps {{ informed.threshold }} or more of its prior's width is not informed by the
record through this calibration.</p>
<div class="scroll"><table><tr><th>parameter</th><th>key</th><th>prior</th><th>median</th>
<th>90% interval</th><th>width</th><th>informed</th></tr>
{% for r in informed.rows %}<tr><td>{{ r.parameter }}</td><td>{{ r.key }}</td><td>{{ r.prior }}</td>
<td class="num">{{ r.median }}</td><td class="num">{{ r.interval }}</td><td class="num">{{ r.width }}</td>
<td class="{{ 'pass' if r.informed else 'fail' }}">{{ 'yes' if r.informed else 'no' }}</td></tr>{% endfor %}
</table></div>
{% if informed.pairs %}<p>Correlated in the posterior (|r| above 0.5): {{ informed.pairs }}.</p>{% endif %}
{% endif %}

{% if comparison %}
<h2>Scenarios compared on the same seeds</h2>
<div class="scroll"><table><tr><th>scenario</th><th>metric</th><th>mean</th>
<th>difference from {{ comparison.reference }}</th>
<th>95% CI</th></tr>
{% for r in comparison.rows %}<tr><td>{{ r.policy }}</td><td>{{ r.metric }}</td>
<td class="num">{{ r.mean }}</td><td class="num">{{ r.difference }}</td>
<td class="num">{{ r.ci }}</td></tr>{% endfor %}
</table></div>
{% if differs %}
<p>What the scenarios set differently (the values that ran):</p>
<div class="scroll"><table><tr><th>key</th>{% for p in policies %}<th>{{ p }}</th>{% endfor %}</tr>
{% for r in differs %}<tr><td>{{ r.key }}</td>{% for v in r["values"] %}<td>{{ v }}</td>{% endfor %}</tr>
{% endfor %}</table></div>
{% endif %}
{% endif %}

<h2>Assumptions and their sources</h2>
<p>Every value written in the scenario's files{% if policies|length > 1 %} (of {{ policies[0] }}, the
reference){% endif %}, as it ran, with the comment that names its source: <em>article</em> (the
source article of the documented record, docs/sources.md), <em>record</em> (the dated public
record), <em>facts</em> (reference figures), <em>fitted</em> (the calibration) or
<em>assumption</em>. Rows marked <strong>--set</strong> were overridden on the command line.</p>
<div class="scroll"><table><tr><th>key</th><th>value that ran</th><th>source</th><th>set in</th></tr>
{% for a in assumptions %}<tr{% if a.override %} class="override"{% endif %}><td>{{ a.key }}</td>
<td>{{ a.value }}</td><td>{{ a.source }}</td>
<td>{{ a.file }}{% if a.override %} (file: {{ a.file_value or "default" }}){% endif %}</td></tr>
{% endfor %}
</table></div>
{% endblock %}
"""

_SWEEP = """{% extends "page.html" %}{% block body %}
<h2>Mean and 95% confidence interval per design point and policy</h2>
<div class="scroll"><table><tr>{% for c in columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for r in rows %}<tr>{% for c in r %}<td class="num">{{ c }}</td>{% endfor %}</tr>{% endfor %}
</table></div>
{% if sobol %}
<h2>Sobol indices</h2>
<div class="scroll"><table><tr><th>policy</th><th>metric</th><th>factor</th><th>S1</th><th>ST</th>
<th>noise</th></tr>
{% for r in sobol %}<tr><td>{{ r.policy }}</td><td>{{ r.metric }}</td><td>{{ r.factor }}</td>
<td class="num">{{ r.S1 }}</td><td class="num">{{ r.ST }}</td><td class="num">{{ r.noise }}</td></tr>
{% endfor %}</table></div>
{% for w in warnings %}<p><em>Warning:</em> {{ w }}</p>{% endfor %}
{% endif %}
{% endblock %}
"""

_ENV = jinja2.Environment(
    loader=jinja2.DictLoader({"page.html": _PAGE, "run.html": _RUN, "sweep.html": _SWEEP}), autoescape=True
)
#: The page of a run's or a comparison's folder, and of a sweep's.
TEMPLATE = _ENV.get_template("run.html")
SWEEP_TEMPLATE = _ENV.get_template("sweep.html")

CAPTIONS = {
    "cumulative_attacks": "Cumulative militia attacks: median and 5-95% band of the replications, "
    "with the documented count of the source article.",
    "weekly_attacks_strikes": "Attacks and US strikes per week, means over the replications.",
    "escalation_ladder": "The escalation ladder: share of replications on each rung, day by day.",
    "b1b_sorties": "B-1B missions: one replication's packages, hour by hour from the decision; "
    "and over all replications, the hours from a decision to bombs on target.",
    "outcomes": "Outcomes and attacks per replication.",
    "comparison_forest": "Paired differences from the reference scenario, 95% confidence intervals.",
}


def _embedded(figs: dict, captions: dict[str, str], dpi: int) -> list[dict]:
    """Figures as base64 PNG for the page, each with its caption; the figures are closed."""
    out = []
    for stem, fig in figs.items():
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
        plt.close(fig)
        out.append(
            {
                "png": base64.b64encode(buf.getvalue()).decode(),
                "caption": captions.get(stem, stem.replace("_", " ")),
            }
        )
    return out


def _what_ran(results) -> list[tuple[str, str]]:
    m = results.manifest
    s = results.scenario
    rows = []
    if m.get("scenarios"):
        rows.append(
            (
                "scenarios",
                "; ".join(f"{e['name']} ({e['file']}, policy {e['policy']})" for e in m["scenarios"]),
            )
        )
    else:
        rows.append(("scenario", f"{s.meta.name} ({m.get('scenario_file', '?')})"))
        rows.append(("policy", s.command.policy))
    rows.append(("overrides", " ".join(m.get("overrides", [])) or "none"))
    cal = (
        m.get("calibration")
        if not m.get("scenarios")
        else ", ".join(sorted({e.get("calibration", "") for e in m["scenarios"]} - {""}))
    )
    rows.append(("calibration", f"{cal}" if cal else "none (no fitted values)"))
    rows.append(("parameters", _parameters_text(m)))
    rows.append(
        (
            "replications",
            f"{m.get('reps', len(results.summary)):,}{' per scenario' if m.get('scenarios') else ''}",
        )
    )
    rows.append(("seed", str(m.get("seed", "?"))))
    rows.append(
        ("dates", f"{s.meta.start_date.isoformat()} to {s.meta.end_date.isoformat()} ({s.meta.timezone})")
    )
    rows.append(("command", "esim " + " ".join(m.get("command", [])) if m.get("command") else "?"))
    rows.append(
        ("version", f"escalation-sim {m.get('escalation_sim_version', '?')}, run {m.get('created_utc', '?')}")
    )
    return rows


def _parameters_text(m: dict) -> str:
    """Where the run's parameters came from, in words (from its manifest)."""
    p = m.get("parameters") or {"mode": "point"}
    if p.get("mode") != "posterior":
        return "the fitted point (the story point of the calibration)" + (
            f"; {p['note']}" if p.get("note") else ""
        )
    r = p.get("reps_per_draw", 1)
    return (
        f"posterior {p.get('file')} (sha256 {str(p.get('sha256', ''))[:12]}, {p.get('draws', 0):,} draws, "
        f"ESS {p.get('ess', 0):,.0f}); {r} replication{'s' if r != 1 else ''} a draw; keys drawn: "
        f"{', '.join(p.get('keys_drawn') or []) or 'none'}"
    )


def render_report(folder: str | Path, check_reps: int = 200) -> str:
    """The HTML page of a result folder (see the module docstring)."""
    from sim.metrics import describe

    folder = Path(folder)
    results = load_results(folder)
    s = results.scenario
    figs = _embedded(figures(results), CAPTIONS, dpi=100)
    policies = results.policies
    summary = _summary_rows(results, policies, describe)
    reference = policies[0]
    assumptions = results.sources.get(reference) or results.sources.get(s.meta.name) or []
    check, no_check = stored_check(folder, results, check_reps)
    informed = _informed_section(results.manifest)
    comparison = _comparison_section(results.comparison)
    return TEMPLATE.render(
        css=_CSS,
        title=f"escalation-sim: {results.label}",
        description=s.meta.description,
        what=_what_ran(results),
        figures=figs,
        policies=policies,
        summary=summary,
        check=check,
        no_check=no_check,
        informed=informed,
        comparison=comparison,
        differs=_differences(results, policies),
        assumptions=assumptions,
    )


def _summary_rows(results, policies, describe) -> list[dict]:
    frame = results.summary
    if "outcome" not in frame:
        return []
    tables = {}
    for p in policies:
        rows = frame[frame["policy"] == p] if len(policies) > 1 else frame
        tables[p] = describe(rows)
    out = []
    for metric in tables[policies[0]].index:
        cells = []
        for p in policies:
            r = tables[p].loc[metric]
            interval = "" if r["p5"] != r["p5"] else f"{format_number(r['p5'])} - {format_number(r['p95'])}"
            cells.append({"mean": format_number(r["mean"]), "interval": interval})
        out.append({"metric": metric, "cells": cells})
    return out


def _differences(results, policies) -> list[dict]:
    if len(policies) < 2 or len(results.scenarios) < 2:
        return []
    flat = {}
    for p in policies:
        sc = results.scenarios.get(p)
        flat[p] = _flatten(sc.model_dump(mode="json", exclude_none=True)) if sc else {}
    keys = sorted({k for d in flat.values() for k in d})
    rows = []
    for k in keys:
        values = [flat[p].get(k, "") for p in policies]
        if len({str(v) for v in values}) > 1 and not k.startswith("meta."):
            rows.append({"key": k, "values": [str(v) for v in values]})
    return rows


def _flatten(tree, prefix: str = "") -> dict:
    out = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, f"{key}."))
        else:
            out[key] = v
    return out


#: The predictive check as the report shows it, stored in the result folder by the first report
#: that computed it; later reports render it as stored (the same replications and seed).
CHECK_FILE = "check.json"
CHECK_SEED = 20231017


def stored_check(folder: Path, results, reps: int) -> tuple[dict | None, str]:
    """The report's check section from ``folder/check.json`` when it was computed for this
    folder's scenario with ``reps`` replications; else computed now and stored there."""
    import json

    from sim.store import atomic_write

    path = folder / CHECK_FILE
    params = results.manifest.get("parameters") or {"mode": "point"}
    key = {
        "scenario_sha256": results.manifest.get("scenario_sha256"),
        "reps": reps,
        "seed": CHECK_SEED,
        "parameters": [params.get("mode"), params.get("sha256"), params.get("reps_per_draw")],
    }
    if path.is_file():
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            stored = {}
        if {k: stored.get(k) for k in key} == key:
            return stored.get("section"), stored.get("no_check", "")
    section, no_check = _check_section(results, reps)
    text = json.dumps({**key, "section": section, "no_check": no_check}, indent=1) + "\n"
    atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))
    return section, no_check


def _check_section(results, reps: int) -> tuple[dict | None, str]:
    """The predictive check of the folder's (reference) scenario where a targets file names its
    scenario file; else None and the reason, said on the page."""
    from sim.calibrate import find_targets_file, load_targets, predictive_check

    m = results.manifest
    s = results.scenario
    source = m.get("scenario_file_absolute") or m.get("scenario_file")  # a comparison: its first
    if not source:
        return None, "No predictive check: the folder's manifest does not name a scenario file."
    if not Path(source).is_file():
        return None, (
            f"No predictive check: the scenario file {source} that ran is not found from "
            "here, so its targets file cannot be found."
        )
    tfile = find_targets_file(source)
    if tfile is None:
        return None, (
            f"No predictive check: no targets file in calibration/ names "
            f"{Path(source).name} (only the calibrated scenarios are checked against the "
            "record; a policy variant asks what would have happened, which the record "
            "cannot tell)."
        )
    from sim.posterior import batch_draws, keys_to_draw, parameters_of
    from sim.scenario import ScenarioError

    try:
        params = parameters_of(m)
        keys = keys_to_draw(params, s, source, m.get("overrides", []))
    except ScenarioError as exc:
        return None, f"No predictive check: the run's posterior cannot be used now ({exc})."
    result = predictive_check(
        s,
        load_targets(tfile),
        reps=reps,
        seed=CHECK_SEED,
        folder=Path(tfile).parent,
        draws=batch_draws(params, keys, CHECK_SEED, 0, reps),
    )
    rows = [
        {
            "name": r.name,
            "documented": r.documented,
            "median": format_number(r.median),
            "interval": f"{format_number(r.p5)} - {format_number(r.p95)}",
            "inside": "-" if r.share_inside != r.share_inside else f"{r.share_inside:.0%}",
            "status": r.status + (f": {r.why}" if r.why else ""),
            "css": "pass" if r.passed else "fail",
            "quote": r.quote,
        }
        for r in result.rows
    ]
    passed = sum(r.passed for r in result.rows)
    notes = [
        f"Dated series '{c.name}': {'PASS' if c.passed else 'FAIL'}"
        f"{': ' + c.why if c.why else ''}; the 5-95% band covers {c.covered} of {c.points} "
        f"points, mean width {c.relative_width:.2f} of the value, mean CRPS {c.model.cumulative:.2f} "
        f"against {c.constant.cumulative:.2f} for a constant-rate Poisson forecast."
        for c in result.series
    ]
    if result.story is not None:
        notes.append(
            f"The documented story at once ({', '.join(result.story.targets)}): "
            f"{result.story.share:.0%} of replications (at least "
            f"{result.story.min_share:.0%} needed): {'PASS' if result.story.passed else 'FAIL'}."
        )
    overridden = " (with this folder's --set overrides)" if m.get("overrides") else ""
    return {
        "rows": rows,
        "notes": notes + result.notes,
        "caption": f"The scenario as it ran{overridden}, {reps} replications of seed {CHECK_SEED} "
        f"({params.label()}), "
        f"against {Path(tfile).name}: {passed} of {len(rows)} targets pass. A target "
        f"fails when the documented value lies in a tail of the simulated distribution "
        f"beyond {result.rules.tail_probability:g}, or too few replications land "
        "inside its documented set.",
    }, ""


def _informed_section(m: dict) -> dict | None:
    """What the record informs, as the calibration stored it in the posterior file the run used
    (None under the fitted point, or when that file cannot be read now)."""
    from sim.calibrate.identification import NOT_INFORMED
    from sim.posterior import parameters_of
    from sim.scenario import ScenarioError

    try:
        params = parameters_of(m)
    except ScenarioError:
        return None
    if params.posterior is None:
        return None
    man = params.posterior.manifest
    rows = [
        {
            "parameter": r["parameter"],
            "key": r["key"],
            "prior": r["prior"],
            "median": f"{r['median']:.3g}",  # parameters are small numbers: 3 significant digits
            "interval": f"{r['p5']:.3g} - {r['p95']:.3g}",
            "width": f"{r['width_share']:.2f}",
            "informed": r["informed"],
        }
        for r in man.get("informed", [])
    ]
    pairs = "; ".join(f"{c['a']} and {c['b']} ({c['r']:+.2f})" for c in man.get("correlations", []))
    return {"file": m["parameters"]["file"], "rows": rows, "pairs": pairs, "threshold": f"{NOT_INFORMED:.0%}"}


def _comparison_section(comp) -> dict | None:
    if comp is None:
        return None
    policies = list(dict.fromkeys(comp["policy"]))
    keep = comp[
        comp["metric"].isin(["attacks", "us_killed", "militia_killed", "civilians_killed", "outcome=halted"])
    ]
    from sim.compare import format_difference

    rows = [
        {
            "policy": r["policy"],
            "metric": r["metric"],
            "mean": format_number(r["mean"]),
            "difference": format_difference(r)[0],
            "ci": format_difference(r)[1],
        }
        for _, r in keep.iterrows()
        if r["policy"] != policies[0]
    ]
    return {"reference": policies[0], "rows": rows}


SWEEP_CAPTIONS = {
    "factor_response": "Each metric against each factor: the mean of every design point with its "
    "95% confidence interval, per policy.",
    "factor_heatmap": "The factorial's grid: each metric's mean at every point, per policy.",
    "paired_by_point": "Each policy's paired difference from the first at every design point "
    "(common random numbers), with its 95% confidence interval.",
    "sobol_indices": "Sobol indices (esim sensitivity): first-order and total, with 95% intervals.",
}


def render_sweep_report(folder: str | Path) -> str:
    """The HTML page of a sweep's folder: what ran, the sweep figures, the table of means and,
    after ``esim sensitivity``, the Sobol indices with their warnings."""
    from sim.compare import aggregate, sobol_warnings
    from sim.report.sweep_figures import SWEEP_METRICS, load_sweep_results, sweep_figures

    r = load_sweep_results(folder)
    m = r.manifest
    figs = _embedded(sweep_figures(r), SWEEP_CAPTIONS, dpi=90)
    factors = list(r.design.columns)
    what = [
        ("sweep", f"{m.get('sweep')} ({m.get('sweep_file')})"),
        ("factors", ", ".join(f"{n} = {k}" for n, k in m.get("factors", {}).items()) or "none"),
        ("design", f"{m.get('design', '?')}, {m.get('points')} points"),
        ("policies", ", ".join(m.get("policies", []))),
        ("replications", f"{m.get('reps')} per point and policy; {len(r.summary):,} done"),
        ("seed", str(m.get("seed"))),
        ("command", "esim " + " ".join(m.get("command", []))),
    ]
    rows = []
    if not r.summary.empty:
        table = aggregate(r.summary, r.design, SWEEP_METRICS)
        for (point, policy), g in table.groupby(["point", "policy"], sort=True):
            by = g.set_index("metric")
            rows.append(
                [
                    str(point),
                    *(f"{r.design.at[point, f]:.4g}" for f in factors),
                    policy,
                    *(
                        f"{by.at[x, 'mean']:.3g} [{by.at[x, 'ci_low']:.3g}, {by.at[x, 'ci_high']:.3g}]"
                        for x in SWEEP_METRICS
                    ),
                ]
            )
    sobol, warnings = [], []
    if r.sobol is not None:
        sobol = [
            {
                "policy": x["policy"],
                "metric": x["metric"],
                "factor": x["factor"],
                "S1": f"{x['S1']:.2f} ±{x['S1_conf']:.2f}",
                "ST": f"{x['ST']:.2f} ±{x['ST_conf']:.2f}",
                "noise": f"{x['noise_share']:.1%}",
            }
            for _, x in r.sobol.iterrows()
        ]
        warnings = sobol_warnings(r.sobol, max(1, m.get("points", 1) // (len(factors) + 2)))
    return SWEEP_TEMPLATE.render(
        title=f"escalation-sim: {r.label}",
        what=what,
        figures=figs,
        columns=["point", *factors, "policy", *SWEEP_METRICS],
        rows=rows,
        sobol=sobol,
        warnings=warnings,
        css=_CSS,
    )


def write_report(folder: str | Path, out: str | Path, check_reps: int = 200) -> Path:
    """Write the page of a result folder (of ``esim run``, ``compare --out``, ``sweep`` or
    ``sensitivity``) to ``out``."""
    from sim.store import SWEEP_MANIFEST, atomic_write

    if (Path(folder) / SWEEP_MANIFEST).is_file():
        html = render_sweep_report(folder)
    else:
        html = render_report(folder, check_reps)
    out = Path(out)
    atomic_write(out, lambda p: p.write_text(html, encoding="utf-8"))
    return out
