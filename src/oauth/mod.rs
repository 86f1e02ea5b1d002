//! OAuth2 access tokens for IMAP (SASL XOAUTH2 / OAUTHBEARER). Beside
//! `config`: it talks HTTP, not IMAP. Uses: config (accounts, presets,
//! keyring), model (Secret), imap (only its HTTPS client config).
//!
//! Two ways to a token:
//! - `oauth2_token_command`: any helper (oama, mutt_oauth2.py,
//!   email-oauth2-proxy's, …) prints a fresh access token on its first line;
//! - mailkeep's own flows with a client ID the user registered
//!   (`oauth2_client_id`): Microsoft's device code (RFC 8628) and Google's
//!   loopback redirect with PKCE (RFC 7636; Google refuses the Gmail scope in
//!   the device flow). `mailkeep account login NAME` runs the flow once; the
//!   refresh token, and the access token with its expiry, are kept in the
//!   keyring (entry `<account>:<username>#oauth2`). An access token is used
//!   while it has more than [`REFRESH_MARGIN`] left, else refreshed first.
//!
//! Tokens never appear in messages: errors carry the endpoint's `error` and
//! `error_description`, never what was sent.

pub mod flows;
pub mod http;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::credentials::{self, CredentialError};
use crate::config::providers::{self, OAuthFlow};
use crate::config::AccountConfig;
use crate::model::Secret;

/// An access token with less than this left is refreshed before use.
pub const REFRESH_MARGIN: i64 = 120;
/// Limit for one HTTP exchange with an endpoint.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// What kind of failure, for the exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OAuthErrorKind {
    /// The account's OAuth2 settings are incomplete or wrong (exit 2).
    Config,
    /// The endpoint could not be reached (exit 4).
    Network,
    /// The endpoint refused (exit 3): log in again.
    Auth,
}

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("the token command failed")]
    Command(#[source] CredentialError),
    #[error("no OAuth2 endpoints are known for this account (no provider with OAuth2, no `oauth2_token_url`)")]
    NoEndpoints,
    #[error("`oauth2_client_id` is not set")]
    NoClientId,
    #[error("not signed in yet: no OAuth2 refresh token in the keyring")]
    NotLoggedIn,
    #[error("the keyring failed")]
    Keyring(#[source] CredentialError),
    #[error("cannot reach the OAuth2 endpoint")]
    Http(#[source] http::HttpError),
    #[error("the OAuth2 endpoint {url} refused: {error}{}", description.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Refused {
        url: String,
        error: String,
        description: Option<String>,
    },
    #[error("the OAuth2 endpoint {url} answered HTTP {status} with something that is not a token")]
    BadAnswer { url: String, status: u16 },
    #[error("the sign-in was not completed: {0}")]
    Flow(String),
}

impl OAuthError {
    pub fn kind(&self) -> OAuthErrorKind {
        match self {
            OAuthError::NoEndpoints | OAuthError::NoClientId => OAuthErrorKind::Config,
            OAuthError::Http(_) | OAuthError::BadAnswer { .. } => OAuthErrorKind::Network,
            OAuthError::Command(_)
            | OAuthError::NotLoggedIn
            | OAuthError::Keyring(_)
            | OAuthError::Refused { .. }
            | OAuthError::Flow(_) => OAuthErrorKind::Auth,
        }
    }

    /// What the user can do about it.
    pub fn hint(&self, account: &str) -> Option<String> {
        Some(match self {
            OAuthError::Command(e) => e.hint().unwrap_or_default(),
            OAuthError::NoEndpoints => "set `provider` (e.g. `outlook`, `gmail`) or `oauth2_token_url` and `oauth2_device_url`/`oauth2_auth_url` for the account".into(),
            OAuthError::NoClientId => "register an app with the provider (docs/providers.md says how) and set `oauth2_client_id`; or set `oauth2_token_command`".into(),
            OAuthError::NotLoggedIn => format!("run `mailkeep account login {account}` once (it opens the provider's sign-in)"),
            OAuthError::Keyring(e) => e.hint().unwrap_or_default(),
            OAuthError::Http(_) => "check the network; re-running retries".into(),
            OAuthError::Refused { error, .. } if error == "invalid_grant" => format!(
                "the refresh token is no longer valid (revoked, expired, or a \"Testing\" Google app's 7 days are over): run `mailkeep account login {account}` again"
            ),
            OAuthError::Refused { .. } => format!("check `oauth2_client_id` (and `oauth2_client_secret`), then run `mailkeep account login {account}` again"),
            OAuthError::BadAnswer { .. } => "check `oauth2_token_url`".into(),
            OAuthError::Flow(_) => format!("run `mailkeep account login {account}` again and finish the sign-in in the browser"),
        })
    }
}

/// Where an account gets its tokens, resolved from its settings and its
/// provider preset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    pub flow: OAuthFlow,
    pub auth_url: Option<String>,
    pub token_url: String,
    pub device_url: Option<String>,
    pub scope: String,
    pub client_id: String,
    pub client_secret: Option<String>,
}

/// The account's OAuth2 endpoints: its own `oauth2_*` settings over its
/// provider's.
pub fn endpoints(acct: &AccountConfig) -> Result<Endpoints, OAuthError> {
    let preset = providers::for_account(acct).and_then(|p| p.oauth2);
    let tenant = acct.oauth2_tenant.as_deref().unwrap_or("common");
    let t = |s: &str| s.replace("{tenant}", tenant);
    let token_url = acct
        .oauth2_token_url
        .clone()
        .or_else(|| preset.map(|p| t(p.token_url)))
        .ok_or(OAuthError::NoEndpoints)?;
    let device_url = acct
        .oauth2_device_url
        .clone()
        .or_else(|| preset.and_then(|p| p.device_url).map(t));
    let auth_url = acct
        .oauth2_auth_url
        .clone()
        .or_else(|| preset.map(|p| t(p.auth_url)));
    let flow = match (preset.map(|p| p.flow), &device_url, &auth_url) {
        (_, Some(_), None) => OAuthFlow::DeviceCode,
        (_, None, Some(_)) => OAuthFlow::LoopbackPkce,
        (Some(f), _, _) => f,
        (None, Some(_), Some(_)) => OAuthFlow::DeviceCode,
        (None, None, None) => return Err(OAuthError::NoEndpoints),
    };
    Ok(Endpoints {
        flow,
        auth_url,
        token_url,
        device_url,
        scope: acct
            .oauth2_scope
            .clone()
            .or_else(|| preset.map(|p| p.scope.to_string()))
            .unwrap_or_default(),
        client_id: acct
            .oauth2_client_id
            .clone()
            .ok_or(OAuthError::NoClientId)?,
        client_secret: acct.oauth2_client_secret.clone(),
    })
}

/// What the keyring keeps for an account.
#[derive(Clone, Serialize, Deserialize)]
pub struct Tokens {
    pub refresh_token: Option<String>,
    pub access_token: String,
    /// Unix seconds; 0 when the endpoint did not say.
    pub expires_at: i64,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

fn keyring_user(acct: &AccountConfig) -> String {
    format!("{}#oauth2", acct.username)
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The tokens kept for the account, if any.
pub fn load_tokens(account: &str, acct: &AccountConfig) -> Result<Option<Tokens>, OAuthError> {
    match credentials::get_keyring(account, &keyring_user(acct)) {
        Ok(s) => Ok(serde_json::from_str(s.expose()).ok()),
        Err(CredentialError::KeyringNoEntry { .. }) => Ok(None),
        Err(e) => Err(OAuthError::Keyring(e)),
    }
}

/// Keeps the tokens in the keyring.
pub fn save_tokens(account: &str, acct: &AccountConfig, t: &Tokens) -> Result<(), OAuthError> {
    let text = serde_json::to_string(t).expect("tokens serialize");
    credentials::set_keyring(account, &keyring_user(acct), &Secret::new(text))
        .map_err(OAuthError::Keyring)
}

/// Forgets the account's tokens (a missing entry is fine).
pub fn delete_tokens(account: &str, acct: &AccountConfig) -> Result<(), OAuthError> {
    credentials::delete_keyring(account, &keyring_user(acct)).map_err(OAuthError::Keyring)
}

/// A token endpoint's answer.
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    refresh_token: Option<String>,
    expires_in: Option<serde_json::Value>,
    error: Option<String>,
    error_description: Option<String>,
}

/// POSTs to a token endpoint: `Ok(Ok(tokens))`, or `Ok(Err((error,
/// description)))` for an OAuth error answer (the device flow polls on some).
async fn token_request(
    url: &str,
    form: &[(&str, &str)],
) -> Result<Result<Tokens, (String, Option<String>)>, OAuthError> {
    let (status, body) = http::post_form(url, form, HTTP_TIMEOUT)
        .await
        .map_err(OAuthError::Http)?;
    let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|_| OAuthError::BadAnswer {
        url: url.to_string(),
        status,
    })?;
    if let Some(error) = answer.error {
        return Ok(Err((error, answer.error_description)));
    }
    let Some(access_token) = answer.access_token.filter(|_| (200..300).contains(&status)) else {
        return Err(OAuthError::BadAnswer {
            url: url.to_string(),
            status,
        });
    };
    let expires_in = match answer.expires_in {
        Some(serde_json::Value::Number(n)) => n.as_i64(),
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    Ok(Ok(Tokens {
        refresh_token: answer.refresh_token,
        access_token,
        expires_at: expires_in.map(|e| now() + e).unwrap_or(0),
    }))
}

fn refused(url: &str, (error, description): (String, Option<String>)) -> OAuthError {
    OAuthError::Refused {
        url: url.to_string(),
        error,
        description,
    }
}

/// Exchanges the refresh token for a new access token; keeps the old
/// refresh token when the endpoint sends no new one.
pub async fn refresh(ep: &Endpoints, refresh_token: &str) -> Result<Tokens, OAuthError> {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", ep.client_id.as_str()),
    ];
    if let Some(s) = &ep.client_secret {
        form.push(("client_secret", s));
    }
    if !ep.scope.is_empty() {
        form.push(("scope", &ep.scope));
    }
    let mut t = token_request(&ep.token_url, &form)
        .await?
        .map_err(|e| refused(&ep.token_url, e))?;
    if t.refresh_token.is_none() {
        t.refresh_token = Some(refresh_token.to_string());
    }
    Ok(t)
}

/// An access token for the account: from its token command, or the
/// keyring's (refreshed first when it is about to expire).
pub async fn access_token(account: &str, acct: &AccountConfig) -> Result<Secret, OAuthError> {
    if let Some(cmd) = &acct.oauth2_token_command {
        let (account, cmd) = (account.to_string(), cmd.clone());
        return tokio::task::spawn_blocking(move || credentials::from_command(&account, &cmd))
            .await
            .expect("token command task panicked")
            .map_err(OAuthError::Command);
    }
    let ep = endpoints(acct)?;
    let (a, c) = (account.to_string(), acct.clone());
    let kept = tokio::task::spawn_blocking(move || load_tokens(&a, &c))
        .await
        .expect("keyring task panicked")?
        .ok_or(OAuthError::NotLoggedIn)?;
    let fresh_enough = kept.expires_at != 0 && kept.expires_at - now() > REFRESH_MARGIN;
    if fresh_enough {
        return Ok(Secret::new(kept.access_token));
    }
    let Some(rt) = kept.refresh_token.clone() else {
        // No refresh token: the access token is all there is.
        return Ok(Secret::new(kept.access_token));
    };
    let fresh = refresh(&ep, &rt).await?;
    let (a, c, t) = (account.to_string(), acct.clone(), fresh.clone());
    tokio::task::spawn_blocking(move || save_tokens(&a, &c, &t))
        .await
        .expect("keyring task panicked")?;
    Ok(Secret::new(fresh.access_token))
}
