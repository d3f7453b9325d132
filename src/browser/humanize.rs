//! The humanize policy: how long to wait between keys, where inside an element to click, how
//! to scroll, and when to make (and correct) a typo. Pure: the caller passes the RNG.
//!
//! `human`: 50–180 ms per character, 2% typos corrected with Backspace, clicks at a random
//! point inside the element's box, scrolls in 80–180 px steps with 80–250 ms pauses and a 10%
//! chance of a 1–3 s reading pause. `fast`: the same events with delays of at most 10 ms.
//! `off`: no delays; text is inserted in one go and clicks land in the middle.
//! Under every policy, text longer than `MAX_TYPED_CHARS` is inserted in one go (as if pasted):
//! typed key by key it would hold the session for hours.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How human the input should look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Humanize {
    #[default]
    Human,
    Fast,
    Off,
}

/// A box in viewport coordinates.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

/// The longest text typed key by key. At 50–180 ms a key, 2,000 characters take two to six
/// minutes; a longer value (a pasted cover letter) is inserted with one `Input.insertText`, as
/// `off` does, rather than refused: the caller gets the value filled, only not keystroke by
/// keystroke.
pub const MAX_TYPED_CHARS: usize = 2_000;

impl Humanize {
    /// True when this policy types text key by key (with its delays).
    pub fn types_keys(self) -> bool {
        self != Self::Off
    }

    /// True when `text` is typed key by key: the policy types keys and `text` has at most
    /// `MAX_TYPED_CHARS` characters. Otherwise it is inserted in one go.
    pub fn types_text(self, text: &str) -> bool {
        self.types_keys() && text.chars().nth(MAX_TYPED_CHARS).is_none()
    }

    fn delay(self, rng: &mut impl Rng, human_ms: (u64, u64)) -> Duration {
        match self {
            Self::Human => Duration::from_millis(rng.random_range(human_ms.0..=human_ms.1)),
            Self::Fast => Duration::from_millis(rng.random_range(0..=10)),
            Self::Off => Duration::ZERO,
        }
    }

    /// Pause after a key.
    pub fn key_delay(self, rng: &mut impl Rng) -> Duration {
        self.delay(rng, (50, 180))
    }

    /// Pause around a click or between actions.
    pub fn action_delay(self, rng: &mut impl Rng) -> Duration {
        self.delay(rng, (80, 250))
    }

    /// Whether to mistype the next character (then correct it with Backspace).
    pub fn typo(self, rng: &mut impl Rng) -> bool {
        self != Self::Off && rng.random_bool(0.02)
    }

    /// Where to click inside a box: anywhere in its inner 60% for people, the centre otherwise.
    pub fn click_point(self, rect: Rect, rng: &mut impl Rng) -> (f64, f64) {
        if self == Self::Off {
            return (rect.x + rect.w / 2.0, rect.y + rect.h / 2.0);
        }
        let fx = rng.random_range(0.2..=0.8);
        let fy = rng.random_range(0.2..=0.8);
        (rect.x + rect.w * fx, rect.y + rect.h * fy)
    }

    /// Wheel steps (pixels, pause after) that move the page by about `distance` pixels.
    pub fn scroll_steps(self, distance: f64, rng: &mut impl Rng) -> Vec<(f64, Duration)> {
        if self == Self::Off || distance.abs() < 1.0 {
            return Vec::new();
        }
        let sign = distance.signum();
        let mut left = distance.abs();
        let mut steps = Vec::new();
        while left > 0.0 {
            let step = rng.random_range(80.0..=180.0_f64).min(left.max(80.0));
            left -= step;
            steps.push((sign * step, self.action_delay(rng)));
        }
        if self == Self::Human
            && rng.random_bool(0.1)
            && let Some(last) = steps.last_mut()
        {
            last.1 += Duration::from_millis(rng.random_range(1000..=3000));
        }
        steps
    }
}

/// A neighbouring key on a QWERTY keyboard, for a believable typo.
pub fn typo_for(c: char, rng: &mut impl Rng) -> char {
    const ROWS: [&str; 3] = ["qwertyuiop", "asdfghjkl", "zxcvbnm"];
    let lower = c.to_ascii_lowercase();
    for row in ROWS {
        if let Some(i) = row.find(lower) {
            let bytes = row.as_bytes();
            let j = if i == 0 {
                1
            } else if i + 1 == bytes.len() || rng.random_bool(0.5) {
                i - 1
            } else {
                i + 1
            };
            let t = bytes[j] as char;
            return if c.is_ascii_uppercase() { t.to_ascii_uppercase() } else { t };
        }
    }
    if c.is_ascii_digit() { if c == '9' { '8' } else { (c as u8 + 1) as char } } else { 'e' }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn delays_follow_the_policy() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..500 {
            let human = Humanize::Human.key_delay(&mut rng);
            assert!((50..=180).contains(&(human.as_millis() as u64)));
            assert!(Humanize::Fast.key_delay(&mut rng) <= Duration::from_millis(10));
            assert_eq!(Humanize::Off.key_delay(&mut rng), Duration::ZERO);
            assert!(!Humanize::Off.typo(&mut rng));
        }
        let typos = (0..10_000).filter(|_| Humanize::Human.typo(&mut rng)).count();
        assert!((100..=300).contains(&typos), "about 2% typos, got {typos} in 10000");
    }

    #[test]
    fn only_text_up_to_the_cap_is_typed_key_by_key() {
        let at_cap = "é".repeat(MAX_TYPED_CHARS);
        let over_cap = "a".repeat(MAX_TYPED_CHARS + 1);
        let cases = [
            (Humanize::Human, "Ada", true),
            (Humanize::Fast, "Ada", true),
            (Humanize::Off, "Ada", false),
            // Characters, not bytes: 2,000 two-byte characters are still typed.
            (Humanize::Human, at_cap.as_str(), true),
            (Humanize::Human, over_cap.as_str(), false),
            (Humanize::Fast, over_cap.as_str(), false),
            (Humanize::Off, over_cap.as_str(), false),
        ];
        for (policy, text, typed) in cases {
            assert_eq!(policy.types_text(text), typed, "{policy:?}, {} characters", text.chars().count());
        }
    }

    #[test]
    fn clicks_land_inside_the_box_and_scrolls_cover_the_distance() {
        let mut rng = StdRng::seed_from_u64(1);
        let rect = Rect { x: 100.0, y: 50.0, w: 200.0, h: 30.0 };
        for _ in 0..200 {
            let (x, y) = Humanize::Human.click_point(rect, &mut rng);
            assert!(x > 100.0 && x < 300.0 && y > 50.0 && y < 80.0);
        }
        assert_eq!(Humanize::Off.click_point(rect, &mut rng), (200.0, 65.0));
        let steps = Humanize::Human.scroll_steps(1000.0, &mut rng);
        let total: f64 = steps.iter().map(|s| s.0).sum();
        assert!((1000.0..1180.0).contains(&total));
        assert!(steps.iter().all(|s| (80.0..=180.0).contains(&s.0)));
        assert!(steps.iter().all(|s| s.1 >= Duration::from_millis(80)));
        assert!(
            Humanize::Fast.scroll_steps(-500.0, &mut rng).iter().all(|s| s.0 < 0.0 && s.1 <= Duration::from_millis(10))
        );
        assert!(Humanize::Off.scroll_steps(1000.0, &mut rng).is_empty());
        assert_ne!(typo_for('a', &mut rng), 'a');
    }
}
