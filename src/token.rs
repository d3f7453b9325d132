//! Session tokens: HS256 JWTs `{sub: session_id, scope, gen, exp}` (live tokens add `mode`) that
//! open one session's VNC viewer, CDP socket or live view, and nothing else. `gen` is the session's token generation for that
//! scope: minting a new token revokes the older ones (the session keeps the generation, see
//! `Session::mint_token`). No HTTP here: `api/` turns `TokenError` into 401.

use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::ids::SessionId;

/// What a token opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The VNC bridge and the noVNC viewer page of the session.
    Vnc,
    /// The CDP passthrough of the session.
    Cdp,
    /// The live view (screencast and input) of the session; the token also says its `mode`.
    Live,
}

/// What a live token allows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LiveMode {
    /// Watch and drive: input from the viewer reaches the page.
    #[default]
    Control,
    /// Watch only: input is refused (`view_only`).
    View,
}

impl LiveMode {
    pub fn as_str(self) -> &'static str {
        match self {
            LiveMode::Control => "control",
            LiveMode::View => "view",
        }
    }
}

/// The JWT payload.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The session id.
    pub sub: String,
    pub scope: Scope,
    /// The session's token generation for `scope` when this token was minted.
    #[serde(default)]
    pub r#gen: u64,
    /// For `live` tokens: control or view only (absent on other scopes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<LiveMode>,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
}

/// What a valid token grants: which generation it is, and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub generation: u64,
    pub expires_at: DateTime<Utc>,
    /// The live mode (only for `live` tokens).
    pub mode: Option<LiveMode>,
}

/// When a bridge opened with a token must end (besides the session's end).
#[derive(Debug, Clone)]
pub struct TokenLimit {
    /// Fires when a newer token of the scope is minted.
    pub revoked: tokio_util::sync::CancellationToken,
    pub expires_at: DateTime<Utc>,
}

/// A freshly minted token.
#[derive(Debug, Clone)]
pub struct Minted {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// Why a token was refused (every case is a 401 before any upgrade).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("a session token is required (`?token=`)")]
    Missing,
    #[error("the session token has expired")]
    Expired,
    #[error("the session token is not valid")]
    Invalid,
    #[error("the session token was issued for another session")]
    WrongSession,
    #[error("the session token does not grant this access")]
    WrongScope,
    #[error("the session token was replaced by a newer one")]
    Revoked,
}

/// Mints and checks session tokens with one secret.
pub struct TokenIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl TokenIssuer {
    /// An issuer signing with `secret`; tokens live `ttl`.
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // Expired means expired: the worker is the only clock that matters.
        validation.leeway = 0;
        validation.validate_aud = false;
        Self { encoding: EncodingKey::from_secret(secret), decoding: DecodingKey::from_secret(secret), validation, ttl }
    }

    /// How long tokens live.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A token of generation `generation` for `session` and `scope`, valid for the configured lifetime.
    pub fn mint(&self, session: SessionId, scope: Scope, generation: u64) -> Minted {
        let ttl = chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::minutes(30));
        self.mint_until(session, scope, generation, Utc::now() + ttl)
    }

    /// A token that expires at `expires_at` (tests use a past time).
    pub fn mint_until(&self, session: SessionId, scope: Scope, generation: u64, expires_at: DateTime<Utc>) -> Minted {
        let mode = (scope == Scope::Live).then_some(LiveMode::Control);
        self.sign(Claims { sub: session.to_string(), scope, r#gen: generation, mode, exp: expires_at.timestamp() })
    }

    /// A live token of `mode`, valid for the configured lifetime.
    pub fn mint_live(&self, session: SessionId, mode: LiveMode, generation: u64) -> Minted {
        let ttl = chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::minutes(30));
        self.mint_live_until(session, mode, generation, Utc::now() + ttl)
    }

    /// A live token of `mode` that expires at `expires_at` (tests use a past time).
    pub fn mint_live_until(
        &self,
        session: SessionId,
        mode: LiveMode,
        generation: u64,
        expires_at: DateTime<Utc>,
    ) -> Minted {
        let claims = Claims {
            sub: session.to_string(),
            scope: Scope::Live,
            r#gen: generation,
            mode: Some(mode),
            exp: expires_at.timestamp(),
        };
        self.sign(claims)
    }

    fn sign(&self, claims: Claims) -> Minted {
        let expires_at = DateTime::from_timestamp(claims.exp, 0).unwrap_or_default();
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing of a small struct cannot fail");
        Minted { token, expires_at }
    }

    /// Accepts `token` only if it is ours, unexpired, for `session` and for `scope`; the caller
    /// checks the generation against the session's (`Session::check_grant`).
    pub fn verify(&self, token: Option<&str>, session: SessionId, scope: Scope) -> Result<Grant, TokenError> {
        let token = token.filter(|t| !t.is_empty()).ok_or(TokenError::Missing)?;
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })?;
        if data.claims.sub != session.to_string() {
            return Err(TokenError::WrongSession);
        }
        if data.claims.scope != scope {
            return Err(TokenError::WrongScope);
        }
        // A live token says what it allows; any other token says nothing of the kind.
        if (scope == Scope::Live) != data.claims.mode.is_some() {
            return Err(TokenError::Invalid);
        }
        // `exp` is in whole seconds: the token is dead from that second on, as its bridges are.
        let expires_at = DateTime::from_timestamp(data.claims.exp, 0).ok_or(TokenError::Invalid)?;
        if expires_at <= Utc::now() {
            return Err(TokenError::Expired);
        }
        Ok(Grant { generation: data.claims.r#gen, expires_at, mode: data.claims.mode })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_opens_one_session_for_one_scope_until_it_expires() {
        let issuer = TokenIssuer::new(b"0123456789abcdef0123456789abcdef", Duration::from_secs(60));
        let (a, b) = (SessionId::new(), SessionId::new());
        let minted = issuer.mint(a, Scope::Vnc, 3);
        let vnc = minted.token;
        assert_eq!(
            issuer.verify(Some(&vnc), a, Scope::Vnc),
            Ok(Grant { generation: 3, expires_at: minted.expires_at, mode: None })
        );
        assert_eq!(issuer.verify(Some(&vnc), b, Scope::Vnc), Err(TokenError::WrongSession));
        assert_eq!(issuer.verify(Some(&vnc), a, Scope::Cdp), Err(TokenError::WrongScope));
        let expired = issuer.mint_until(a, Scope::Vnc, 0, Utc::now() - chrono::Duration::seconds(5)).token;
        assert_eq!(issuer.verify(Some(&expired), a, Scope::Vnc), Err(TokenError::Expired));
        assert_eq!(issuer.verify(None, a, Scope::Vnc), Err(TokenError::Missing));
        assert_eq!(issuer.verify(Some("x.y.z"), a, Scope::Vnc), Err(TokenError::Invalid));
        let other = TokenIssuer::new(b"another-secret-another-secret-xx", Duration::from_secs(60));
        assert_eq!(other.verify(Some(&vnc), a, Scope::Vnc), Err(TokenError::Invalid));
    }

    #[test]
    fn a_live_token_carries_its_mode_and_opens_only_the_live_view() {
        let issuer = TokenIssuer::new(b"0123456789abcdef0123456789abcdef", Duration::from_secs(60));
        let (a, b) = (SessionId::new(), SessionId::new());
        let view = issuer.mint_live(a, LiveMode::View, 1);
        let grant = issuer.verify(Some(&view.token), a, Scope::Live).unwrap();
        assert_eq!((grant.mode, grant.generation), (Some(LiveMode::View), 1));
        assert_eq!(issuer.verify(Some(&view.token), b, Scope::Live), Err(TokenError::WrongSession));
        assert_eq!(issuer.verify(Some(&view.token), a, Scope::Vnc), Err(TokenError::WrongScope));
        let vnc = issuer.mint(a, Scope::Vnc, 1).token;
        assert_eq!(issuer.verify(Some(&vnc), a, Scope::Live), Err(TokenError::WrongScope));
        let expired = issuer.mint_live_until(a, LiveMode::Control, 1, Utc::now() - chrono::Duration::seconds(1));
        assert_eq!(issuer.verify(Some(&expired.token), a, Scope::Live), Err(TokenError::Expired));
    }
}
