//! `report --html` and the terminal charts: the page's structure and well-formedness (parsed by
//! an HTML5 parser), its numbers against `templates`, `deploy`, `cost` and `inventory stats`
//! JSON, offline-ness, size with a 1,000-node inventory, a real headless Chromium rendering, and
//! golden terminal charts at 80 columns.

use crate::support::{capsule, Capsule};
use scraper::{ElementRef, Html, Selector};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const HEADER: &str = "deploy_id,name,provider,template,plan,region,status,price_hourly,price_monthly,currency,created_at,started_at,stopped_at,deleted_at";

/// A small history: nodes deleted in early 2024 (fixed figures), and two still running (they
/// make the month-to-date and projection figures non-zero).
const NODES: &str = "r1,alpha,digitalocean,do-small,s-1vcpu-1gb,nyc3,deleted,0.00893,6,USD,2024-01-05T00:00:00Z,2024-01-05T00:00:00Z,,2024-02-20T12:00:00Z
r2,beta,vultr,vultr-vc2-1,vc2-1c-1gb,ewr,deleted,0.007,5,USD,2024-01-20T00:00:00Z,2024-01-20T00:00:00Z,2024-02-01T00:00:00Z,2024-03-05T00:00:00Z
r3,gamma,scaleway,scw-dev1-m,DEV1-M,par1,deleted,0.0198,14.45,EUR,2024-02-10T00:00:00Z,2024-02-10T00:00:00Z,,2024-03-10T00:00:00Z
r4,delta,linode,linode-2gb,g6-standard-1,us-east,running,0.018,12,USD,2024-03-01T00:00:00Z,2024-03-01T00:00:00Z,,
r5,epsilon,hivelocity,hive-large,BM-2020-3,atlanta,stopped,0.5,365,USD,2024-03-15T00:00:00Z,2024-03-15T00:00:00Z,2024-03-20T00:00:00Z,
";

const FILTER: &[&str] = &["--min-cpu", "2", "--min-memory", "4", "--max-price", "0.1"];
const WINDOW: &[&str] = &["--since", "2024-01-01", "--until", "2024-04-01"];

fn seeded(csv_rows: &str) -> Capsule {
    let c = capsule();
    let path = c.home().join("nodes.csv");
    std::fs::write(&path, format!("{HEADER}\n{csv_rows}")).unwrap();
    let out = c.run_args(&["openmesh", "inventory", "import", path.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    c
}

fn report_html(c: &Capsule, extra: &[&str]) -> String {
    let mut args = vec!["openmesh", "report", "--html", "-"];
    args.extend_from_slice(extra);
    let out = c.run_args(&args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.stdout
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

fn text(e: ElementRef<'_>) -> String {
    e.text().collect::<String>().trim().to_string()
}

/// The body rows of the first table under `scope`, as cell texts, with each row's class.
fn table(doc: &Html, scope: &str) -> Vec<(Vec<String>, String)> {
    let t = doc
        .select(&sel(&format!("{scope} table")))
        .next()
        .unwrap_or_else(|| panic!("no table in {scope}"));
    t.select(&sel("tbody tr"))
        .map(|tr| {
            (
                tr.select(&sel("td")).map(text).collect(),
                tr.value().attr("class").unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn f(cell: &str) -> f64 {
    cell.parse()
        .unwrap_or_else(|_| panic!("'{cell}' is not a number"))
}

fn json_f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"))
}

/// Parse as HTML5 and require no parse error at all.
#[track_caller]
fn well_formed(html: &str) -> Html {
    let doc = Html::parse_document(html);
    assert!(doc.errors.is_empty(), "HTML parse errors: {:?}", doc.errors);
    doc
}

#[test]
fn sections_charts_and_tables_agree_with_the_cli() {
    let c = seeded(NODES);
    let mut args: Vec<&str> = FILTER.to_vec();
    args.extend_from_slice(WINDOW);
    // The month-to-date figures move with the clock: read `cost` before and after the report,
    // and compare only a report whose neighbours agree (the figure is monotone in time).
    let cost_args = |c: &Capsule| {
        let mut a = vec!["openmesh", "cost", "-o", "json"];
        a.extend_from_slice(WINDOW);
        c.run_args(&a).json()
    };
    let (html, cost) = (0..20)
        .find_map(|_| {
            let before = cost_args(&c);
            let html = report_html(&c, &args);
            let after = cost_args(&c);
            (before == after).then_some((html, before))
        })
        .expect("cost -o json kept changing between runs");
    let doc = well_formed(&html);

    // Sections, each with a chart.
    for id in ["landscape", "value", "cost", "fleet", "trust"] {
        let section = doc
            .select(&sel(&format!("section#{id}")))
            .next()
            .unwrap_or_else(|| panic!("no section {id}"));
        let charts = section.select(&sel("svg.chart")).count();
        assert!(charts >= 1, "section {id} has no chart");
        for figure in section.select(&sel("figure")) {
            let Some(svg) = figure.select(&sel("svg.chart")).next() else {
                continue;
            };
            let id = svg.value().attr("id").unwrap();
            assert!(svg.select(&sel("title")).next().is_some(), "{id}: no title");
            let labels: Vec<String> = svg
                .select(&sel("text.title-x, text.title-y"))
                .map(text)
                .collect();
            assert_eq!(labels.len(), 2, "{id}: axis labels {labels:?}");
            assert!(labels.iter().all(|l| !l.is_empty()), "{id}: {labels:?}");
            assert!(
                figure.select(&sel(".legend")).next().is_some(),
                "{id}: no legend"
            );
            assert!(
                figure.select(&sel("table")).next().is_some(),
                "{id}: no table"
            );
        }
    }
    // Units on the axes.
    assert!(html.contains("USD per hour (log scale)"));
    assert!(html.contains("vCPU (log scale, base 2)"));
    assert!(html.contains("USD per day"));

    // The landscape table is `templates -o json`, row for row.
    let mut t_args = vec!["openmesh", "templates", "-o", "json"];
    t_args.extend_from_slice(FILTER);
    let templates = c.run_args(&t_args).json();
    let templates = templates.as_array().unwrap();
    let rows = table(&doc, "figure#landscape-cpu");
    assert_eq!(rows.len(), templates.len());
    for ((cells, _), t) in rows.iter().zip(templates) {
        assert_eq!(cells[0], t["id"].as_str().unwrap());
        assert_eq!(cells[1], t["provider"].as_str().unwrap());
        assert_eq!(f(&cells[2]), json_f(&t["cpu"]));
        assert_eq!(f(&cells[3]), json_f(&t["price_hourly_usd"]));
        assert_eq!(f(&cells[4]), json_f(&t["price_monthly_usd"]));
    }
    let mem = table(&doc, "figure#landscape-memory");
    for ((cells, _), t) in mem.iter().zip(templates) {
        assert_eq!(f(&cells[2]), json_f(&t["memory_gb"]));
    }
    // One scatter point per template in each landscape chart.
    for fig in ["landscape-cpu", "landscape-memory"] {
        let marks = doc
            .select(&sel(&format!("svg#{fig}-chart g.marks .mark")))
            .count();
        assert_eq!(marks, templates.len(), "{fig}");
    }

    // The value section highlights what `deploy` chooses, labelled as deploy labels it.
    let (head, choice_line) = deploy_choice(&c);
    let choice_id = choice_line.split(' ').next().unwrap().to_string();
    assert_eq!(choice_id, "scw-dev1-m");
    let callout = text(doc.select(&sel("#value-choice")).next().unwrap());
    assert!(callout.contains(&head), "{callout}");
    assert!(callout.contains(&choice_line), "{callout}");
    for fig in ["figure#value-cpu", "figure#value-memory_gb"] {
        let hl: Vec<String> = table(&doc, fig)
            .into_iter()
            .filter(|(_, class)| class == "highlight")
            .map(|(cells, _)| cells[1].clone())
            .collect();
        assert_eq!(hl, std::slice::from_ref(&choice_id), "{fig}");
        let labelled = doc
            .select(&sel(&format!("{fig} svg text.callout")))
            .map(text)
            .collect::<Vec<_>>();
        assert!(labelled.contains(&choice_id), "{fig}: {labelled:?}");
    }
    // Ranked: per-vCPU figures ascending, and each is compare's price_per_cpu_usd.
    let ranked = table(&doc, "figure#value-cpu");
    let per: Vec<f64> = ranked.iter().map(|(c, _)| f(&c[3])).collect();
    assert!(per.windows(2).all(|w| w[0] <= w[1]), "{per:?}");
    let ids: Vec<&str> = ranked.iter().map(|(c, _)| c[1].as_str()).collect();
    let mut cmp_args = vec!["openmesh", "compare", "-o", "json"];
    cmp_args.extend(ids.iter().copied());
    let compare = c.run_args(&cmp_args).json();
    for ((cells, _), row) in ranked.iter().zip(compare.as_array().unwrap()) {
        assert_eq!(cells[1], row["id"].as_str().unwrap());
        assert_eq!(f(&cells[3]), json_f(&row["price_per_cpu_usd"]));
    }

    // Cost: the provider table is `cost -o json` for the same window, the total row included.
    let cost = cost.as_array().unwrap();
    let rows = table(&doc, "figure#cost-month");
    assert_eq!(rows.len(), cost.len());
    for ((cells, _), r) in rows.iter().zip(cost) {
        assert_eq!(cells[0], r["group"].as_str().unwrap());
        assert_eq!(cells[1], r["currency"].as_str().unwrap());
        assert_eq!(f(&cells[2]), json_f(&r["nodes"]));
        assert_eq!(f(&cells[3]), json_f(&r["running_now"]));
        assert_eq!(f(&cells[4]), json_f(&r["hours"]));
        assert_eq!(f(&cells[5]), json_f(&r["cost"]));
        assert_eq!(f(&cells[6]), json_f(&r["cost_usd"]));
        assert_eq!(f(&cells[7]), json_f(&r["month_to_date_usd"]));
        assert_eq!(f(&cells[8]), json_f(&r["projected_month_usd"]));
    }
    let total = cost.last().unwrap();
    assert_eq!(total["group"], "total");
    assert!(json_f(&total["projected_month_usd"]) > 0.0);
    // The daily table tiles the window: 91 days whose sum is cost's total.
    let daily = table(&doc, "figure#cost-daily");
    let (days, window_row) = daily.split_at(daily.len() - 1);
    assert_eq!(days.len(), 91);
    assert_eq!(days[0].0[0], "2024-01-01");
    assert_eq!(days[90].0[0], "2024-03-31");
    let sum: f64 = days.iter().map(|(c, _)| f(c.last().unwrap())).sum();
    // Each day's total is `cost --by day`'s figure (it lists only the days with spend).
    let mut by_day = vec!["openmesh", "cost", "--by", "day", "-o", "json"];
    by_day.extend_from_slice(WINDOW);
    let by_day = c.run_args(&by_day).json();
    let by_day = by_day.as_array().unwrap();
    assert!(by_day.len() > 60, "{}", by_day.len());
    for b in by_day.iter().filter(|b| b["period"] != "total") {
        let (cells, _) = days
            .iter()
            .find(|(c, _)| c[0] == b["period"].as_str().unwrap())
            .unwrap_or_else(|| panic!("no row for {}", b["period"]));
        assert_eq!(
            f(cells.last().unwrap()),
            json_f(&b["cost_usd"]),
            "{}",
            b["period"]
        );
    }
    let total_usd = json_f(&total["cost_usd"]);
    assert!((sum - total_usd).abs() < 1e-4, "{sum} vs {total_usd}");
    assert_eq!(f(window_row[0].0.last().unwrap()), total_usd);
    let bars = doc
        .select(&sel("svg#cost-daily-chart g.marks rect.mark"))
        .count();
    assert!(
        bars >= 60,
        "one column part per day and provider with spend: {bars}"
    );

    // Fleet: `inventory stats -o json`, provider rows.
    let stats = c
        .run_args(&["openmesh", "inventory", "stats", "-o", "json"])
        .json();
    let by_provider: Vec<&Value> = stats
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["by"] == "provider")
        .collect();
    let rows = table(&doc, "figure#fleet-provider");
    assert_eq!(rows.len(), by_provider.len());
    for ((cells, _), r) in rows.iter().zip(&by_provider) {
        assert_eq!(cells[0], r["value"].as_str().unwrap());
        assert_eq!(f(&cells[1]), json_f(&r["nodes"]));
        assert_eq!(f(&cells[2]), json_f(&r["running"]));
        assert_eq!(f(&cells[3]), json_f(&r["stopped"]));
        assert_eq!(f(&cells[5]), json_f(&r["hourly_usd"]));
    }
    assert!(table(&doc, "figure#fleet-region")
        .iter()
        .any(|(c, _)| c[0] == "us-east"));
    assert!(table(&doc, "figure#fleet-status")
        .iter()
        .any(|(c, _)| c[0] == "stopped"));

    // Trust: every provider's price date, age and staleness as `catalog status` has them; the
    // retired one marked; the exchange rate with its date.
    let status = c
        .run_args(&["openmesh", "catalog", "status", "-o", "json"])
        .json();
    let rows = table(&doc, "figure#trust-age");
    assert_eq!(rows.len(), status.as_array().unwrap().len());
    for p in status.as_array().unwrap() {
        let id = p["provider"].as_str().unwrap();
        let (cells, class) = rows.iter().find(|(c, _)| c[0] == id).unwrap();
        assert_eq!(cells[2], p["prices_as_of"].as_str().unwrap());
        assert_eq!(cells[3], p["layer"].as_str().unwrap());
        assert_eq!(f(&cells[4]), json_f(&p["age_days"]));
        assert_eq!(cells[5] == "yes", p["stale"] == true, "{cells:?}");
        assert_eq!(cells[7], p["source"].as_str().unwrap());
        if p["status"] == "retired" {
            assert_eq!(class, "retired");
            assert!(cells[1].starts_with("retired "), "{cells:?}");
        } else if p["stale"] == true {
            assert_eq!(class, "warn");
        }
    }
    let rates = table(&doc, "figure#trust-rates");
    let catalog = capsule::catalog::embedded().unwrap();
    assert_eq!(rates.len(), catalog.rates.len());
    for ((cells, _), r) in rates.iter().zip(&catalog.rates) {
        assert_eq!(cells[0], r.currency);
        assert_eq!(f(&cells[1]), r.usd);
        assert_eq!(cells[2], r.as_of);
        assert_eq!(cells[3], r.source);
    }
    let rate = &catalog.rates[0];
    assert!(
        html.contains(&format!(
            "1 {} = {} USD (as of {})",
            rate.currency, rate.usd, rate.as_of
        )),
        "the rate and its date are stated"
    );

    offline(&html);
}

/// The first two lines of `deploy`'s explanation for the same constraints: the heading (without
/// its colon) and the chosen offer.
fn deploy_choice(c: &Capsule) -> (String, String) {
    let deploy = c.run_args(&[
        "openmesh",
        "deploy",
        "--min-cpu",
        "2",
        "--min-memory",
        "4",
        "--budget",
        "0.1",
        "--include-unconfigured",
        "--dry-run",
    ]);
    assert_eq!(deploy.code, 0, "{}", deploy.stderr);
    let mut lines = deploy.stdout.lines();
    let head = lines.next().unwrap().trim_end_matches(':').to_string();
    let choice = lines.next().unwrap().trim().to_string();
    (head, choice)
}

/// No `src=` or `href=` takes the page off the machine.
#[track_caller]
fn offline(html: &str) {
    let doc = Html::parse_document(html);
    for e in doc.select(&sel("[src], [href]")) {
        for attr in ["src", "href"] {
            if let Some(v) = e.value().attr(attr) {
                let v = v.trim().to_ascii_lowercase();
                assert!(
                    !v.starts_with("http:") && !v.starts_with("https:") && !v.starts_with("//"),
                    "{attr}={v}"
                );
            }
        }
    }
    // Belt and braces: also in the raw text, whatever the quoting.
    let lower = html.to_ascii_lowercase();
    for attr in ["src=", "href="] {
        for (i, _) in lower.match_indices(attr) {
            let rest = lower[i + attr.len()..].trim_start_matches(['"', '\'']);
            assert!(
                !rest.starts_with("http://") && !rest.starts_with("https://"),
                "{}",
                &html[i..(i + 80).min(html.len())]
            );
        }
    }
    assert!(!lower.contains("<script"), "the report needs no script");
    assert!(!lower.contains("<link"), "the report loads no stylesheet");
}

/// `n` nodes over the last 60 days on five providers; about a quarter deleted.
fn many_nodes(n: usize) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let fmt = |t: i64| {
        let out = Command::new("date")
            .args(["-u", "-d", &format!("@{t}"), "+%Y-%m-%dT%H:%M:%SZ"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    // A handful of distinct instants, formatted once (date(1) per node would be slow).
    let stamps: Vec<String> = (0..60).map(|d| fmt(now - (d + 1) * 86_400)).collect();
    let kinds = [
        (
            "digitalocean",
            "do-small,s-1vcpu-1gb",
            "nyc3",
            "0.00893",
            "6",
            "USD",
        ),
        (
            "vultr",
            "vultr-vc2-1,vc2-1c-1gb",
            "ewr",
            "0.007",
            "5",
            "USD",
        ),
        (
            "linode",
            "linode-2gb,g6-standard-1",
            "us-east",
            "0.018",
            "12",
            "USD",
        ),
        (
            "scaleway",
            "scw-dev1-m,DEV1-M",
            "par1",
            "0.0198",
            "14.45",
            "EUR",
        ),
        (
            "hivelocity",
            "hive-large,BM-2020-3",
            "atlanta",
            "0.5",
            "365",
            "USD",
        ),
    ];
    let mut out = String::new();
    for i in 0..n {
        let (p, t, r, h, m, cur) = kinds[i % kinds.len()];
        let born = 10 + (i * 7) % 50;
        let created = &stamps[born];
        let (status, deleted) = if i % 4 == 0 {
            ("deleted", stamps[born - 5].as_str())
        } else {
            ("running", "")
        };
        out.push_str(&format!(
            "m{i},node-{i:04},{p},{t},{r},{status},{h},{m},{cur},{created},{created},,{deleted}\n"
        ));
    }
    out
}

#[test]
fn a_thousand_nodes_fit_in_a_megabyte() {
    let c = seeded(&many_nodes(1000));
    let file = c.home().join("report.html");
    let out = c.run_args(&["openmesh", "report", "--html", file.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.stderr_has("wrote");
    let html = std::fs::read_to_string(&file).unwrap();
    assert!(html.len() <= 1024 * 1024, "{} bytes", html.len());
    let doc = well_formed(&html);
    let live: u64 = table(&doc, "figure#fleet-provider")
        .iter()
        .map(|(c, _)| f(&c[1]) as u64)
        .sum();
    assert_eq!(live, 750);
    let daily = table(&doc, "figure#cost-daily");
    assert_eq!(daily.len(), 31, "30 days and the window's total");
    offline(&html);
}

#[test]
fn bad_arguments_are_one_sentence_and_exit_2() {
    let c = capsule();
    let out = c.run_args(&[
        "openmesh",
        "report",
        "--html",
        "-",
        "--provider",
        "digitalocan",
    ]);
    assert_eq!(out.code, 2);
    out.stderr_has("did you mean 'digitalocean'");
    let out = c.run_args(&[
        "openmesh",
        "report",
        "--html",
        "-",
        "--since",
        "2024-03-01",
        "--until",
        "2024-02-01",
    ]);
    assert_eq!(out.code, 2);
    out.stderr_has("is not after");
    let out = c.run_args(&["openmesh", "report", "--html", "/nonexistent-dir/r.html"]);
    assert_eq!(out.code, 2);
    out.stderr_has("cannot write the report to /nonexistent-dir/r.html");
    let out = c.run_args(&["openmesh", "compare", "do-small", "--chart", "-o", "json"]);
    assert_eq!(out.code, 2);
    out.stderr_has("--chart draws a picture");
    let out = c.run_args(&["openmesh", "cost", "--chart", "--by", "week"]);
    assert_eq!(out.code, 2);
    out.stderr_has("use it with --by day");
    // compare --chart takes compare's rule on retired providers.
    let retired = capsule::catalog::embedded()
        .unwrap()
        .templates
        .iter()
        .find(|t| t.provider == "equinix-metal")
        .unwrap()
        .id
        .clone();
    let out = c.run_args(&["openmesh", "compare", "do-small", &retired, "--chart"]);
    assert_eq!(out.code, 2);
    out.stderr_has("--include-retired");
    let out = c.run_args(&[
        "openmesh",
        "compare",
        "do-small",
        &retired,
        "--chart",
        "--include-retired",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.stdout_has(&retired);
}

// ---------------------------------------------------------------------------------------------
// a real browser

const CHROMIUM: &str = "/usr/bin/chromium";

/// Recorded into the DOM for `--dump-dom`: errors (script, console, CSP) and every SVG's size.
const PROBE: &str = r#"<script>
(function () {
  var errors = [];
  window.addEventListener('error', function (e) { errors.push('error: ' + e.message); });
  document.addEventListener('securitypolicyviolation', function (e) {
    errors.push('csp: ' + e.violatedDirective + ' ' + e.blockedURI);
  });
  var original = console.error;
  console.error = function () { errors.push('console: ' + Array.prototype.join.call(arguments, ' ')); original.apply(console, arguments); };
  window.addEventListener('load', function () {
    var sizes = Array.prototype.map.call(document.querySelectorAll('svg'), function (s) {
      var r = s.getBoundingClientRect();
      return Math.round(r.width) + 'x' + Math.round(r.height);
    });
    document.documentElement.setAttribute('data-svg-sizes', sizes.join(' '));
    document.documentElement.setAttribute('data-errors', errors.join(' | '));
    document.documentElement.setAttribute('data-probed', 'yes');
  });
})();
</script>"#;

fn chromium(profile: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new("timeout");
    cmd.arg("180").arg(CHROMIUM).args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=5000",
    ]);
    cmd.arg(format!("--user-data-dir={}", profile.display()));
    cmd.args(args);
    cmd.output().expect("run chromium")
}

/// Console messages Chromium logged (`INFO:CONSOLE(…)` lines).
fn console_lines(stderr: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect()
}

#[test]
fn renders_in_headless_chromium() {
    if !Path::new(CHROMIUM).exists() {
        eprintln!("skipped: {CHROMIUM} is not installed (apt-get install -y chromium)");
        return;
    }
    let c = seeded(NODES);
    let mut args: Vec<&str> = FILTER.to_vec();
    args.extend_from_slice(WINDOW);
    let html = report_html(&c, &args);
    let svgs = Html::parse_document(&html).select(&sel("svg")).count();
    assert!(svgs > 10, "{svgs} svg elements");
    let dir = tempfile::tempdir().unwrap();

    // As shipped: a screenshot, and the console stays silent.
    let page = dir.path().join("report.html");
    std::fs::write(&page, &html).unwrap();
    let png = dir.path().join("report.png");
    let shot = chromium(
        &dir.path().join("profile-shot"),
        &[
            "--window-size=1320,4000",
            &format!("--screenshot={}", png.display()),
            &format!("file://{}", page.display()),
        ],
    );
    assert!(
        shot.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let bytes = std::fs::read(&png).expect("a screenshot");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert!(bytes.len() > 50_000, "a blank page? {} bytes", bytes.len());
    assert_eq!(console_lines(&shot.stderr), Vec::<String>::new());
    if let Ok(keep) = std::env::var("CAPSULE_KEEP_SCREENSHOT") {
        std::fs::copy(&png, keep).unwrap();
    }

    // With a probe: the same page, its policy widened only to run the probe's inline script.
    let probed = html
        .replacen(
            "default-src 'none'; style-src 'unsafe-inline'",
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'",
            1,
        )
        .replacen("<head>", &format!("<head>\n{PROBE}"), 1);
    assert_ne!(probed, html);
    let page = dir.path().join("probed.html");
    std::fs::write(&page, &probed).unwrap();
    let dump = chromium(
        &dir.path().join("profile-dom"),
        &["--dump-dom", &format!("file://{}", page.display())],
    );
    assert!(
        dump.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&dump.stderr)
    );
    assert_eq!(console_lines(&dump.stderr), Vec::<String>::new());
    let dom = Html::parse_document(&String::from_utf8_lossy(&dump.stdout));
    let root = dom.root_element();
    assert_eq!(
        root.value().attr("data-probed"),
        Some("yes"),
        "the probe ran"
    );
    assert_eq!(
        root.value().attr("data-errors"),
        Some(""),
        "errors in the page"
    );
    let sizes: Vec<&str> = root
        .value()
        .attr("data-svg-sizes")
        .unwrap()
        .split(' ')
        .collect();
    assert_eq!(sizes.len(), svgs);
    for s in &sizes {
        let (w, h) = s.split_once('x').unwrap();
        assert!(f(w) > 0.0 && f(h) > 0.0, "an SVG of size {s}");
    }
    // The cheapest template (first of `templates` with the same filters) and deploy's choice
    // are on the page as rendered.
    let page_text: String = dom.select(&sel("body")).next().unwrap().text().collect();
    let mut t_args = vec!["openmesh", "templates", "-o", "json"];
    t_args.extend_from_slice(FILTER);
    let cheapest = c.run_args(&t_args).json()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(page_text.contains(&cheapest), "{cheapest} not on the page");
    let (head, choice) = deploy_choice(&c);
    assert!(
        page_text.contains(&format!("{head}: {choice}")),
        "deploy's choice is on the page: {head}: {choice}"
    );
}

// ---------------------------------------------------------------------------------------------
// terminal charts

#[test]
fn compare_chart_at_80_columns() {
    let c = capsule().env("COLUMNS", "80");
    let out = c.run_args(&[
        "openmesh",
        "compare",
        "do-small",
        "vultr-vc2-1",
        "linode-4gb",
        "scw-dev1-m",
        "hive-large",
        "--chart",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.lines().all(|l| l.chars().count() <= 80),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains('\u{1b}'), "no colour under NO_COLOR");
    golden("compare-80.txt", &out.stdout);
    // Colour when asked for, and a narrower terminal gives narrower bars.
    let coloured = c.run_args(&[
        "openmesh",
        "compare",
        "do-small",
        "vultr-vc2-1",
        "--chart",
        "--color",
        "always",
    ]);
    assert!(coloured.stdout.contains('\u{1b}'));
    let narrow = capsule()
        .env("COLUMNS", "50")
        .args(["openmesh", "compare", "do-small", "vultr-vc2-1", "--chart"])
        .ok();
    assert!(
        narrow.stdout.lines().all(|l| l.chars().count() <= 50),
        "{}",
        narrow.stdout
    );
}

#[test]
fn cost_chart_at_80_columns() {
    // Only the deleted nodes: the month's figures are then zero whenever the test runs.
    let past: String = NODES.lines().take(3).map(|l| format!("{l}\n")).collect();
    let c = seeded(&past);
    let c = c.env("COLUMNS", "80");
    let out = c.run_args(&[
        "openmesh",
        "cost",
        "--chart",
        "--since",
        "2024-02-05",
        "--until",
        "2024-02-15",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.lines().all(|l| l.chars().count() <= 80),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains('\u{1b}'));
    // The projection's month is the current one: masked for the golden file.
    let at = out.stdout.find("projected for ").unwrap() + "projected for ".len();
    let mut masked = out.stdout.clone();
    masked.replace_range(at..at + 7, "YYYY-MM");
    golden("cost-80.txt", &masked);
    // The chart's window total is what `cost` says for the same window.
    let cost = c
        .run_args(&[
            "openmesh",
            "cost",
            "-o",
            "json",
            "--since",
            "2024-02-05",
            "--until",
            "2024-02-15",
        ])
        .json();
    let total = cost.as_array().unwrap().last().unwrap()["cost_usd"]
        .as_f64()
        .unwrap();
    assert!(
        out.stdout.contains(&format!(
            "Total in the window: {}\n",
            capsule::render::usd(total)
        )),
        "{}",
        out.stdout
    );
}

#[track_caller]
fn golden(name: &str, actual: &str) {
    crate::support::golden("report", name, actual);
}
