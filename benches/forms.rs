//! Form analysis and fill speed (`make bench`): `analyze` on generated 40- and 200-field forms
//! against one bare `Runtime.evaluate` round trip on the same page, and a 20-field fill with
//! humanize `off`. SPEC §5: analyze of 40 fields ≤ 50 ms, 200 fields ≤ 150 ms.
//!
//! Runs the library in this process against one real Chromium (the worker's own provider and
//! flags); the forms are written to a temp dir and opened as `file://` pages. Samples alternate
//! baseline and analyze so that drift hits both.

#[allow(dead_code)]
mod common;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use browser_worker::browser::chromium::ChromiumProvider;
use browser_worker::browser::humanize::Humanize;
use browser_worker::browser::port::PagePort;
use browser_worker::browser::{BrowserHandle, BrowserProvider, LaunchSpec};
use browser_worker::forms::rules::RulesEngine;
use browser_worker::forms::{Applicant, fill, scan};
use rand::SeedableRng;
use serde_json::{Map, json};

const ROUNDS: usize = 30;
const FILL_ROUNDS: usize = 10;

#[tokio::main]
async fn main() -> Result<()> {
    common::print_report(run()).await
}

/// A form of `n` questions in the shapes real forms use: labelled text inputs, selects, radio
/// groups, checkboxes and textareas, in sections of ten.
fn generated_form(n: usize) -> String {
    let mut html = String::from("<!doctype html><title>Generated form</title><form id=application>");
    for i in 0..n {
        if i % 10 == 0 {
            let _ = write!(html, "<h3>Section {}</h3>", i / 10 + 1);
        }
        let _ = match i % 5 {
            0 => write!(html, "<p><label for=q{i}>Question {i} text *</label><input id=q{i} name=q{i} required></p>"),
            1 => write!(
                html,
                "<p><label>Question {i} choice<select name=q{i}><option value=''>Select...</option><option>Alpha</option><option>Beta</option><option>Gamma</option></select></label></p>"
            ),
            2 => write!(
                html,
                "<fieldset><legend>Question {i} radio</legend><label><input type=radio name=q{i} value=y>Yes</label><label><input type=radio name=q{i} value=n>No</label></fieldset>"
            ),
            3 => write!(html, "<p><label><input type=checkbox name=q{i}> Question {i} agree</label></p>"),
            _ => {
                write!(html, "<p><label for=q{i}>Question {i} long</label><textarea id=q{i} name=q{i}></textarea></p>")
            }
        };
    }
    html.push_str("<button type=submit>Submit application</button></form>");
    html
}

/// A 20-field form and the answers that fill all of it.
fn fill_form() -> (String, Applicant) {
    let mut html = String::from("<!doctype html><title>Fill</title><form id=application>");
    let mut qa = Map::new();
    for i in 0..20 {
        let question = format!("Unusual question number {i} about the work");
        let _ = match i % 4 {
            0 | 1 => write!(html, "<p><label for=f{i}>{question}</label><input id=f{i} name=f{i}></p>"),
            2 => write!(
                html,
                "<p><label for=f{i}>{question}</label><select id=f{i} name=f{i}><option value=''>--</option><option>Alpha</option><option>Beta</option></select></p>"
            ),
            _ => write!(
                html,
                "<fieldset><legend>{question}</legend><label><input type=radio name=f{i} value=y>Yes</label><label><input type=radio name=f{i} value=n>No</label></fieldset>"
            ),
        };
        let answer = match i % 4 {
            0 | 1 => json!(format!("Answer number {i}")),
            2 => json!("Beta"),
            _ => json!("Yes"),
        };
        qa.insert(question, answer);
    }
    html.push_str("<button type=submit>Submit application</button></form>");
    (html, Applicant { qa_answers: qa, ..Applicant::default() })
}

fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i].as_secs_f64() * 1000.0
}

/// Opens a generated page as a `data:` URL (a browser confined to the web loads no `file:`).
async fn open(handle: &BrowserHandle, html: &str) -> Result<()> {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(html);
    handle.navigate(&format!("data:text/html;base64,{encoded}")).await?;
    Ok(())
}

async fn run() -> Result<String> {
    let data = tempfile::tempdir()?;
    let provider = ChromiumProvider::new(
        common::chromium().into(),
        data.path(),
        browser_worker::browser::sandbox::Confinement::unconfined(),
        Duration::from_secs(30),
        Duration::from_secs(30),
    )?;
    let handle = provider.launch(LaunchSpec::default()).await.context("launching chromium")?;
    let result = measure(&handle).await;
    handle.close(false).await;
    result
}

async fn measure(handle: &BrowserHandle) -> Result<String> {
    let mut report = format!(
        "## Form analyze and fill — {}\n\n{}\n\nCommand: `make bench` (`cargo bench --bench forms`), {ROUNDS} alternated rounds per form size, {FILL_ROUNDS} fills\n\n",
        common::report_date(),
        common::machine_line(&common::chromium())
    );
    report.push_str("| measurement | p50 ms | p95 ms | target |\n| --- | --- | --- | --- |\n");
    let engine = RulesEngine;
    let nobody = Applicant::default();
    for (n, target) in [(40, 50.0), (200, 150.0)] {
        open(handle, &generated_form(n)).await?;
        let check = scan::analyze(handle, &engine, &nobody).await?;
        anyhow::ensure!(check.fields.len() == n, "scanned {} fields of {n}", check.fields.len());
        let (mut bare, mut scans, mut analyze) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let started = Instant::now();
            handle.eval("bare", "1 + 1").await?;
            bare.push(started.elapsed());
            let started = Instant::now();
            scan::scan(handle).await?;
            scans.push(started.elapsed());
            let started = Instant::now();
            scan::analyze(handle, &engine, &nobody).await?;
            analyze.push(started.elapsed());
        }
        let (p50, p95) = (percentile(&mut analyze, 0.5), percentile(&mut analyze, 0.95));
        let _ = writeln!(
            report,
            "| bare Runtime.evaluate round trip ({n}-field page) | {:.1} | {:.1} | |",
            percentile(&mut bare, 0.5),
            percentile(&mut bare, 0.95)
        );
        let _ = writeln!(
            report,
            "| scanner alone ({n} fields) | {:.1} | {:.1} | |",
            percentile(&mut scans, 0.5),
            percentile(&mut scans, 0.95)
        );
        let met = if p50 <= target { "met" } else { "NOT met" };
        let _ = writeln!(report, "| analyze, {n} fields | {p50:.1} | {p95:.1} | ≤ {target} ms: {met} |");
    }
    let (html, applicant) = fill_form();
    let mut fills = Vec::new();
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    for _ in 0..FILL_ROUNDS {
        open(handle, &html).await?;
        let started = Instant::now();
        let report = fill::fill(handle, &engine, &applicant, &Map::new(), Humanize::Off, &mut rng).await?;
        fills.push(started.elapsed());
        let verified = report.filled_fields.iter().filter(|f| f.verified).count();
        anyhow::ensure!(verified == 20, "filled and verified {verified} of 20: {:?}", report.errors);
    }
    let _ = writeln!(
        report,
        "| fill, 20 fields, humanize off (scan, suggest, write, read back) | {:.1} | {:.1} | |",
        percentile(&mut fills, 0.5),
        percentile(&mut fills, 0.95)
    );
    report.push_str(
        "\nThe analyze figure is one scanner evaluation (one CDP round trip) plus platform, page-kind and rules work in Rust. \
         The fill figure includes its second scan, which looks for questions that appeared because of the first pass.\n",
    );
    Ok(report)
}
