//! Breaker transitions with exact numbers, under paused Tokio time and scripted draws.

use std::sync::Mutex;
use std::time::Duration;

use super::*;

/// Draws that replay a script, then repeat its last value.
struct Script(Mutex<Vec<f64>>);

impl Script {
    fn new(values: &[f64]) -> Arc<Self> {
        Arc::new(Self(Mutex::new(values.iter().rev().copied().collect())))
    }
}

impl Draw for Script {
    fn unit(&self) -> f64 {
        let mut values = self.0.lock().unwrap();
        if values.len() > 1 { values.pop().unwrap() } else { values[0] }
    }
}

fn store(draws: &[f64]) -> (tempfile::TempDir, Breaker) {
    let dir = tempfile::tempdir().unwrap();
    let breaker =
        Breaker::open_with(&dir.path().join("profiles.redb"), Arc::new(TokioClock::new()), Script::new(draws)).unwrap();
    (dir, breaker)
}

fn secs(record: &ProfileRecord, now: DateTime<Utc>) -> i64 {
    (record.cooldown_until.unwrap() - now).num_seconds()
}

#[test]
fn cooldown_tiers_are_exact_at_their_bounds() {
    assert_eq!(cooldown(1, 0.0, 0.0), Duration::from_secs(720));
    assert_eq!(cooldown(1, 1.0, 1.0), Duration::from_secs(2160));
    assert_eq!(cooldown(1, 0.5, 0.5), Duration::from_secs(1350));
    assert_eq!(cooldown(2, 0.0, 0.0), Duration::from_secs(5760));
    assert_eq!(cooldown(2, 1.0, 1.0), Duration::from_secs(25920));
    assert_eq!(cooldown(2, 0.5, 0.5), Duration::from_secs(14400));
    for i in 0..=20 {
        let (a, b) = (i as f64 / 20.0, 1.0 - i as f64 / 20.0);
        assert!((720..=2160).contains(&cooldown(1, a, b).as_secs()));
        assert!((5760..=25920).contains(&cooldown(2, a, b).as_secs()));
    }
}

#[tokio::test(start_paused = true)]
async fn blocks_cool_then_need_a_human_and_resolve_clears() {
    let (_dir, breaker) = store(&[0.0, 0.0, 1.0, 1.0]);
    let start = breaker.now();
    breaker.admit("p1").await.unwrap();

    let one = breaker.record_block("p1", BlockReason::Captcha).await.unwrap();
    assert_eq!(one.state, ProfileState::Cooling);
    assert_eq!(secs(&one, start), 720, "1 block, lowest draws: 15 min - 20%");
    match breaker.admit("p1").await {
        Err(BreakerError::Unavailable(u)) => {
            assert_eq!(u, Unavailable { state: ProfileState::Cooling, retry_after_secs: Some(720) })
        }
        other => panic!("cooling profile was admitted: {other:?}"),
    }
    tokio::time::advance(Duration::from_secs(719)).await;
    assert!(matches!(breaker.admit("p1").await, Err(BreakerError::Unavailable(u)) if u.retry_after_secs == Some(1)));
    tokio::time::advance(Duration::from_secs(1)).await;
    let back = breaker.admit("p1").await.unwrap();
    assert_eq!(back.state, ProfileState::Healthy, "an ended cooldown is healthy again");
    assert_eq!(back.total_tasks, 2);

    let now = breaker.now();
    let two = breaker.record_block("p1", BlockReason::ChallengePage).await.unwrap();
    assert_eq!(two.consecutive_blocks, 2);
    assert_eq!(secs(&two, now), 25920, "2 blocks, highest draws: 6 h + 20%");
    assert_eq!(two.last_block_reason, Some(BlockReason::ChallengePage));

    let three = breaker.record_block("p1", BlockReason::Captcha).await.unwrap();
    assert_eq!(three.state, ProfileState::NeedsHuman);
    assert_eq!(three.cooldown_until, None);
    tokio::time::advance(Duration::from_secs(30 * 24 * 3600)).await;
    assert!(matches!(
        breaker.admit("p1").await,
        Err(BreakerError::Unavailable(Unavailable { state: ProfileState::NeedsHuman, retry_after_secs: None }))
    ));

    let resolved = breaker.resolve("p1").await.unwrap();
    assert_eq!((resolved.state, resolved.consecutive_blocks), (ProfileState::Healthy, 0));
    breaker.admit("p1").await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn five_failures_disable_and_success_decays() {
    let (_dir, breaker) = store(&[0.5]);
    for n in 1..=4 {
        let record = breaker.record_failure("p2").await.unwrap();
        assert_eq!((record.state, record.consecutive_failures), (ProfileState::Healthy, n));
    }
    let success = breaker.record_success("p2").await.unwrap();
    assert_eq!(success.consecutive_failures, 0, "a success clears failures");
    for _ in 0..5 {
        breaker.record_failure("p2").await.unwrap();
    }
    assert_eq!(breaker.get("p2").await.unwrap().state, ProfileState::Disabled);
    assert!(matches!(breaker.resolve("p2").await, Err(BreakerError::InvalidState(_))));
    assert!(matches!(
        breaker.admit("p2").await,
        Err(BreakerError::Unavailable(Unavailable { state: ProfileState::Disabled, .. }))
    ));
    assert_eq!(breaker.enable("p2").await.unwrap().state, ProfileState::Healthy);

    // Success lowers blocks by one and ends a cooldown.
    breaker.record_block("p3", BlockReason::RateLimited).await.unwrap();
    let cooling = breaker.record_block("p3", BlockReason::RateLimited).await.unwrap();
    assert_eq!((cooling.state, cooling.consecutive_blocks), (ProfileState::Cooling, 2));
    let decayed = breaker.record_success("p3").await.unwrap();
    assert_eq!((decayed.state, decayed.consecutive_blocks, decayed.cooldown_until), (ProfileState::Healthy, 1, None));
    let again = breaker.record_block("p3", BlockReason::RateLimited).await.unwrap();
    assert_eq!((again.state, again.consecutive_blocks), (ProfileState::Cooling, 2), "decayed blocks count on");
    assert_eq!(secs(&again, breaker.now()), 14400);
}

#[tokio::test(start_paused = true)]
async fn enable_clears_a_stale_cooldown_and_disable_holds() {
    let (_dir, breaker) = store(&[1.0]);
    breaker.record_block("p4", BlockReason::Captcha).await.unwrap();
    breaker.disable("p4").await.unwrap();
    tokio::time::advance(Duration::from_secs(3 * 3600)).await;
    assert!(breaker.admit("p4").await.is_err(), "disabled stays disabled after the cooldown");
    let enabled = breaker.enable("p4").await.unwrap();
    assert_eq!((enabled.state, enabled.consecutive_blocks, enabled.cooldown_until), (ProfileState::Healthy, 0, None));
    breaker.admit("p4").await.unwrap();
}

#[tokio::test]
async fn unknown_profiles_are_not_created_by_lookups() {
    let (_dir, breaker) = store(&[0.5]);
    assert!(matches!(breaker.get("ghost").await, Err(BreakerError::NotFound)));
    assert!(matches!(breaker.resolve("ghost").await, Err(BreakerError::NotFound)));
    assert!(matches!(breaker.enable("ghost").await, Err(BreakerError::NotFound)));
    assert!(matches!(breaker.disable("ghost").await, Err(BreakerError::NotFound)));
    assert!(breaker.list().await.unwrap().is_empty());
    breaker.learn(vec!["listed".into()]).await.unwrap();
    let listed = breaker.get("listed").await.unwrap();
    assert_eq!(
        (listed.state, listed.total_tasks),
        (ProfileState::Healthy, 0),
        "learning makes a profile known, unused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_are_all_kept_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("profiles.redb");
    {
        let breaker = Arc::new(Breaker::open(&path).unwrap());
        let tasks: Vec<_> = (0..40)
            .map(|_| {
                let breaker = breaker.clone();
                tokio::spawn(async move { breaker.admit("shared").await.unwrap() })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        breaker.record_failure("shared").await.unwrap();
    }
    let reopened = Breaker::open(&path).unwrap();
    let record = reopened.get("shared").await.unwrap();
    assert_eq!(record.total_tasks, 40, "no update is lost");
    assert_eq!(record.consecutive_failures, 1);
}
