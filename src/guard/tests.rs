//! The detection table: each row is a page and the reason it must (or must not) block with.

use super::*;

/// (name, original URL, final URL, title, text, elements, widgets, markers, expected reason)
type Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    u32,
    &'static [&'static str],
    &'static [&'static str],
    Option<BlockReason>,
);

const JOB: &str = "https://boards.greenhouse.io/acme/jobs/4012345";
const JOB_TEXT: &str = "About the role. We are hiring. Responsibilities include building things. Apply for this job.";

fn rows() -> Vec<Row> {
    use BlockReason as R;
    vec![
        // Ordinary job pages: must not block.
        ("plain posting", JOB, JOB, "Software Engineer at Acme", JOB_TEXT, 240, &[], &[], None),
        (
            "design verification engineer",
            JOB,
            JOB,
            "Design Verification Engineer - Acme",
            JOB_TEXT,
            300,
            &[],
            &[],
            None,
        ),
        ("robotics engineer", JOB, JOB, "Robotics Engineer | Acme Robotics", JOB_TEXT, 300, &[], &[], None),
        (
            "verification engineer small page",
            JOB,
            JOB,
            "Verification Engineer",
            "Verification Engineer. Apply.",
            6,
            &[],
            &[],
            None,
        ),
        (
            "robotics slug",
            "https://jobs.lever.co/acme/robotics-engineer-123",
            "https://jobs.lever.co/acme/robotics-engineer-123",
            "Acme - Robotics Engineer",
            JOB_TEXT,
            150,
            &[],
            &[],
            None,
        ),
        (
            "challenges slug",
            "https://acme.com/careers/engineering-challenges",
            "https://acme.com/careers/engineering-challenges",
            "Engineering challenges at Acme",
            JOB_TEXT,
            150,
            &[],
            &[],
            None,
        ),
        (
            "challenges path",
            "https://acme.com/challenges/",
            "https://acme.com/challenges/",
            "Our challenges",
            JOB_TEXT,
            150,
            &[],
            &[],
            None,
        ),
        (
            "blog about challenges",
            "https://blog.acme.com/2024/overcoming-challenges",
            "https://blog.acme.com/2024/overcoming-challenges",
            "Overcoming challenges in hiring",
            "The biggest challenges we faced were verification of data and robots.",
            400,
            &[],
            &[],
            None,
        ),
        (
            "verified employer text",
            JOB,
            JOB,
            "Data Engineer",
            "Verified employer. Identity verification is part of onboarding.",
            120,
            &[],
            &[],
            None,
        ),
        (
            "chinese verification engineer",
            "https://jobs.example.cn/job/1",
            "https://jobs.example.cn/job/1",
            "芯片验证工程师",
            "职位描述",
            200,
            &[],
            &[],
            None,
        ),
        (
            "ats redirect same site",
            "https://acme.com/jobs/1",
            "https://careers.acme.com/jobs/1",
            "Backend Engineer",
            JOB_TEXT,
            200,
            &[],
            &[],
            None,
        ),
        (
            "cross-domain ats redirect",
            "https://acme.com/careers/123",
            "https://boards.greenhouse.io/acme/jobs/123",
            "Job Application for SRE at Acme",
            JOB_TEXT,
            200,
            &[],
            &[],
            None,
        ),
        ("unblocked word", JOB, JOB, "Unblocked Games Developer", JOB_TEXT, 200, &[], &[], None),
        ("req number 429", JOB, JOB, "Engineer (Req 429)", JOB_TEXT, 200, &[], &[], None),
        (
            "blocked in big body",
            JOB,
            JOB,
            "Support Engineer",
            "Help customers whose accounts are blocked. Access denied errors are triaged.",
            300,
            &[],
            &[],
            None,
        ),
        (
            "login page asked for",
            "https://acme.com/login",
            "https://acme.com/login",
            "Sign in",
            "Email Password",
            20,
            &[],
            &[],
            None,
        ),
        ("empty page same site", JOB, JOB, "", "", 0, &[], &[], None),
        // Seed stage 1: URL patterns.
        (
            "url verify",
            JOB,
            "https://acme.com/verify?next=/jobs",
            "Acme",
            "",
            40,
            &[],
            &[],
            Some(R::RedirectToVerification),
        ),
        ("url captcha", JOB, "https://boards.greenhouse.io/captcha", "Greenhouse", "", 40, &[], &[], Some(R::Captcha)),
        ("url challenge", JOB, "https://acme.com/challenge?id=1", "Acme", "", 40, &[], &[], Some(R::ChallengePage)),
        (
            "url security-check",
            JOB,
            "https://acme.com/security-check",
            "Acme",
            "",
            40,
            &[],
            &[],
            Some(R::ChallengePage),
        ),
        ("url blocked", JOB, "https://acme.com/blocked", "Acme", "", 40, &[], &[], Some(R::AccessDenied)),
        (
            "cloudflare challenge platform url",
            JOB,
            "https://acme.com/cdn-cgi/challenge-platform/h/b/orchestrate",
            "Acme",
            "",
            40,
            &[],
            &[],
            Some(R::ChallengePage),
        ),
        (
            "linkedin authwall",
            "https://www.linkedin.com/jobs/view/123",
            "https://www.linkedin.com/authwall?trk=gf",
            "LinkedIn",
            "",
            60,
            &[],
            &[],
            Some(R::LoginRequired),
        ),
        (
            "linkedin checkpoint",
            "https://www.linkedin.com/jobs/view/123",
            "https://www.linkedin.com/checkpoint/challenge/AgH",
            "Security Verification | LinkedIn",
            "",
            60,
            &[],
            &[],
            Some(R::ChallengePage),
        ),
        // Seed stage 2: redirects.
        (
            "cross-domain verify",
            JOB,
            "https://verify.example-sec.com/start",
            "Continue",
            "",
            40,
            &[],
            &[],
            Some(R::RedirectToVerification),
        ),
        (
            "redirect to login",
            "https://www.linkedin.com/jobs/view/123",
            "https://www.linkedin.com/uas/login?session_redirect=x",
            "LinkedIn Login",
            "",
            60,
            &[],
            &[],
            Some(R::LoginRequired),
        ),
        (
            "redirect to sso host",
            "https://acme.wd1.myworkdayjobs.com/job/1",
            "https://sso.acme.com/oauth2/start",
            "Acme",
            "",
            60,
            &[],
            &[],
            Some(R::LoginRequired),
        ),
        // Seed stage 3: titles, English and Chinese.
        ("title captcha", JOB, JOB, "Captcha", "", 40, &[], &[], Some(R::Captcha)),
        ("title verify", JOB, JOB, "Please verify", "", 40, &[], &[], Some(R::ChallengePage)),
        ("title access denied", JOB, JOB, "Access Denied", "", 40, &[], &[], Some(R::AccessDenied)),
        ("title blocked", JOB, JOB, "Blocked", "", 40, &[], &[], Some(R::AccessDenied)),
        (
            "title security check part",
            JOB,
            JOB,
            "Security Check | Acme Careers",
            "",
            40,
            &[],
            &[],
            Some(R::ChallengePage),
        ),
        ("title too many requests", JOB, JOB, "429 Too Many Requests", "", 4, &[], &[], Some(R::RateLimited)),
        ("title robot", JOB, JOB, "Are you a robot?", "", 40, &[], &[], Some(R::Captcha)),
        ("title 验证", JOB, JOB, "验证", "", 40, &[], &[], Some(R::ChallengePage)),
        ("title 安全验证", JOB, JOB, "安全验证 - 某招聘网", "", 40, &[], &[], Some(R::ChallengePage)),
        ("title 访问被拒绝", JOB, JOB, "访问被拒绝", "", 40, &[], &[], Some(R::AccessDenied)),
        ("title 请求过于频繁", JOB, JOB, "请求过于频繁", "", 40, &[], &[], Some(R::RateLimited)),
        ("title 验证码", JOB, JOB, "请输入验证码", "", 40, &[], &[], Some(R::Captcha)),
        // Seed stage 4: body text on small pages.
        (
            "body complete the captcha",
            JOB,
            JOB,
            "Acme",
            "Please complete the CAPTCHA to continue.",
            8,
            &[],
            &[],
            Some(R::Captcha),
        ),
        (
            "body unusual traffic",
            JOB,
            JOB,
            "Acme",
            "Our systems have detected unusual traffic.",
            5,
            &[],
            &[],
            Some(R::RateLimited),
        ),
        (
            "body too many requests",
            JOB,
            JOB,
            "Error",
            "Too many requests. Try again later.",
            3,
            &[],
            &[],
            Some(R::RateLimited),
        ),
        (
            "body press and hold",
            JOB,
            JOB,
            "Acme",
            "Press & Hold to confirm you are a human (and not a bot).",
            40,
            &[],
            &[],
            Some(R::Captcha),
        ),
        ("body 请求过于频繁", JOB, JOB, "提示", "您的请求过于频繁，请稍后再试", 4, &[], &[], Some(R::RateLimited)),
        ("body 请完成安全验证", JOB, JOB, "提示", "请完成安全验证后继续访问", 30, &[], &[], Some(R::Captcha)),
        // Seed stage 5: empty page after a cross-domain redirect.
        ("empty cross-domain", JOB, "https://cdn.tracker-wall.net/x", "", "", 0, &[], &[], Some(R::EmptyPageRedirect)),
        // Widgets, interstitials.
        ("visible recaptcha", JOB, JOB, "Apply - Acme", JOB_TEXT, 300, &["recaptcha"], &[], Some(R::Captcha)),
        ("visible hcaptcha", JOB, JOB, "Apply - Acme", JOB_TEXT, 300, &["hcaptcha"], &[], Some(R::Captcha)),
        ("visible turnstile", JOB, JOB, "Apply - Acme", JOB_TEXT, 300, &["turnstile"], &[], Some(R::Captcha)),
        ("visible arkose", JOB, JOB, "Apply - Acme", JOB_TEXT, 300, &["arkose"], &[], Some(R::Captcha)),
        ("visible geetest", JOB, JOB, "Apply - Acme", JOB_TEXT, 300, &["geetest"], &[], Some(R::Captcha)),
        (
            "cloudflare just a moment",
            JOB,
            JOB,
            "Just a moment...",
            "Checking your browser",
            20,
            &[],
            &[],
            Some(R::ChallengePage),
        ),
        ("cloudflare ellipsis", JOB, JOB, "Just a moment\u{2026}", "", 20, &[], &[], Some(R::ChallengePage)),
        ("cloudflare marker only", JOB, JOB, "Acme", "", 20, &[], &["cf_chl_opt"], Some(R::ChallengePage)),
        (
            "cloudflare attention",
            JOB,
            JOB,
            "Attention Required! | Cloudflare",
            "",
            50,
            &[],
            &[],
            Some(R::ChallengePage),
        ),
    ]
}

#[test]
fn detection_table() {
    let rows = rows();
    assert!(rows.len() >= 40, "the table has {} rows", rows.len());
    let mut failures = Vec::new();
    for (name, original, current, title, text, elements, widgets, markers, expected) in rows {
        let signals = PageSignals {
            original_url: original.into(),
            final_url: current.into(),
            title: title.into(),
            text: text.into(),
            elements,
            widgets: widgets.iter().map(|w| w.to_string()).collect(),
            markers: markers.iter().map(|m| m.to_string()).collect(),
            login_form: None,
        };
        let got = detect(&signals);
        if got.as_ref().map(|b| b.reason) != expected {
            failures.push(format!("{name}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{} rows failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn a_sign_in_form_standing_in_for_the_page_is_a_login_wall() {
    // (password boxes, other boxes, uploads on the page, a wall?)
    let cases = [
        (1, 1, 0, true),   // email + password on an unfamiliar host
        (2, 3, 0, true),   // join: name, email, password twice
        (1, 12, 1, false), // an application form that also creates an account
        (1, 2, 1, false),  // anything with an upload is an application
        (1, 6, 0, false),  // a long form with a password among many boxes
        (0, 0, 0, false),
    ];
    for (passwords, boxes, uploads, wall) in cases {
        let signals = PageSignals {
            original_url: JOB.into(),
            final_url: JOB.into(),
            title: "Careers".into(),
            elements: 400,
            login_form: Some(LoginForm { passwords, boxes, uploads }),
            ..Default::default()
        };
        let got = detect(&signals).map(|b| b.reason);
        assert_eq!(got, wall.then_some(BlockReason::LoginRequired), "{passwords} {boxes} {uploads}");
    }
}

#[test]
fn captcha_detail_names_the_widget_and_blocks_serialise_in_snake_case() {
    let signals = PageSignals { widgets: vec!["hcaptcha".into()], ..Default::default() };
    let block = detect(&signals).unwrap();
    assert_eq!(block.detail, "hcaptcha");
    assert_eq!(serde_json::to_value(&block).unwrap(), serde_json::json!({"reason": "captcha", "detail": "hcaptcha"}));
    let empty =
        PageSignals { original_url: JOB.into(), final_url: "https://x.example.net/".into(), ..Default::default() };
    assert_eq!(serde_json::to_value(detect(&empty).unwrap().reason).unwrap(), "empty_page_redirect");
}

#[test]
fn sites_compare_registrable_domains() {
    let site_of = |u: &str| site(&url::Url::parse(u).unwrap());
    assert_eq!(site_of("https://jobs.acme.co.uk/x"), "acme.co.uk");
    assert_eq!(site_of("https://careers.acme.com/x"), "acme.com");
    assert_eq!(site_of("http://127.0.0.1:8080/x"), "127.0.0.1");
}

/// `detect_block` through the page port: what the probe answers → the verdict. A probe that
/// fails on the page or answers nonsense counts as not blocked; a browser that is gone is an error.
#[tokio::test]
async fn the_probe_answer_decides_and_only_a_gone_browser_is_an_error() {
    use crate::browser::script::{Answer, ScriptedPage};
    use serde_json::json;
    let captcha =
        json!({"final_url": JOB, "title": "Apply", "text": JOB_TEXT, "elements": 300, "widgets": ["recaptcha"]});
    let posting = json!({"final_url": JOB, "title": "Software Engineer", "text": JOB_TEXT, "elements": 300});
    type Verdict = Result<Option<BlockReason>, ()>;
    let cases: Vec<(&str, Answer, Verdict)> = vec![
        ("a captcha widget", Answer::Value(captcha), Ok(Some(BlockReason::Captcha))),
        ("an ordinary posting", Answer::Value(posting), Ok(None)),
        ("a script error on the page", Answer::ScriptError("TypeError".into()), Ok(None)),
        ("an answer that is not signals", Answer::Value(json!("odd")), Ok(None)),
        ("the browser is gone", Answer::Gone, Err(())),
    ];
    for (name, answer, expected) in cases {
        let page = ScriptedPage::default().answering("block probe", [answer]);
        let got = detect_block(&page, JOB).await.map(|b| b.map(|b| b.reason)).map_err(|_| ());
        assert_eq!(got, expected, "{name}");
    }
}
