//! The report as one self-contained HTML page for a contract manager: no script, no external
//! asset (a Content-Security-Policy says so to the browser), charts as inline SVG with a
//! `<title>` per bar and a table next to each, and print styles for A4.
//!
//! Every dynamic string passes through [`esc`]; nothing from the report is written raw.

use std::fmt::Write as _;

use super::{BreakGlassSection, Report, RuleCount, TeamOut};

/// The page's Content-Security-Policy: nothing can load from anywhere, and no script runs.
pub const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";
/// The same policy as an HTTP header, for every HTML page the service serves (the report
/// and a patient's access log), which can also forbid framing (ignored in a `<meta>`).
pub const CSP_HEADER: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    crate::fhir::narrative::escape_into(s, &mut out);
    out
}

const STYLE: &str = r#"
:root{--ink:#1d2430;--muted:#5b6573;--line:#d9dee5;--ok:#1b7f3b;--warn:#a15c00;--bad:#b3261e;--bg:#f6f8fa;--accent:#1f5fa8}
*{box-sizing:border-box}
body{font-family:"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--ink);margin:0;background:#fff;line-height:1.45;font-size:15px}
main{max-width:62rem;margin:0 auto;padding:1.5rem 1.25rem 3rem}
h1{font-size:1.7rem;margin:.2rem 0 .3rem}
h2{font-size:1.3rem;margin:2.2rem 0 .6rem;padding-bottom:.3rem;border-bottom:2px solid var(--accent)}
h3{font-size:1.05rem;margin:1.2rem 0 .4rem}
p{margin:.4rem 0}
.sub{color:var(--muted);margin:.1rem 0}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(9.5rem,1fr));gap:.6rem;margin:1.2rem 0}
.kpi{border:1px solid var(--line);border-radius:8px;padding:.6rem .75rem;background:var(--bg)}
.kpi .n{font-size:1.6rem;font-weight:600;display:block}
.kpi .l{color:var(--muted);font-size:.85rem}
.kpi.ok{border-left:5px solid var(--ok)}.kpi.bad{border-left:5px solid var(--bad)}.kpi.warn{border-left:5px solid var(--warn)}
nav ol{columns:2;margin:.4rem 0;padding-left:1.2rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem;font-size:.9rem}
th,td{text-align:left;vertical-align:top;border-bottom:1px solid var(--line);padding:.35rem .45rem}
th{background:var(--bg);font-weight:600}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
td.m{white-space:nowrap}
.badge{display:inline-block;border-radius:999px;padding:0 .55rem;font-size:.8rem;font-weight:600;border:1px solid currentColor;white-space:nowrap}
.b-ok{color:var(--ok)}.b-warn{color:var(--warn)}.b-bad{color:var(--bad)}.b-muted{color:var(--muted)}
.card{border:1px solid var(--line);border-radius:8px;padding:.4rem .9rem .7rem;margin:.7rem 0;break-inside:avoid}
dl{display:grid;grid-template-columns:10rem 1fr;gap:.2rem .8rem;margin:.4rem 0}
dt{color:var(--muted)}dd{margin:0}
.callout{border-left:5px solid var(--warn);background:#fff7eb;padding:.5rem .8rem;margin:.6rem 0}
.callout.bad{border-left-color:var(--bad);background:#fdeeee}
.callout.ok{border-left-color:var(--ok);background:#eef8f1}
.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85rem;word-break:break-all}
.chart{margin:.6rem 0;break-inside:avoid}
.chart svg{max-width:100%;height:auto;display:block}
.legend{display:flex;flex-wrap:wrap;gap:.3rem 1rem;font-size:.85rem;margin:.2rem 0 .4rem;padding:0;list-style:none}
.legend li::before{content:"";display:inline-block;width:.8rem;height:.8rem;margin-right:.35rem;vertical-align:-.1rem;background:var(--c)}
.none{color:var(--muted);font-style:italic}
footer{margin-top:2.5rem;color:var(--muted);font-size:.85rem;border-top:1px solid var(--line);padding-top:.6rem}
@page{size:A4;margin:14mm 12mm}
@media print{
 body{font-size:10.5pt}
 main{max-width:none;padding:0}
 nav{display:none}
 h2{break-after:avoid;margin-top:1.2rem}
 h3{break-after:avoid}
 section{break-before:auto}
 #teams,#reads{break-before:page}
 tr,.card,.chart,.kpi{break-inside:avoid}
 *{-webkit-print-color-adjust:exact;print-color-adjust:exact}
 a{color:inherit;text-decoration:none}
}
"#;

/// Colours of chart series (colour-blind safe, Okabe–Ito).
const PALETTE: &[&str] = &["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"];
const DENIED: &str = "#B3261E";

fn badge(class: &str, text: &str) -> String {
    format!("<span class=\"badge {class}\">{}</span>", esc(text))
}

fn month_label(m: &str) -> String {
    const NAMES: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    match (m.get(..4), m.get(5..7).and_then(|x| x.parse::<usize>().ok())) {
        (Some(y), Some(n)) if (1..=12).contains(&n) => format!("{} {y}", NAMES[n - 1]),
        _ => m.to_owned(),
    }
}

/// A rounded-up axis maximum (1, 2, 5 × 10^n) and its tick step.
fn nice_max(max: i64) -> (i64, i64) {
    if max <= 0 {
        return (1, 1);
    }
    let mut step = 1i64;
    loop {
        for m in [1, 2, 5] {
            let s = step.saturating_mul(m);
            if s.saturating_mul(5) >= max {
                let top = (max + s - 1) / s * s;
                return (top, s);
            }
        }
        step = step.saturating_mul(10);
    }
}

/// One series of a column chart: name, a value per column, colour.
type Series<'a> = (String, Vec<i64>, &'a str);

/// The opening of a chart `w` by `h`: the figure and the SVG with its accessible title and
/// description.
fn chart_start(id: &str, w: f64, h: f64, title: &str, desc: &str) -> String {
    format!(
        "<figure class=\"chart\"><svg id=\"{id}\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-labelledby=\"{id}-t {id}-d\">\
         <title id=\"{id}-t\">{}</title><desc id=\"{id}-d\">{}</desc>",
        esc(title),
        esc(desc)
    )
}

/// Vertical stacked columns: one column per label, one series per colour.
fn stacked_columns(id: &str, title: &str, desc: &str, labels: &[String], series: &[Series<'_>]) -> String {
    let (w, h, left, bottom, top) = (720.0_f64, 280.0_f64, 44.0_f64, 40.0_f64, 12.0_f64);
    let totals: Vec<i64> =
        (0..labels.len()).map(|i| series.iter().map(|(_, v, _)| v.get(i).copied().unwrap_or(0)).sum()).collect();
    let (max, step) = nice_max(totals.iter().copied().max().unwrap_or(0));
    let plot_h = h - bottom - top;
    let slot = (w - left - 8.0) / labels.len().max(1) as f64;
    let bar_w = (slot * 0.62).min(48.0);
    let y = |v: i64| top + plot_h - plot_h * (v as f64) / (max as f64);
    let mut s = chart_start(id, w, h, title, desc);
    let mut tick = 0;
    while tick <= max {
        let ty = y(tick);
        let _ = write!(
            s,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{ty:.1}\" y2=\"{ty:.1}\" stroke=\"#d9dee5\"/>\
             <text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#5b6573\">{tick}</text>",
            w - 4.0,
            left - 6.0,
            ty + 4.0
        );
        tick += step;
    }
    for (i, label) in labels.iter().enumerate() {
        let x = left + slot * i as f64 + (slot - bar_w) / 2.0;
        let mut acc = 0i64;
        for (name, values, colour) in series {
            let v = values.get(i).copied().unwrap_or(0);
            if v == 0 {
                continue;
            }
            let (y1, y0) = (y(acc + v), y(acc));
            acc += v;
            let _ = write!(
                s,
                "<rect x=\"{x:.1}\" y=\"{y1:.1}\" width=\"{bar_w:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}: {}: {v}</title></rect>",
                (y0 - y1).max(0.5),
                colour,
                esc(&month_label(label)),
                esc(name)
            );
        }
        if acc > 0 {
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#1d2430\">{acc}</text>",
                x + bar_w / 2.0,
                y(acc) - 3.0
            );
        }
        // Month below each column; the year under the first column and under each January.
        let full = month_label(label);
        let (mon, year) = full.split_once(' ').unwrap_or((full.as_str(), ""));
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#5b6573\">{}</text>",
            x + bar_w / 2.0,
            h - bottom + 15.0,
            esc(mon)
        );
        if i == 0 || mon == "Jan" {
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#5b6573\">{}</text>",
                x + bar_w / 2.0,
                h - bottom + 29.0,
                esc(year)
            );
        }
    }
    let _ = write!(
        s,
        "<line x1=\"{left}\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#5b6573\"/></svg>",
        w - 4.0,
        y(0),
        y(0)
    );
    s.push_str(&legend(series.iter().map(|(n, _, c)| (n.as_str(), *c))));
    s.push_str("</figure>");
    s
}

fn legend<'a>(items: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut s = String::from("<ul class=\"legend\">");
    for (name, colour) in items {
        let _ = write!(s, "<li style=\"--c:{colour}\">{}</li>", esc(name));
    }
    s.push_str("</ul>");
    s
}

/// One segment of a horizontal bar: `(name, value, colour)`.
type Segment<'a> = (&'a str, i64, &'a str);
/// One horizontal bar: its label and its segments.
type Bar<'a> = (String, Vec<Segment<'a>>);

/// Horizontal bars, one row per label, each row stacked from its segments.
fn hbars(id: &str, title: &str, desc: &str, rows: &[Bar<'_>]) -> String {
    let (w, row_h, label_w) = (720.0_f64, 30.0_f64, 300.0_f64);
    let h = row_h * rows.len().max(1) as f64 + 10.0;
    let max = rows.iter().map(|(_, segs)| segs.iter().map(|s| s.1).sum::<i64>()).max().unwrap_or(0).max(1);
    let plot_w = w - label_w - 50.0;
    let mut s = chart_start(id, w, h, title, desc);
    for (i, (label, segs)) in rows.iter().enumerate() {
        let y = 5.0 + row_h * i as f64;
        let short: String = if label.chars().count() > 46 {
            format!("{}…", label.chars().take(45).collect::<String>())
        } else {
            label.clone()
        };
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"end\" fill=\"#1d2430\">{}<title>{}</title></text>",
            label_w - 8.0,
            y + row_h / 2.0 + 4.0,
            esc(&short),
            esc(label)
        );
        let mut x = label_w;
        let mut total = 0;
        for (name, v, colour) in segs {
            if *v == 0 {
                continue;
            }
            let bw = plot_w * (*v as f64) / (max as f64);
            let _ = write!(
                s,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{colour}\"><title>{}: {}: {v}</title></rect>",
                y + 4.0,
                bw.max(0.5),
                row_h - 8.0,
                esc(label),
                esc(name)
            );
            x += bw;
            total += v;
        }
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" fill=\"#1d2430\">{total}</text>",
            x + 6.0,
            y + row_h / 2.0 + 4.0
        );
    }
    s.push_str("</svg>");
    let mut names: Vec<(&str, &str)> = Vec::new();
    for (_, segs) in rows {
        for (n, _, c) in segs {
            if !names.iter().any(|(m, _)| m == n) {
                names.push((n, c));
            }
        }
    }
    if names.len() > 1 {
        s.push_str(&legend(names.into_iter()));
    }
    s.push_str("</figure>");
    s
}

/// An RFC 3339 instant as Europe/Amsterdam local time, `2026-11-23 12:07`; as given if unreadable.
fn local_time(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.with_timezone(&chrono_tz::Europe::Amsterdam).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|_| rfc3339.to_owned())
}

/// `P20Y` → `20 years (P20Y)`; anything else as it is.
pub(crate) fn retention_words(iso: &str) -> String {
    let body = iso.strip_prefix('P').unwrap_or("");
    let (n, unit) = body.split_at(body.len().saturating_sub(1));
    let unit = match (unit, n) {
        ("Y", "1") => "year",
        ("Y", _) => "years",
        ("M", "1") => "month",
        ("M", _) => "months",
        ("D", "1") => "day",
        ("D", _) => "days",
        _ => return iso.to_owned(),
    };
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return iso.to_owned();
    }
    format!("{n} {unit} ({iso})")
}

fn num(n: impl std::fmt::Display) -> String {
    format!("<td class=\"n\">{n}</td>")
}

/// One numbered section of the page, `<section id>` with its heading; `body` writes the rest.
fn section(s: &mut String, id: &str, heading: &str, body: impl FnOnce(&mut String)) {
    let _ = writeln!(s, "<section id=\"{id}\">\n<h2>{heading}</h2>");
    body(s);
    s.push_str("</section>\n");
}

/// A table: the header row's cells and one row of cells per item (HTML, escaped by the caller).
fn table<'a, T: 'a>(s: &mut String, head: &str, items: impl IntoIterator<Item = &'a T>, cells: impl Fn(&T) -> String) {
    let _ = writeln!(s, "<table><tr>{head}</tr>");
    for x in items {
        let _ = writeln!(s, "<tr>{}</tr>", cells(x));
    }
    s.push_str("</table>\n");
}

/// What `body` writes, or the muted line `none` when there is nothing to show.
fn or_none(s: &mut String, empty: bool, none: &str, body: impl FnOnce(&mut String)) {
    if empty {
        let _ = writeln!(s, "<p class=\"none\">{none}</p>");
    } else {
        body(s);
    }
}

/// The whole page.
pub fn render(r: &Report) -> String {
    let mut s = String::with_capacity(64 * 1024);
    let provider = r.provider.name.clone().unwrap_or_else(|| format!("URA {}", r.provider.ura));
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"overdracht {}\">\n\
         <title>Contracting evidence: {} ({} to {})</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n",
        env!("CARGO_PKG_VERSION"),
        esc(&provider),
        esc(&r.period.from),
        esc(&r.period.to)
    );
    header(&mut s, r, &provider);
    section(&mut s, "agreements", "1. Agreements on data transfer", |s| agreements(s, r));
    section(&mut s, "access", "2. Access within the teams", |s| access(s, r));
    section(&mut s, "teams", "3. Teams and lead practitioners", |s| teams(s, r));
    section(&mut s, "handovers", "4. Handovers", |s| handovers(s, r));
    section(&mut s, "reads", "5. Reads and denials", |s| reads(s, r));
    section(&mut s, "break-glass", "6. Emergency access (break-the-glass)", |s| break_glass(s, &r.break_glass));
    section(&mut s, "audit", "7. The audit trail", |s| chain(s, r));
    let _ = writeln!(
        s,
        "<footer><p>Made by overdracht {} on {} ({}) from its own records: the data-transfer agreements it enforces, \
         the access policy it evaluates, the care teams it stores and its hash-chained NEN 7513 audit trail. \
         Periods are Europe/Amsterdam calendar days; months are Europe/Amsterdam months. The report contains no \
         patient identifiers; nine-digit numbers in team names are masked. Making this report was itself recorded \
         in the audit trail. The same figures as JSON: <span class=\"mono\">GET /report?format=json</span> or \
         <span class=\"mono\">overdracht report --format json</span> (fields described in docs/report.md).</p></footer>",
        env!("CARGO_PKG_VERSION"),
        esc(&r.generated),
        esc(&r.today)
    );
    s.push_str("</main>\n</body>\n</html>\n");
    s
}

fn header(s: &mut String, r: &Report, provider: &str) {
    let ids = match &r.provider.agb {
        Some(agb) => format!("URA {}, AGB {agb}", r.provider.ura),
        None => format!("URA {}", r.provider.ura),
    };
    let _ = write!(
        s,
        "<header>\n<p class=\"sub\">Contracting evidence for the health insurer: GZSP (generalistische zorg voor specifieke patiëntgroepen)</p>\n\
         <h1>Agreements on data transfer and team access: in place and enforced</h1>\n\
         <p class=\"sub\"><strong>{}</strong> ({})</p>\n\
         <p class=\"sub\">Period: {} to {} (inclusive) · states as of {} · generated {}</p>\n</header>\n",
        esc(provider),
        esc(&ids),
        esc(&r.period.from),
        esc(&r.period.to),
        esc(&r.today),
        esc(&r.generated)
    );
    let a = &r.agreements;
    let bg = &r.break_glass;
    let kpis: Vec<(String, String, &str)> = vec![
        (
            a.in_force.len().to_string(),
            format!("agreements in force, {} sender(s)", a.senders_in_force.len()),
            if a.in_force.is_empty() {
                "bad"
            } else if a.expiring_soon.is_empty() {
                "ok"
            } else {
                "warn"
            },
        ),
        (
            r.teams.count.to_string(),
            format!("care teams, {} active", r.teams.active),
            if r.teams.leads_not_eligible + r.teams.without_lead > 0 { "bad" } else { "ok" },
        ),
        (r.handovers.received.to_string(), "handovers received".into(), ""),
        (r.handovers.refused.to_string(), "handovers refused".into(), ""),
        (r.reads.requests.to_string(), "read requests by team members and others".into(), ""),
        (r.denials.total.to_string(), "requests denied by policy".into(), ""),
        (
            format!("{}/{}", bg.reviewed, bg.count),
            "break-the-glass events reviewed".into(),
            if bg.not_reviewed > 0 { "warn" } else { "ok" },
        ),
        (
            if r.audit_chain.intact { "intact".into() } else { "BROKEN".into() },
            format!("audit trail, {} entries", r.audit_chain.entries),
            if r.audit_chain.intact { "ok" } else { "bad" },
        ),
    ];
    s.push_str("<div class=\"kpis\" id=\"summary\">\n");
    for (n, label, class) in kpis {
        let _ = writeln!(
            s,
            "<div class=\"kpi {class}\"><span class=\"n\">{}</span><span class=\"l\">{}</span></div>",
            esc(&n),
            esc(&label)
        );
    }
    s.push_str("</div>\n");
    s.push_str(
        "<nav aria-label=\"Contents\"><ol><li><a href=\"#agreements\">Agreements on data transfer</a></li>\
         <li><a href=\"#access\">Access within the teams</a></li><li><a href=\"#teams\">Teams and lead practitioners</a></li>\
         <li><a href=\"#handovers\">Handovers</a></li><li><a href=\"#reads\">Reads and denials</a></li>\
         <li><a href=\"#break-glass\">Emergency access</a></li><li><a href=\"#audit\">The audit trail</a></li></ol></nav>\n",
    );
}

fn agreements(s: &mut String, r: &Report) {
    let a = &r.agreements;
    s.push_str(
        "<p>overdracht accepts a handover only under an agreement in force between the sender and this provider, \
         and removes every data category the agreement does not cover before anything is stored.</p>\n",
    );
    if a.in_force.is_empty() {
        s.push_str("<div class=\"callout bad\"><p><strong>No agreement is in force.</strong> Every handover is refused.</p></div>\n");
    }
    if !a.expiring_soon.is_empty() {
        let _ = writeln!(
            s,
            "<div class=\"callout\"><p><strong>Expiring within {} days:</strong> {}. Renew them to keep receiving data.</p></div>",
            a.expiring_soon_days,
            esc(&a.expiring_soon.join(", "))
        );
    }
    for ag in &a.in_force {
        let status = match (ag.status, ag.days_left) {
            ("expiring-soon", Some(d)) => badge("b-warn", &format!("in force, expires in {d} days")),
            _ => badge("b-ok", "in force"),
        };
        let mut ids = Vec::new();
        if let Some(v) = &ag.sender.agb {
            ids.push(format!("AGB {v}"));
        }
        if let Some(v) = &ag.sender.ura {
            ids.push(format!("URA {v}"));
        }
        let kind = match ag.sender.kind {
            "gp-practice" => "GP practice (huisartsenpraktijk)",
            "hospital-department" => "hospital department",
            other => other,
        };
        let dept = ag.sender.department.as_deref().map(|d| format!(", {}", esc(d))).unwrap_or_default();
        let cats: Vec<String> = ag.categories.iter().map(|c| esc(&c.display)).collect();
        let _ = writeln!(
            s,
            "<div class=\"card\"><h3>{} {status}</h3><p>{}</p><dl>\
             <dt>Sender</dt><dd>{} — {}{dept} ({})</dd>\
             <dt>Data categories</dt><dd>{} ({})</dd>\
             <dt>Valid</dt><dd>{} to {}</dd>\
             <dt>Legal basis</dt><dd>{}</dd>\
             <dt>Purpose</dt><dd>{}</dd>\
             <dt>Retention</dt><dd>{}</dd>\
             <dt>Agreement</dt><dd class=\"mono\">{}</dd></dl></div>",
            esc(&ag.sender.name),
            esc(&ag.title),
            esc(&ag.sender.name),
            esc(kind),
            esc(&ids.join(", ")),
            cats.join(", "),
            cats.len(),
            esc(&ag.valid_from),
            esc(ag.valid_to.as_deref().unwrap_or("open-ended")),
            esc(ag.legal_basis_text),
            esc(&ag.purpose),
            esc(&retention_words(&ag.retention)),
            esc(&ag.label)
        );
    }
    if !a.not_in_force.is_empty() {
        s.push_str("<h3>Agreements not in force today</h3>\n");
        let head = "<th>Agreement</th><th>Sender</th><th>Valid</th><th>State</th>";
        table(s, head, &a.not_in_force, |ag| {
            format!(
                "<td class=\"mono\">{}</td><td>{}</td><td>{} to {}</td><td>{}</td>",
                esc(&ag.label),
                esc(&ag.sender.name),
                esc(&ag.valid_from),
                esc(ag.valid_to.as_deref().unwrap_or("open-ended")),
                badge("b-muted", if ag.status == "expired" { "expired" } else { "not yet in force" })
            )
        });
    }
}

fn access(s: &mut String, r: &Report) {
    let a = &r.access;
    let _ = writeln!(
        s,
        "<p>Every request to read patient data is decided by the access policy ({} policy, evaluated for each request) \
         from the reader's identity, their place in the patient's care team, the agreements, the patient's consent \
         and the state of the treatment. In words:</p>",
        if a.policy == "shipped" { "the shipped" } else { "an adapted" }
    );
    s.push_str("<ul>\n");
    for st in &a.statements {
        let _ = writeln!(s, "<li>{}</li>", esc(st));
    }
    s.push_str("</ul>\n<table><tr><th>Who</th><th>May read</th></tr>\n");
    for rule in &a.rules {
        let what = match rule.scope {
            "all" => "every category the agreements brought".to_owned(),
            "all-except" => format!(
                "every category the agreements brought, except {}",
                rule.categories.iter().map(|c| c.display.as_str()).collect::<Vec<_>>().join(", ")
            ),
            _ if rule.categories.is_empty() => "nothing".to_owned(),
            _ => format!("only {}", rule.categories.iter().map(|c| c.display.as_str()).collect::<Vec<_>>().join(", ")),
        };
        let _ = writeln!(s, "<tr><td>{}</td><td>{}</td></tr>", esc(&rule.who), esc(&what));
    }
    s.push_str("</table>\n");
}

fn evaluation_badge(t: &TeamOut) -> String {
    match t.evaluation {
        "overdue" => badge("b-bad", "overdue"),
        "not-planned" => badge("b-bad", "not planned"),
        "due" => badge("b-warn", "due"),
        "planned" => badge("b-ok", "planned"),
        "not-required" => badge("b-muted", "not required (individual SO/AVG care)"),
        _ => badge("b-muted", "treatment ended"),
    }
}

fn teams(s: &mut String, r: &Report) {
    let t = &r.teams;
    let _ = writeln!(
        s,
        "<p>{} care team(s), {} active. Lead practitioners not eligible: {}; active teams without a lead: {}. \
         Evaluations (at least every six months) due within {} days: {}; overdue or not planned: {}.</p>",
        t.count,
        t.active,
        t.leads_not_eligible,
        t.without_lead,
        t.evaluation_due_days,
        t.evaluations_due,
        t.evaluations_overdue
    );
    if t.unreadable > 0 {
        let _ = writeln!(
            s,
            "<div class=\"callout bad\"><p>{} stored team(s) could not be read and are not listed.</p></div>",
            t.unreadable
        );
    }
    if t.teams.is_empty() {
        s.push_str("<p class=\"none\">No care teams are stored for this provider.</p>\n");
        return;
    }
    s.push_str(
        "<table><tr><th>Team</th><th>Care form</th><th>Treatment</th><th>Lead practitioner</th><th>Eligible</th>\
         <th>Next evaluation</th></tr>\n",
    );
    for team in &t.teams {
        let lead = match &team.lead {
            Some(l) => format!(
                "{}<br><span class=\"sub\">{}, UZI {}{}</span>",
                esc(l.name.as_deref().unwrap_or("(no name)")),
                esc(l.role_name),
                esc(&l.uzi),
                l.big.as_deref().map(|b| format!(", BIG {}", esc(b))).unwrap_or_default()
            ),
            None => "<span class=\"none\">none</span>".to_owned(),
        };
        let eligible = if team.lead_eligible { badge("b-ok", "yes") } else { badge("b-bad", "no") };
        let state = match team.exit_reason {
            Some(why) => format!("ended: {}", esc(why)),
            None => "active".to_owned(),
        };
        let _ = writeln!(
            s,
            "<tr><td>{}<br><span class=\"sub mono\">{}</span></td><td>{}</td><td>{state}</td><td>{lead}</td>\
             <td>{eligible}<br><span class=\"sub\">{}</span></td><td>{} {}</td></tr>",
            esc(team.name.as_deref().unwrap_or("(no name)")),
            esc(&team.id),
            esc(team.care_form_text),
            esc(&team.lead_eligibility),
            esc(team.next_evaluation.as_deref().unwrap_or("—")),
            evaluation_badge(team)
        );
    }
    s.push_str("</table>\n");
    let findings: Vec<(&TeamOut, &String)> =
        t.teams.iter().flat_map(|team| team.findings.iter().map(move |f| (team, f))).collect();
    if !findings.is_empty() {
        s.push_str("<h3>GZSP rule findings today</h3>\n<ul>\n");
        for (team, f) in findings {
            let _ = writeln!(s, "<li><span class=\"mono\">{}</span>: {}</li>", esc(&team.id), esc(f));
        }
        s.push_str("</ul>\n");
    }
}

fn handovers(s: &mut String, r: &Report) {
    let h = &r.handovers;
    let _ = writeln!(
        s,
        "<p>{} handover(s) received ({} of them the same record sent again, stored once) and {} refused in the period.</p>",
        h.received, h.received_again, h.refused
    );
    let months = &r.period.months;
    let mut senders: Vec<String> = Vec::new();
    for m in &h.per_month {
        if !senders.contains(&m.sender) {
            senders.push(m.sender.clone());
        }
    }
    let mut labels: Vec<String> = months.clone();
    for m in &h.per_month {
        if !labels.contains(&m.month) {
            labels.push(m.month.clone());
        }
    }
    // One colour per sender that sent something; refusals (of any sender) on top, in red.
    let mut series: Vec<Series<'_>> = Vec::new();
    for sn in &senders {
        let v: Vec<i64> = labels
            .iter()
            .map(|m| h.per_month.iter().filter(|x| &x.month == m && &x.sender == sn).map(|x| x.received).sum())
            .collect();
        if v.iter().any(|n| *n > 0) {
            series.push((sn.clone(), v, PALETTE[series.len() % PALETTE.len()]));
        }
    }
    let refused: Vec<i64> =
        labels.iter().map(|m| h.per_month.iter().filter(|x| &x.month == m).map(|x| x.refused).sum()).collect();
    if refused.iter().any(|n| *n > 0) {
        series.push(("refused (any sender)".to_owned(), refused, DENIED));
    }
    s.push_str(&stacked_columns(
        "chart-handovers",
        "Handovers received per month, by sender",
        &format!(
            "{} handovers received from {} to {}; the table below gives the same figures.",
            h.received, r.period.from, r.period.to
        ),
        &labels,
        &series,
    ));
    or_none(s, senders.is_empty(), "No handovers in this period.", |s| {
        s.push_str("<table><tr><th>Month</th>");
        for sn in &senders {
            let _ = write!(s, "<th class=\"n\">{} received</th><th class=\"n\">refused</th>", esc(sn));
        }
        s.push_str("</tr>\n");
        for m in &labels {
            let _ = write!(s, "<tr><td class=\"m\">{}</td>", esc(&month_label(m)));
            for sn in &senders {
                let x = h.per_month.iter().find(|x| &x.month == m && &x.sender == sn);
                s.push_str(&num(x.map_or(0, |x| x.received)));
                s.push_str(&num(x.map_or(0, |x| x.refused)));
            }
            s.push_str("</tr>\n");
        }
        s.push_str("</table>\n");
    });
    if !h.per_sender.is_empty() {
        s.push_str("<h3>Per sender</h3>\n");
        let head = "<th>Sender</th><th>Identifiers</th><th>Agreement</th><th class=\"n\">Received</th><th class=\"n\">Sent again</th><th class=\"n\">Refused</th>";
        table(s, head, &h.per_sender, |p| {
            format!(
                "<td>{}</td><td>{}</td><td>{}</td>{}{}{}",
                esc(&p.sender),
                esc(&p.ids.join(", ")),
                if p.has_agreement { badge("b-ok", "yes") } else { badge("b-bad", "none") },
                num(p.received),
                num(p.received_again),
                num(p.refused)
            )
        });
    }
    s.push_str("<h3>Refused handovers, by rule</h3>\n");
    or_none(s, h.refused_by_rule.is_empty(), "None refused.", |s| {
        rule_table(s, "Refused", &h.refused_by_rule);
    });
    s.push_str("<h3>Data categories removed (data minimisation)</h3>\n");
    or_none(
        s,
        h.removed_categories.is_empty(),
        "No category had to be removed: every handover stayed within its agreement.",
        |s| {
            let head = "<th>Sender</th><th>Category</th><th>Why</th><th class=\"n\">Handovers</th><th class=\"n\">Resources removed</th>";
            table(s, head, &h.removed_categories, |x| {
                format!(
                    "<td>{}</td><td>{}</td><td>{}</td>{}{}",
                    esc(&x.sender),
                    esc(&x.display),
                    esc(x.reason.as_deref().unwrap_or("")),
                    num(x.handovers),
                    num(x.resources)
                )
            });
        },
    );
}

/// Plain words for the rule ids of refusals and denials that overdracht ships (kept with
/// the rule ids, in [`crate::policy::rules`]).
pub fn rule_words(rule: &str) -> &'static str {
    crate::policy::rules::words(rule)
}

fn reads(s: &mut String, r: &Report) {
    let rd = &r.reads;
    let d = &r.denials;
    let _ = writeln!(
        s,
        "<p>{} read request(s) on data this provider holds or by its staff: {} permitted, {} denied. Each request \
         (a read, a search, a whole-record export, or an emergency access) is one audit entry, whatever the number of \
         resources it returned.</p>",
        rd.requests, rd.permitted, rd.denied
    );
    let rows: Vec<Bar<'_>> = rd
        .by_role
        .iter()
        .map(|x| {
            (
                format!("{} ({})", x.role_name, x.uzi_role),
                vec![
                    ("permitted", x.permitted - x.break_glass, PALETTE[0]),
                    ("break-the-glass", x.break_glass, PALETTE[1]),
                    ("denied", x.denied, DENIED),
                ],
            )
        })
        .collect();
    or_none(s, rows.is_empty(), "No reads in this period.", |s| {
        s.push_str(&hbars(
            "chart-reads",
            "Read requests per profession (UZI role)",
            "Permitted, break-the-glass and denied read requests per UZI role; the table below gives the same figures.",
            &rows,
        ));
        let head = "<th>Profession (UZI role)</th><th class=\"n\">Reads</th><th class=\"n\">Searches</th><th class=\"n\">Whole record</th><th class=\"n\">Break-the-glass</th><th class=\"n\">Denied</th>";
        table(s, head, &rd.by_role, |x| {
            format!(
                "<td>{} ({})</td>{}{}{}{}{}",
                esc(x.role_name),
                esc(&x.uzi_role),
                num(x.read),
                num(x.search),
                num(x.export),
                num(x.break_glass),
                num(x.denied)
            )
        });
    });
    s.push_str("<h3>Permitted reads per team role</h3>\n");
    or_none(s, rd.by_team_role.is_empty(), "No permitted reads in this period.", |s| {
        let rows: Vec<Bar<'_>> = rd
            .by_team_role
            .iter()
            .map(|x| {
                (
                    x.role_name.clone(),
                    vec![
                        ("reads", x.read, PALETTE[0]),
                        ("searches", x.search, PALETTE[2]),
                        ("whole record", x.export, PALETTE[3]),
                    ],
                )
            })
            .collect();
        s.push_str(&hbars(
            "chart-team-reads",
            "Permitted read requests per care-team role",
            "Reads, searches and whole-record exports per role in the patient's care team; the table below gives the same figures.",
            &rows,
        ));
        let head = "<th>Team role</th><th class=\"n\">Reads</th><th class=\"n\">Searches</th><th class=\"n\">Whole record</th><th class=\"n\">Total</th>";
        table(s, head, &rd.by_team_role, |x| {
            format!("<td>{}</td>{}{}{}{}", esc(&x.role_name), num(x.read), num(x.search), num(x.export), num(x.total))
        });
    });
    let _ = writeln!(
        s,
        "<h3>Denials by rule</h3>\n<p>{} request(s) refused by policy in the period (reads, searches, exports, team \
         and consent changes, audit views and reports; refused handovers are counted in section 4).</p>",
        d.total
    );
    or_none(s, d.by_rule.is_empty(), "Nothing was denied.", |s| {
        let rows: Vec<Bar<'_>> =
            d.by_rule.iter().map(|x| (x.rule.clone(), vec![("denied", x.count, DENIED)])).collect();
        s.push_str(&hbars(
            "chart-denials",
            "Denials by policy rule",
            "Requests refused by policy, per rule that refused them; the table below gives the same figures.",
            &rows,
        ));
        rule_table(s, "Denied", &d.by_rule);
    });
}

/// A table of counts per policy rule, with the rule's meaning.
fn rule_table(s: &mut String, counted: &str, rows: &[RuleCount]) {
    let head = format!("<th>Rule</th><th>Meaning</th><th class=\"n\">{counted}</th>");
    table(s, &head, rows, |x| {
        format!("<td class=\"mono\">{}</td><td>{}</td>{}", esc(&x.rule), esc(rule_words(&x.rule)), num(x.count))
    });
}

fn break_glass(s: &mut String, b: &BreakGlassSection) {
    let _ = writeln!(
        s,
        "<p>{} emergency access(es) in the period; {} reviewed by the privacy officer, {} not (yet) reviewed.</p>",
        b.count, b.reviewed, b.not_reviewed
    );
    if b.truncated {
        s.push_str("<div class=\"callout\"><p>Only the first events are listed and counted.</p></div>\n");
    }
    if b.events.is_empty() {
        s.push_str("<p class=\"none\">No emergency access in this period.</p>\n");
        return;
    }
    s.push_str(
        "<p>The stated reasons and the privacy officer's notes stay in the audit trail (they may describe the \
         patient); this report shows that a reason was stated and the officer's conclusion.</p>\n\
         <table><tr><th>When</th><th>Who</th><th>Reason stated</th><th>Review</th></tr>\n",
    );
    for e in &b.events {
        let review = match &e.review {
            Some(rv) => format!(
                "{}<br><span class=\"sub\">{} by UZI {}: {}</span>",
                badge("b-ok", "reviewed"),
                esc(&local_time(&rv.recorded)),
                esc(rv.reviewer_uzi.as_deref().unwrap_or("?")),
                esc(rv.conclusion)
            ),
            None => badge("b-warn", "not reviewed"),
        };
        let _ = writeln!(
            s,
            "<tr><td>{}<br><span class=\"sub mono\">AuditEvent/{}</span></td><td>{} (UZI {}, URA {})</td><td>{}</td><td>{review}</td></tr>",
            esc(&local_time(&e.recorded)),
            esc(&e.id),
            esc(e.role_name.unwrap_or("?")),
            esc(e.user_uzi.as_deref().unwrap_or("?")),
            esc(e.user_ura.as_deref().unwrap_or("?")),
            if e.reason_stated { "yes" } else { "no" }
        );
    }
    s.push_str("</table>\n");
}

fn chain(s: &mut String, r: &Report) {
    let c = &r.audit_chain;
    if c.intact {
        let _ = writeln!(
            s,
            "<div class=\"callout ok\"><p><strong>Intact.</strong> All {} entries were checked when this report was made: \
             every entry's SHA-256 hash covers its content and its predecessor's hash, so a changed, removed, inserted or \
             reordered entry would show.</p></div>",
            c.checked
        );
    } else {
        let _ = writeln!(
            s,
            "<div class=\"callout bad\"><p><strong>The audit trail is broken:</strong> {}. Entries before that point ({}) \
             can be trusted; the figures above may not.</p></div>",
            esc(&c.status),
            c.checked
        );
    }
    let _ = writeln!(
        s,
        "<dl><dt>Entries</dt><dd>{}</dd><dt>Head hash</dt><dd class=\"mono\">{}</dd><dt>Last entry</dt><dd>{}</dd></dl>\
         <p>Anyone can check this later: <span class=\"mono\">overdracht audit verify --anchor {}:{}</span> confirms that \
         the trail still contains this head.</p>",
        c.entries,
        esc(&c.head_hash),
        esc(c.head_time.as_deref().unwrap_or("—")),
        c.entries,
        esc(&c.head_hash)
    );
}
