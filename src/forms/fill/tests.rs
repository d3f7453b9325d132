//! Fill's typing policy against a fake page that records what it is sent.

use rand::SeedableRng;

use super::*;
use crate::browser::humanize::MAX_TYPED_CHARS;
use crate::browser::script::ScriptedPage;

/// What a scripted page was sent: characters typed, keys pressed, lengths of inserted texts.
fn sent(page: ScriptedPage) -> (usize, usize, Vec<usize>) {
    let log = page.log.into_inner().unwrap();
    let count = |prefix: &str| log.iter().filter(|l| l.starts_with(prefix)).count();
    let inserted = log.iter().filter_map(|l| l.strip_prefix("text ")).map(|t| t.chars().count()).collect();
    (count("char "), count("key "), inserted)
}

// Paused time: the policy's key delays pass at once, so a regression shows up as keys sent,
// not as a slow test.
#[tokio::test(start_paused = true)]
async fn text_over_the_cap_is_inserted_in_one_go_under_every_policy() {
    let long = "x".repeat(MAX_TYPED_CHARS * 5);
    let cases = [
        (Humanize::Human, "Ada Lovelace", false),
        (Humanize::Fast, "Ada Lovelace", false),
        (Humanize::Off, "Ada Lovelace", true),
        (Humanize::Human, long.as_str(), true),
        (Humanize::Fast, long.as_str(), true),
        (Humanize::Off, long.as_str(), true),
    ];
    for (humanize, text, inserted) in cases {
        let page = ScriptedPage::default();
        let executor = Executor { page: &page, humanize };
        executor.type_text(text, &mut StdRng::seed_from_u64(3)).await.unwrap();
        let (typed_chars, keys, texts) = sent(page);
        let length = text.chars().count();
        if inserted {
            assert_eq!(texts, vec![length], "{humanize:?}, {length} characters");
            assert_eq!((typed_chars, keys), (0, 0), "{humanize:?}, {length} characters: no keys");
        } else {
            assert!(texts.is_empty(), "{humanize:?}: typed, not inserted: {texts:?}");
            // Every character typed, plus a mistyped one for each typo (corrected with Backspace).
            assert_eq!(typed_chars, length + keys, "{humanize:?}: {typed_chars} typed, {keys} keys");
        }
    }
}
