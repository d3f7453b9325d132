//! The breaker's state machine: a profile's record and its transitions, pure (the time and
//! the random draws are passed in; `Breaker` applies them to the store).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::BreakerError;
use crate::guard::BlockReason;

/// Consecutive blocks that send a profile to `needs_human`.
pub const BLOCKS_FOR_HUMAN: u32 = 3;
/// Consecutive failures that disable a profile.
pub const FAILURES_FOR_DISABLE: u32 = 5;
/// Cooldown ranges in seconds before jitter, for 1 and for 2 consecutive blocks.
const TIERS: [(f64, f64); 2] = [(15.0 * 60.0, 30.0 * 60.0), (2.0 * 3600.0, 6.0 * 3600.0)];
/// The jitter scales a drawn cooldown by a factor in `[1 - JITTER, 1 + JITTER]`.
const JITTER: f64 = 0.2;

/// A profile's breaker state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProfileState {
    Healthy,
    Cooling,
    NeedsHuman,
    Disabled,
}

impl ProfileState {
    pub fn as_str(self) -> &'static str {
        match self {
            ProfileState::Healthy => "healthy",
            ProfileState::Cooling => "cooling",
            ProfileState::NeedsHuman => "needs_human",
            ProfileState::Disabled => "disabled",
        }
    }
}

/// What the breaker knows about one profile (stored as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileRecord {
    pub profile_id: String,
    pub state: ProfileState,
    pub consecutive_blocks: u32,
    pub consecutive_failures: u32,
    /// Sessions opened on the profile.
    pub total_tasks: u64,
    pub last_used_at: Option<DateTime<Utc>>,
    /// End of the current cooldown (`cooling` only).
    pub cooldown_until: Option<DateTime<Utc>>,
    pub last_block_reason: Option<BlockReason>,
    pub updated_at: DateTime<Utc>,
    /// The proxy sessions on this profile use unless they name one (credentials included:
    /// this record stays in the worker's store, or the fleet's Redis).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<crate::egress::route::ProxySpec>,
}

/// The cooldown after `blocks` consecutive blocks (1 or 2), from two draws in `[0, 1]`:
/// one picks the tier's base length, the other the jitter factor.
pub fn cooldown(blocks: u32, base_draw: f64, jitter_draw: f64) -> Duration {
    let (low, high) = TIERS[(blocks.clamp(1, 2) - 1) as usize];
    let base = low + (high - low) * base_draw.clamp(0.0, 1.0);
    let factor = 1.0 - JITTER + 2.0 * JITTER * jitter_draw.clamp(0.0, 1.0);
    Duration::from_secs_f64((base * factor).round())
}

/// Why a profile may not run now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unavailable {
    pub state: ProfileState,
    /// Seconds until a cooldown ends; `None` when only a human can help.
    pub retry_after_secs: Option<u64>,
}

impl ProfileRecord {
    /// A profile seen for the first time.
    pub fn new(profile_id: &str, now: DateTime<Utc>) -> Self {
        Self {
            profile_id: profile_id.to_string(),
            state: ProfileState::Healthy,
            consecutive_blocks: 0,
            consecutive_failures: 0,
            total_tasks: 0,
            last_used_at: None,
            cooldown_until: None,
            last_block_reason: None,
            updated_at: now,
            proxy: None,
        }
    }

    /// The seed's `can_run`: an expired cooldown turns back to `healthy` here.
    pub fn can_run(&mut self, now: DateTime<Utc>) -> Result<(), Unavailable> {
        match self.state {
            ProfileState::Healthy => Ok(()),
            ProfileState::Disabled | ProfileState::NeedsHuman => {
                Err(Unavailable { state: self.state, retry_after_secs: None })
            }
            ProfileState::Cooling => match self.cooldown_until {
                Some(until) if now < until => {
                    let secs = (until - now).num_milliseconds().max(0) as u64;
                    Err(Unavailable { state: self.state, retry_after_secs: Some(secs.div_ceil(1000).max(1)) })
                }
                _ => {
                    self.state = ProfileState::Healthy;
                    self.cooldown_until = None;
                    Ok(())
                }
            },
        }
    }

    /// Seconds until the profile may run again, for the profiles list.
    pub fn retry_after_secs(&self, now: DateTime<Utc>) -> Option<u64> {
        self.clone().can_run(now).err().and_then(|u| u.retry_after_secs)
    }

    /// A block: cooling for the tier's cooldown, or `needs_human` at the third in a row.
    /// `draws` are the base and jitter draws for the cooldown.
    pub fn record_block(&mut self, reason: BlockReason, now: DateTime<Utc>, draws: (f64, f64)) {
        self.consecutive_blocks += 1;
        self.last_block_reason = Some(reason);
        if self.state == ProfileState::Disabled {
            return;
        }
        if self.consecutive_blocks >= BLOCKS_FOR_HUMAN {
            self.state = ProfileState::NeedsHuman;
            self.cooldown_until = None;
        } else {
            let rest = cooldown(self.consecutive_blocks, draws.0, draws.1);
            self.state = ProfileState::Cooling;
            self.cooldown_until = Some(now + chrono::Duration::from_std(rest).unwrap_or_default());
        }
    }

    /// A browser or provider failure; the fifth in a row disables the profile.
    pub fn record_failure(&mut self) {
        self.consecutive_failures += 1;
        if self.consecutive_failures >= FAILURES_FOR_DISABLE {
            self.state = ProfileState::Disabled;
            self.cooldown_until = None;
        }
    }

    /// A confirmed success: failures cleared, blocks lowered by one, a cooldown ended.
    pub fn record_success(&mut self) {
        self.consecutive_failures = 0;
        self.consecutive_blocks = self.consecutive_blocks.saturating_sub(1);
        if self.state == ProfileState::Cooling {
            self.state = ProfileState::Healthy;
            self.cooldown_until = None;
        }
    }

    /// A human dealt with it: `needs_human` or `cooling` back to `healthy` with clean counters.
    pub fn resolve(&mut self) -> Result<(), BreakerError> {
        if self.state == ProfileState::Disabled {
            return Err(BreakerError::InvalidState("the profile is disabled: enable it instead".into()));
        }
        self.reset();
        Ok(())
    }

    /// Re-enables a profile, clearing counters and any stale cooldown.
    pub fn enable(&mut self) {
        self.reset();
    }

    pub fn disable(&mut self) {
        self.state = ProfileState::Disabled;
        self.cooldown_until = None;
    }

    fn reset(&mut self) {
        self.state = ProfileState::Healthy;
        self.consecutive_blocks = 0;
        self.consecutive_failures = 0;
        self.cooldown_until = None;
    }
}
