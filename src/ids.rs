//! The ids every part of the worker shares. A leaf module: it depends on no other part, so
//! tokens, events, webhooks, artifacts and the fleet name a session without depending on the
//! session registry.

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// A session's id (a UUID v4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[schema(value_type = String, format = Uuid)]
pub struct SessionId(pub Uuid);

impl SessionId {
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }

    /// Parses a path segment; anything that is not a UUID names no session.
    pub fn parse(text: &str) -> Result<Self, uuid::Error> {
        Uuid::parse_str(text).map(Self)
    }
}

impl Default for SessionId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
