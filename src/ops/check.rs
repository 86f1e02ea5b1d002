//! What `account add` checks before it saves an account: it logs in and
//! lists the folders (Microsoft can accept a login and fail the next
//! command, so a login alone proves little), and opens INBOX read-only.

use crate::config::AccountConfig;
use crate::imap::TlsInfo;

use super::{Login, OpError};

/// What the check found.
#[derive(Clone, Debug)]
pub struct AccountCheck {
    pub host: String,
    pub username: String,
    pub tls: Option<TlsInfo>,
    pub folders: usize,
    /// `(special use, folder)` pairs the server marked (`\Sent` → `Sent`).
    pub special: Vec<(String, String)>,
    /// Messages in INBOX.
    pub inbox_messages: Option<u32>,
}

/// Logs in as the account would, lists its folders and examines INBOX.
/// Changes nothing on the server.
pub async fn check_account(
    login: &Login<'_>,
    acct: &AccountConfig,
) -> Result<AccountCheck, OpError> {
    let mut tls = None;
    let mut conn = login
        .connect_observed(&mut |stage| {
            if let crate::imap::Stage::Secured(info) = stage {
                tls = Some(info.clone());
            }
        })
        .await?;
    let folders = conn.list().await?;
    let special = folders
        .iter()
        .filter_map(|f| f.special_use.clone().map(|u| (u, f.display.clone())))
        .collect();
    let inbox = folders
        .iter()
        .find(|f| f.raw.eq_ignore_ascii_case("INBOX") && f.selectable)
        .map(|f| f.raw.clone());
    let inbox_messages = match inbox {
        Some(raw) => Some(conn.examine(&raw).await?.exists),
        None => None,
    };
    let _ = conn.logout().await;
    Ok(AccountCheck {
        host: acct.host.clone(),
        username: acct.username.clone(),
        tls,
        folders: folders.len(),
        special,
        inbox_messages,
    })
}
