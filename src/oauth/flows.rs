//! The sign-in flows that give a first refresh token: device code (RFC
//! 8628, Microsoft) and loopback redirect with PKCE (RFC 7636 / RFC 8252,
//! Google). Each tells the user what to do through `say` (the CLI prints
//! it) and returns the tokens; the caller keeps them.

use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::http::{self, form_encode, parse_query};
use super::{refused, token_request, Endpoints, OAuthError, Tokens, HTTP_TIMEOUT};
use crate::config::providers::OAuthFlow;

/// How long a loopback sign-in waits for the browser.
pub const BROWSER_WAIT: Duration = Duration::from_secs(600);

/// Runs the account's flow.
pub async fn sign_in(
    ep: &Endpoints,
    say: &mut (dyn FnMut(&str) + Send),
) -> Result<Tokens, OAuthError> {
    match ep.flow {
        OAuthFlow::DeviceCode => device_code(ep, say).await,
        OAuthFlow::LoopbackPkce => loopback_pkce(ep, say).await,
    }
}

#[derive(Deserialize)]
struct DeviceAnswer {
    device_code: Option<String>,
    user_code: Option<String>,
    verification_uri: Option<String>,
    /// Google's name for it.
    verification_url: Option<String>,
    verification_uri_complete: Option<String>,
    expires_in: Option<u64>,
    interval: Option<u64>,
    error: Option<String>,
    error_description: Option<String>,
}

/// RFC 8628: ask for a code, show it, poll the token endpoint until the
/// user has signed in (`authorization_pending`: keep polling; `slow_down`:
/// 5 s more between polls; anything else: stop).
pub async fn device_code(
    ep: &Endpoints,
    say: &mut (dyn FnMut(&str) + Send),
) -> Result<Tokens, OAuthError> {
    let url = ep.device_url.as_deref().ok_or(OAuthError::NoEndpoints)?;
    let mut form = vec![("client_id", ep.client_id.as_str())];
    if !ep.scope.is_empty() {
        form.push(("scope", &ep.scope));
    }
    let (status, body) = http::post_form(url, &form, HTTP_TIMEOUT)
        .await
        .map_err(OAuthError::Http)?;
    let d: DeviceAnswer = serde_json::from_slice(&body).map_err(|_| OAuthError::BadAnswer {
        url: url.to_string(),
        status,
    })?;
    if let Some(error) = d.error {
        return Err(refused(url, (error, d.error_description)));
    }
    let (Some(device_code), Some(user_code)) = (d.device_code, d.user_code) else {
        return Err(OAuthError::BadAnswer {
            url: url.to_string(),
            status,
        });
    };
    let verify = d
        .verification_uri
        .or(d.verification_url)
        .unwrap_or_else(|| "the provider's device sign-in page".into());
    let mut text =
        format!("to sign in, open {verify} in any browser and enter the code {user_code}");
    if let Some(complete) = d.verification_uri_complete {
        text.push_str(&format!(" (or open {complete})"));
    }
    say(&text);
    let deadline = Instant::now() + Duration::from_secs(d.expires_in.unwrap_or(900));
    let mut interval = Duration::from_secs(d.interval.unwrap_or(5));
    let form = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", device_code.as_str()),
        ("client_id", ep.client_id.as_str()),
    ];
    loop {
        if Instant::now() > deadline {
            return Err(OAuthError::Flow(
                "the code expired before the sign-in was done".into(),
            ));
        }
        // The protocol's own pace: the endpoint says how often to ask.
        tokio::time::sleep(interval).await;
        match token_request(&ep.token_url, &form).await? {
            Ok(t) => return Ok(t),
            Err((e, _)) if e == "authorization_pending" => {}
            Err((e, _)) if e == "slow_down" => interval += Duration::from_secs(5),
            Err((e, d)) if matches!(e.as_str(), "access_denied" | "authorization_declined") => {
                return Err(OAuthError::Flow(format!(
                    "the sign-in was declined{}",
                    d.map(|d| format!(" ({d})")).unwrap_or_default()
                )))
            }
            Err(e) => return Err(refused(&ep.token_url, e)),
        }
    }
}

fn random_b64(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .expect("the system's random generator works");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// PKCE S256: the challenge for a verifier.
pub fn pkce_challenge(verifier: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d.as_ref())
}

/// RFC 8252: a browser on this machine signs in and is sent back to
/// `http://127.0.0.1:PORT/`, where mailkeep listens; the code is exchanged
/// with the PKCE verifier that only this process knows.
pub async fn loopback_pkce(
    ep: &Endpoints,
    say: &mut (dyn FnMut(&str) + Send),
) -> Result<Tokens, OAuthError> {
    let auth_url = ep.auth_url.as_deref().ok_or(OAuthError::NoEndpoints)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| {
            OAuthError::Flow(format!("cannot listen on 127.0.0.1 for the browser: {e}"))
        })?;
    let port = listener
        .local_addr()
        .map_err(|e| OAuthError::Flow(e.to_string()))?
        .port();
    let redirect = format!("http://127.0.0.1:{port}/");
    let verifier = random_b64(32);
    let state = random_b64(16);
    let query = form_encode(&[
        ("response_type", "code"),
        ("client_id", &ep.client_id),
        ("redirect_uri", &redirect),
        ("scope", &ep.scope),
        ("code_challenge", &pkce_challenge(&verifier)),
        ("code_challenge_method", "S256"),
        ("state", &state),
        // Google gives a refresh token only when asked for offline access.
        ("access_type", "offline"),
        ("prompt", "consent"),
    ]);
    let sep = if auth_url.contains('?') { '&' } else { '?' };
    say(&format!(
        "to sign in, open this address in a browser on this machine:\n  {auth_url}{sep}{query}"
    ));
    let code = tokio::time::timeout(BROWSER_WAIT, wait_for_code(&listener, &state))
        .await
        .map_err(|_| OAuthError::Flow("no answer from the browser within 10 minutes".into()))??;
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect.as_str()),
        ("client_id", ep.client_id.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    if let Some(s) = &ep.client_secret {
        form.push(("client_secret", s));
    }
    token_request(&ep.token_url, &form)
        .await?
        .map_err(|e| refused(&ep.token_url, e))
}

/// Serves the redirect: the first request with our `state` and a `code`
/// (or an `error`) ends the wait; anything else (a favicon) gets a 404.
async fn wait_for_code(
    listener: &tokio::net::TcpListener,
    state: &str,
) -> Result<String, OAuthError> {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            continue;
        };
        let mut buf = vec![0u8; 8192];
        let mut n = 0;
        while n < buf.len() {
            match tokio::time::timeout(Duration::from_secs(10), sock.read(&mut buf[n..])).await {
                Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
                Ok(Ok(k)) => {
                    n += k;
                    if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            }
        }
        let head = String::from_utf8_lossy(&buf[..n]).into_owned();
        let target = head
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("/");
        let params = parse_query(target.split_once('?').map(|(_, q)| q).unwrap_or(""));
        let get = |k: &str| {
            params
                .iter()
                .find(|(pk, _)| pk == k)
                .map(|(_, v)| v.clone())
        };
        let (reply, result) = match (get("state"), get("code"), get("error")) {
            (Some(s), Some(code), _) if s == state => (
                "mailkeep: signed in. You can close this page.",
                Some(Ok(code)),
            ),
            (Some(s), _, Some(err)) if s == state => (
                "mailkeep: the sign-in did not succeed. See the terminal.",
                Some(Err(OAuthError::Flow(format!(
                    "the provider answered `{err}`"
                )))),
            ),
            _ => ("not found", None),
        };
        let status = if result.is_some() {
            "200 OK"
        } else {
            "404 Not Found"
        };
        let _ = sock
            .write_all(
                format!(
                    "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                    reply.len()
                )
                .as_bytes(),
            )
            .await;
        let _ = sock.shutdown().await;
        if let Some(r) = result {
            return r;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_matches_rfc7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
