//! Labels as data: every page under `tests/fixtures/forms/labels/` is analyzed in real Chromium
//! and each listed control's label and `required` flag are compared with `<page>.labels.json`
//! (`[{"key", "label", "required"}]`, key = html id, name or field id). Any other field that is
//! not a trap is reported too, so a page's expectations cover all of it.

use serde_json::Value;

use crate::forms::{analyze, applicant, navigate, open};
use crate::support::{TestApp, forms_dir};

const PAGES: &[&str] = &["labels/en", "labels/de", "labels/fr"];

fn expected(page: &str) -> Vec<Value> {
    let path = forms_dir().join(format!("{page}.labels.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every difference between the scanned fields and the expected labels, as readable lines.
fn compare(page: &str, fields: &[Value], expected: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut matched = Vec::new();
    for want in expected {
        let key = want["key"].as_str().unwrap();
        let Some(got) = fields.iter().find(|f| f["html_id"] == key || f["name"] == key || f["field_id"] == key) else {
            problems.push(format!("{page}: no field for {key}"));
            continue;
        };
        matched.push(got["field_id"].clone());
        for attr in ["label", "required"] {
            if got[attr] != want[attr] {
                problems.push(format!("{page}: {key}.{attr} is {} (expected {})", got[attr], want[attr]));
            }
        }
    }
    for field in fields {
        if field["trap"] == false && !matched.contains(&field["field_id"]) {
            problems.push(format!("{page}: unexpected field {} ({})", field["field_id"], field["label"]));
        }
    }
    problems
}

#[tokio::test]
async fn labels_and_required_markers_read_as_a_person_reads_them() {
    let app = TestApp::start().await;
    let id = open(&app, PAGES[0]).await;
    let applicant = applicant();
    let mut problems = Vec::new();
    for page in PAGES {
        navigate(&app, &id, page).await;
        let analysis = analyze(&app, &id, page, &applicant).await;
        problems.extend(compare(page, analysis["fields"].as_array().unwrap(), &expected(page)));
    }
    assert!(problems.is_empty(), "{} differences:\n{}", problems.len(), problems.join("\n"));
    app.stop().await;
}
