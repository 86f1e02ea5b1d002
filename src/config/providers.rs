//! Provider presets: one data table of what it takes to reach each big mail
//! provider — host, port, TLS, login name, how to log in (app-specific
//! password, OAuth2), known folder names, connection limits, throttling
//! signals and quirks — never `if provider == …` code paths.
//!
//! Facts come from `shared/research/providers-migrate.md` (each with its
//! source there). Where the research marks a fact as weak, the preset lists
//! it in [`Preset::weak`] and `mailkeep providers` and docs/providers.md
//! say so.
//!
//! API: [`all`], [`preset`] (by id or alias), [`for_address`] (by the
//! address's domain), [`for_account`] (an account's preset: its `provider`
//! setting, else its host), [`max_connections`] (how many connections an
//! account's provider allows), and the fields of [`Preset`]. A preset's
//! `throttle_signals` are what its servers say to mean "slow down"; the one
//! place that recognises them is [`crate::imap::throttle_in_text`] (a test
//! here checks it knows every preset's).

use crate::config::AccountConfig;
use crate::model::TlsMode;

/// How a provider wants the login name written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginName {
    /// The full address, `taro@example.com`.
    Address,
    /// The part before the `@` (iCloud: `taro` for `taro@icloud.com`).
    LocalPart,
    /// An ID of the provider's own that is not derived from the address
    /// (docomo: the d ACCOUNT ID); the text says what it is.
    ProviderId(&'static str),
}

/// What the password field takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    /// An app-specific password (the account password is refused, or is
    /// refused once two-step login is on).
    AppPassword,
    /// A password made for IMAP alone, in the provider's settings.
    ImapPassword,
    /// The account's own password (or one the provider shows for the mail
    /// account).
    Password,
    /// OAuth2 only: passwords are refused.
    OAuth2Only,
}

/// Which built-in OAuth2 flow fits the provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OAuthFlow {
    /// RFC 8628 device code: a code to type on any browser (Microsoft).
    DeviceCode,
    /// Browser on this machine, redirect to a loopback port, PKCE (Google:
    /// the Gmail scope is refused in the device flow).
    LoopbackPkce,
}

/// A provider's OAuth2 endpoints, for mailkeep's own flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OAuth2Preset {
    pub flow: OAuthFlow,
    /// `{tenant}` is replaced by `oauth2_tenant` (default `common`).
    pub auth_url: &'static str,
    pub token_url: &'static str,
    pub device_url: Option<&'static str>,
    pub scope: &'static str,
    /// Where to register your own client ID.
    pub register: &'static str,
}

/// One provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Preset {
    /// `gmail`: the name for `--provider` and `provider = "…"`.
    pub id: &'static str,
    /// `Gmail`
    pub name: &'static str,
    /// Other names `--provider` takes.
    pub aliases: &'static [&'static str],
    /// Address domains that mean this provider (for guessing).
    pub domains: &'static [&'static str],
    pub host: &'static str,
    /// Other servers of the same provider (read-only export servers, …),
    /// so that an account set to one of them still finds its preset.
    pub alt_hosts: &'static [&'static str],
    pub port: u16,
    pub tls: TlsMode,
    pub login: LoginName,
    pub auth: Auth,
    /// How to get the password the server takes (English), step by step.
    pub password_steps: &'static str,
    /// The same settings page as the Japanese interface names it, where
    /// there is one.
    pub password_steps_ja: Option<&'static str>,
    /// IMAP has to be switched on first, and where.
    pub enable_imap: Option<&'static str>,
    pub oauth2: Option<OAuth2Preset>,
    /// Simultaneous connections allowed per account, where known (shared
    /// with the user's other mail programs). Read it through
    /// [`max_connections`] for an account.
    pub max_connections: Option<u32>,
    /// The largest message the server takes (APPENDLIMIT or documented).
    pub max_message_bytes: Option<u64>,
    /// Bytes a day the provider lets IMAP download (fetch) and upload
    /// (APPEND) before it throttles or suspends IMAP for the day.
    pub download_bytes_per_day: Option<u64>,
    pub upload_bytes_per_day: Option<u64>,
    /// Texts in server answers that mean "slow down" (not "failed").
    pub throttle_signals: &'static [&'static str],
    /// Known folder names by special use (`\Sent`, …), most usual first.
    /// Prefer the server's SPECIAL-USE attributes: names are localized.
    pub folders: &'static [(&'static str, &'static [&'static str])],
    /// Other things worth knowing.
    pub quirks: &'static [&'static str],
    /// Facts in this preset that the sources support only weakly.
    pub weak: &'static [&'static str],
}

impl Preset {
    /// The login name for `address` by this provider's rule; `None` when it
    /// cannot be derived (a provider's own ID).
    pub fn login_for(&self, address: &str) -> Option<String> {
        match self.login {
            LoginName::Address => Some(address.to_string()),
            LoginName::LocalPart => Some(
                address
                    .rsplit_once('@')
                    .map(|(l, _)| l)
                    .unwrap_or(address)
                    .to_string(),
            ),
            LoginName::ProviderId(_) => None,
        }
    }

    /// Whether `name` is this preset's id or one of its aliases.
    pub fn is_named(&self, name: &str) -> bool {
        self.id.eq_ignore_ascii_case(name)
            || self.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
    }

    /// A one-line description of the login, for tables and hints.
    pub fn login_text(&self) -> String {
        match self.login {
            LoginName::Address => "full address".into(),
            LoginName::LocalPart => "part before the @".into(),
            LoginName::ProviderId(what) => what.into(),
        }
    }

    /// The login in a few words, for the table of `mailkeep providers`.
    pub fn login_short(&self) -> String {
        let long = self.login_text();
        let cut = [" (", ", "]
            .iter()
            .filter_map(|sep| long.find(sep))
            .min()
            .unwrap_or(long.len());
        long[..cut].to_string()
    }

    /// A one-line description of what the password is.
    pub fn auth_text(&self) -> &'static str {
        match self.auth {
            Auth::AppPassword => "app-specific password",
            Auth::ImapPassword => "IMAP password from the provider's settings",
            Auth::Password => "account password",
            Auth::OAuth2Only => "OAuth2 only (passwords are refused)",
        }
    }

    /// The known names of the folder with this special use (`\Sent`).
    pub fn folder_names(&self, special_use: &str) -> &'static [&'static str] {
        self.folders
            .iter()
            .find(|(u, _)| u.eq_ignore_ascii_case(special_use))
            .map(|(_, n)| *n)
            .unwrap_or(&[])
    }
}

/// Every preset, in the order `mailkeep providers` lists them.
pub fn all() -> &'static [Preset] {
    PRESETS
}

/// The preset named `name` (its id or an alias, any case).
pub fn preset(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.is_named(name.trim()))
}

/// The preset for an address's domain (`taro@icloud.com` → iCloud).
pub fn for_address(address: &str) -> Option<&'static Preset> {
    let domain = address.rsplit_once('@')?.1.trim().trim_end_matches('.');
    for_domain(domain)
}

/// The preset for a mail domain (`me.com` → iCloud).
pub fn for_domain(domain: &str) -> Option<&'static Preset> {
    PRESETS
        .iter()
        .find(|p| p.domains.iter().any(|d| d.eq_ignore_ascii_case(domain)))
}

/// The preset of an account: the one its `provider` setting names, else the
/// one whose server it uses (`imap.gmail.com` → Gmail). Two presets share
/// `outlook.office365.com` (and `imap.gmail.com`): by host alone the first
/// one in the table counts, so an account made by `account add` names its
/// preset.
pub fn for_account(acct: &AccountConfig) -> Option<&'static Preset> {
    acct.provider
        .as_deref()
        .and_then(preset)
        .or_else(|| for_host(&acct.host))
}

/// The preset whose server (or one of its other servers) is `host`.
pub fn for_host(host: &str) -> Option<&'static Preset> {
    let host = host.trim().trim_end_matches('.');
    PRESETS.iter().find(|p| {
        p.host.eq_ignore_ascii_case(host)
            || p.alt_hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    })
}

/// How many connections at once the account's provider allows, where it is
/// known (Gmail 15, Microsoft 365 about 20); `None` for a server without a
/// preset or a preset without a known limit: the caller keeps its own
/// default. These are per account and shared with the user's phone and
/// other mail programs, so stay below them.
pub fn max_connections(acct: &AccountConfig) -> Option<u32> {
    for_account(acct).and_then(|p| p.max_connections)
}

const GMAIL_FOLDERS: &[(&str, &[&str])] = &[
    (
        "\\All",
        &[
            "[Gmail]/All Mail",
            "[Google Mail]/All Mail",
            "[Gmail]/すべてのメール",
        ],
    ),
    (
        "\\Sent",
        &[
            "[Gmail]/Sent Mail",
            "[Google Mail]/Sent Mail",
            "[Gmail]/送信済みメール",
        ],
    ),
    ("\\Drafts", &["[Gmail]/Drafts", "[Gmail]/下書き"]),
    ("\\Junk", &["[Gmail]/Spam", "[Gmail]/迷惑メール"]),
    (
        "\\Trash",
        &["[Gmail]/Trash", "[Gmail]/Bin", "[Gmail]/ゴミ箱"],
    ),
    ("\\Flagged", &["[Gmail]/Starred", "[Gmail]/スター付き"]),
    ("\\Important", &["[Gmail]/Important", "[Gmail]/重要"]),
];

const GMAIL_THROTTLE: &[&str] = &[
    "[THROTTLED]",
    "Too many simultaneous connections",
    "Account exceeded command or bandwidth limits",
    "Session expired, please login again",
];

const GOOGLE_OAUTH: OAuth2Preset = OAuth2Preset {
    flow: OAuthFlow::LoopbackPkce,
    auth_url: "https://accounts.google.com/o/oauth2/auth",
    token_url: "https://oauth2.googleapis.com/token",
    device_url: None,
    scope: "https://mail.google.com/",
    register: "Google Cloud console → APIs & Services → Credentials → Create credentials → OAuth client ID → Desktop app (enable the Gmail API; the app's OAuth consent screen must list your address as a test user, and a \"Testing\" app's refresh tokens expire after 7 days)",
};

const MICROSOFT_OAUTH: OAuth2Preset = OAuth2Preset {
    flow: OAuthFlow::DeviceCode,
    auth_url: "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize",
    token_url: "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
    device_url: Some("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/devicecode"),
    scope: "https://outlook.office.com/IMAP.AccessAsUser.All offline_access",
    register: "Microsoft Entra admin center (or portal.azure.com) → App registrations → New registration (accounts in any organizational directory and personal Microsoft accounts) → Authentication → Allow public client flows: Yes → API permissions → add Office 365 Exchange Online / IMAP.AccessAsUser.All",
};

const OUTLOOK_FOLDERS: &[(&str, &[&str])] = &[
    (
        "\\Sent",
        &["Sent Items", "送信済みアイテム", "Gesendete Elemente"],
    ),
    ("\\Trash", &["Deleted Items", "削除済みアイテム"]),
    ("\\Junk", &["Junk Email", "Junk E-Mail", "迷惑メール"]),
    ("\\Drafts", &["Drafts", "下書き"]),
    ("\\Archive", &["Archive", "アーカイブ"]),
];

const MICROSOFT_THROTTLE: &[&str] = &[
    "Request is throttled",
    "Suggested Backoff Time",
    "Server Unavailable. 15",
];

const YAHOO_THROTTLE: &[&str] = &["[LIMIT] CAPABILITY Rate limit hit"];

const GMAIL: Preset = Preset {
    id: "gmail",
    name: "Gmail",
    aliases: &["google", "googlemail"],
    domains: &["gmail.com", "googlemail.com"],
    host: "imap.gmail.com",
    alt_hosts: &[],
    port: 993,
    tls: TlsMode::Implicit,
    login: LoginName::Address,
    auth: Auth::AppPassword,
    password_steps: "turn on 2-Step Verification, then Google Account → Security → 2-Step Verification → App passwords; create one for mailkeep and use its 16 letters (no spaces needed). Not offered for work/school, security-key-only or Advanced Protection accounts: use OAuth2 there",
    password_steps_ja: Some("Google アカウント →「セキュリティ」→「2 段階認証プロセス」→「アプリ パスワード」"),
    enable_imap: Some("Gmail settings → See all settings → Forwarding and POP/IMAP → IMAP access: Enable (設定 →「すべての設定を表示」→「メール転送と POP/IMAP」→「IMAP アクセス」)"),
    oauth2: Some(GOOGLE_OAUTH),
    max_connections: Some(15),
    max_message_bytes: Some(35_651_584),
    download_bytes_per_day: Some(2_500_000_000),
    upload_bytes_per_day: Some(500_000_000),
    throttle_signals: GMAIL_THROTTLE,
    folders: GMAIL_FOLDERS,
    quirks: &[
        "labels are folders: a message with two labels is in two folders and in [Gmail]/All Mail (mailkeep stores its bytes once)",
        "IMAP download is capped at 2,500 MB a day and upload at 500 MB a day",
        "the 15 connections are shared with phones and other mail programs",
        "\"Limit IMAP folder size\" in Gmail's settings can hide messages from IMAP",
        "folder names are localized and may start with [Google Mail]/ (UK, Germany)",
    ],
    weak: &[],
};

const GOOGLE_WORKSPACE: Preset = Preset {
    id: "google-workspace",
    name: "Google Workspace",
    aliases: &["workspace", "gsuite", "g-suite"],
    domains: &[],
    password_steps: "password sign-in for IMAP is off for every Workspace account since 2024-09-30: use OAuth2, or an app password where your admin allows them (Google Account → Security → 2-Step Verification → App passwords)",
    enable_imap: Some("your admin may have turned IMAP off (Admin console → Apps → Google Workspace → Gmail → End user access); and in Gmail settings → Forwarding and POP/IMAP → IMAP access"),
    quirks: &[
        "as Gmail: labels are folders, 2,500 MB/day download, 500 MB/day upload, 15 connections",
        "admins can use domain-wide delegation with the https://www.googleapis.com/auth/gmail.imap_admin scope (all labels, no folder-size limit)",
    ],
    ..GMAIL
};

const ICLOUD: Preset = Preset {
    id: "icloud",
    name: "iCloud Mail",
    aliases: &["apple", "me", "mac"],
    domains: &["icloud.com", "me.com", "mac.com"],
    host: "imap.mail.me.com",
    alt_hosts: &[],
    port: 993,
    tls: TlsMode::Implicit,
    login: LoginName::LocalPart,
    auth: Auth::AppPassword,
    password_steps: "account.apple.com → Sign-In and Security → App-Specific Passwords → Generate (format xxxx-xxxx-xxxx-xxxx); the Apple Account password itself is refused over IMAP",
    password_steps_ja: Some("account.apple.com →「サインインとセキュリティ」→「App 用パスワード」"),
    enable_imap: None,
    oauth2: None,
    max_connections: None,
    max_message_bytes: Some(20_000_000),
    download_bytes_per_day: None,
    upload_bytes_per_day: None,
    throttle_signals: &[],
    folders: &[
        ("\\Sent", &["Sent Messages", "Sent Items"]),
        ("\\Trash", &["Deleted Messages", "Deleted Items"]),
        ("\\Drafts", &["Drafts"]),
        ("\\Junk", &["Junk"]),
        ("\\Archive", &["Archive"]),
    ],
    quirks: &[
        "the login is the part before the @ (taro for taro@icloud.com); the full address is reported to work too",
        "iCloud+ custom domains log in with the iCloud address, not the custom one",
        "storage is 5 GB free, shared with backups and photos; mail stops arriving when it is full",
        "messages over 20 MB are refused",
    ],
    weak: &[],
};

const YAHOO: Preset = Preset {
    id: "yahoo",
    name: "Yahoo Mail",
    aliases: &["ymail"],
    domains: &[
        "yahoo.com",
        "ymail.com",
        "rocketmail.com",
        "yahoo.co.uk",
        "yahoo.fr",
        "yahoo.de",
        "yahoo.it",
        "yahoo.es",
        "yahoo.ca",
        "yahoo.com.au",
        "yahoo.in",
    ],
    host: "imap.mail.yahoo.com",
    alt_hosts: &["export.imap.mail.yahoo.com"],
    port: 993,
    tls: TlsMode::Implicit,
    login: LoginName::Address,
    auth: Auth::AppPassword,
    password_steps: "Yahoo account → Account security → Generate app password (Manage app passwords); use it instead of your password",
    password_steps_ja: None,
    enable_imap: None,
    oauth2: None,
    max_connections: None,
    max_message_bytes: None,
    download_bytes_per_day: None,
    upload_bytes_per_day: None,
    throttle_signals: YAHOO_THROTTLE,
    folders: &[
        ("\\Sent", &["Sent"]),
        ("\\Trash", &["Trash"]),
        ("\\Junk", &["Bulk", "Spam"]),
        ("\\Drafts", &["Draft", "Drafts"]),
        ("\\Archive", &["Archive"]),
    ],
    quirks: &[
        "the server lists at most about 10,000 messages per folder; export.imap.mail.yahoo.com (read-only) shows them all — use it as `host` for a full backup",
        "APPEND needs a final CRLF",
        "Yahoo accepts no new OAuth2 client registrations for mail: use an app password",
    ],
    weak: &["folder names Bulk/Draft (not in the research notes; the server's SPECIAL-USE attributes decide)"],
};

const YAHOO_JAPAN: Preset = Preset {
    id: "yahoo-japan",
    name: "Yahoo! JAPAN メール",
    aliases: &["yahoo-jp", "yahoo.co.jp"],
    domains: &["yahoo.co.jp"],
    host: "imap.mail.yahoo.co.jp",
    alt_hosts: &[],
    port: 993,
    tls: TlsMode::Implicit,
    login: LoginName::LocalPart,
    auth: Auth::Password,
    password_steps: "the Yahoo! JAPAN ID's password; with \"password login disabled\" (SMS codes instead), IMAP may not work",
    password_steps_ja: Some("Yahoo!メール →「設定・利用規約」→「メールの設定」→「IMAP/POP/SMTPアクセスとメール転送」で IMAP を「有効にする」; ログインは「パスワード無効設定」をしていないこと"),
    enable_imap: Some("Yahoo! JAPAN mail settings → IMAP/POP/SMTP access: enable IMAP"),
    oauth2: None,
    max_connections: None,
    max_message_bytes: None,
    download_bytes_per_day: None,
    upload_bytes_per_day: None,
    throttle_signals: &[],
    folders: &[],
    quirks: &["Thunderbird's provider database lists only POP3 for yahoo.co.jp; public configurations use IMAP on port 993"],
    weak: &[
        "IMAP host and port (public code, not the provider's documentation)",
        "login name: public code uses both the Yahoo! JAPAN ID (part before @) and the full address",
        "that IMAP must be switched on, and the settings page names",
        "the effect of \"password login disabled\" on IMAP",
    ],
};

const OUTLOOK: Preset = Preset {
    id: "outlook",
    name: "Outlook.com (Hotmail, Live, MSN)",
    aliases: &["hotmail", "live", "msn", "outlook.com"],
    domains: &[
        "outlook.com",
        "hotmail.com",
        "live.com",
        "msn.com",
        "outlook.jp",
        "hotmail.co.jp",
        "live.jp",
        "hotmail.co.uk",
        "outlook.de",
        "hotmail.de",
        "hotmail.fr",
    ],
    host: "outlook.office365.com",
    alt_hosts: &[],
    port: 993,
    tls: TlsMode::Implicit,
    login: LoginName::Address,
    auth: Auth::OAuth2Only,
    password_steps: "passwords and app passwords stopped working for personal Outlook accounts on 2024-09-16: log in with OAuth2 (`oauth2_client_id` and `mailkeep account login NAME`, or `oauth2_token_command`)",
    password_steps_ja: None,
    enable_imap: None,
    oauth2: Some(MICROSOFT_OAUTH),
    max_connections: None,
    max_message_bytes: None,
    download_bytes_per_day: None,
    upload_bytes_per_day: None,
    throttle_signals: MICROSOFT_THROTTLE,
    folders: OUTLOOK_FOLDERS,
    quirks: &[
        "Microsoft can accept a login and fail the next command; mailkeep's check lists folders after logging in",
        "folder names are compared without regard to case",
    ],
    weak: &[],
};

const MICROSOFT365: Preset = Preset {
    id: "microsoft365",
    name: "Microsoft 365 / Exchange Online",
    aliases: &["office365", "m365", "exchange-online", "o365"],
    domains: &[],
    password_steps: "basic authentication is off for Exchange Online: log in with OAuth2. Your admin must allow IMAP for the mailbox; \"security defaults\" block it; an admin account without a licensed mailbox cannot log in. A shared mailbox logs in as `you@domain\\shared@domain`",
    max_connections: Some(20),
    max_message_bytes: Some(45_000_000),
    download_bytes_per_day: None,
    upload_bytes_per_day: None,
    weak: &[
        "the limit of about 20 connections per mailbox is community-reported",
        "the 45 MB message limit is imapsync's default for Exchange Online; a tenant can raise it to 150 MB",
    ],
    quirks: &[
        "throttled sessions get `Request is throttled. Suggested Backoff Time: N milliseconds` and are disconnected",
        "`NO Server Unavailable. 15` means quota exceeded or rate limiting",
        "a hidden system folder `Files` may be listed and cannot be created elsewhere",
    ],
    ..OUTLOOK
};

const DOCOMO: Preset = Preset {
    id: "docomo",
    name: "docomo mail (ドコモメール)",
    aliases: &["docomo-mail", "spmode"],
    domains: &["docomo.ne.jp"],
    host: "imap.spmode.ne.jp",
    alt_hosts: &[],
    port: 993,
    tls: TlsMode::Implicit,
    login: LoginName::ProviderId("d ACCOUNT ID (dアカウントID), not the mail address"),
    auth: Auth::ImapPassword,
    password_steps: "My docomo → settings → docomo mail settings → use docomo mail from other devices: set the IMAP-only password (IMAP専用パスワード); the d ACCOUNT password is not it",
    password_steps_ja: Some("My docomo →「設定」→「メール設定」→「ドコモメール」→「ドコモメールのIMAP専用パスワード」を設定（ログインIDはdアカウントID）"),
    enable_imap: Some("docomo mail must be allowed from other devices (「他端末でのドコモメール利用」を「利用する」)"),
    oauth2: None,
    max_connections: None,
    max_message_bytes: None,
    download_bytes_per_day: None,
    upload_bytes_per_day: None,
    throttle_signals: &[],
    folders: &[
        ("\\Sent", &["Sent", "送信済み"]),
        ("\\Drafts", &["Drafts", "下書き"]),
        ("\\Trash", &["Trash", "ゴミ箱"]),
        ("\\Junk", &["迷惑メール＿ドコモ用"]),
    ],
    quirks: &[
        "after leaving docomo the address lives on only with the paid mail carry-over option, applied for within 31 days: back up before cancelling",
        "TLS 1.2 only",
    ],
    weak: &[
        "host, login form and IMAP password come from a community write-up of docomo's IMAP interface specification, not from docomo's own pages",
        "the settings page names",
        "a public script lowers OpenSSL's security level for this server: some of its TLS parameters may not be accepted by mailkeep's TLS library",
    ],
};

const AU: Preset = Preset {
    id: "au",
    name: "au mail (auメール)",
    aliases: &["ezweb", "au-mail", "kddi"],
    domains: &["au.com", "ezweb.ne.jp"],
    host: "imap.ezweb.ne.jp",
    alt_hosts: &[],
    port: 993,
    tls: TlsMode::Implicit,
    login: LoginName::ProviderId("user name au issues for the account (shown with the server settings after au ID login), not the mail address"),
    auth: Auth::Password,
    password_steps: "log in with your au ID at au's mail settings (set.mail.ezweb.ne.jp) and look up the IMAP server settings of the account: user name and password are shown there",
    password_steps_ja: Some("au ID でログイン →「メール設定」→「その他の設定」→「ほかのアプリ・パソコンでauメールを利用する」（サーバー設定・ユーザー名・パスワードを確認）"),
    enable_imap: None,
    oauth2: None,
    max_connections: None,
    max_message_bytes: None,
    download_bytes_per_day: None,
    upload_bytes_per_day: None,
    throttle_signals: &[],
    folders: &[],
    quirks: &["the server is reported to keep 400 MB or 5,000 messages and to delete the oldest beyond that: back up often"],
    weak: &[
        "everything here: no fixed public host was found (public code uses imap.ezweb.ne.jp:993); check the settings au shows for your account and pass --host if they differ",
        "the storage limit",
        "the settings page names",
    ],
};

const SOFTBANK: Preset = Preset {
    id: "softbank",
    name: "SoftBank Eメール(i) (i.softbank.jp)",
    aliases: &["i.softbank", "softbank-i"],
    domains: &["i.softbank.jp"],
    host: "imap.softbank.jp",
    alt_hosts: &[],
    port: 993,
    tls: TlsMode::Implicit,
    login: LoginName::LocalPart,
    auth: Auth::Password,
    password_steps: "the user name and password of Eメール(i), shown on My SoftBank's mail settings (the part before @ is the user name)",
    password_steps_ja: Some("My SoftBank →「メール設定」→「Eメール(i)」→「ユーザー名・パスワードの確認」"),
    enable_imap: None,
    oauth2: None,
    max_connections: None,
    max_message_bytes: None,
    download_bytes_per_day: None,
    upload_bytes_per_day: None,
    throttle_signals: &[],
    folders: &[],
    quirks: &[
        "LOGIN only (no AUTHENTICATE); several servers behind one name",
        "softbank.ne.jp addresses are S!メール (MMS), not an IMAP mailbox",
    ],
    weak: &[
        "login name: the provider database says the part before @, public configurations also use the full address",
        "public reports say some of its servers offer only static-RSA key exchange, which mailkeep's TLS library does not speak",
        "the settings page names and a 200 MB / 5,000 message limit (old report)",
    ],
};

const AOL: Preset = Preset {
    id: "aol",
    name: "AOL Mail",
    aliases: &[],
    domains: &["aol.com", "aim.com"],
    host: "imap.aol.com",
    alt_hosts: &[],
    port: 993,
    tls: TlsMode::Implicit,
    login: LoginName::Address,
    auth: Auth::AppPassword,
    password_steps: "AOL account → Account Security → Generate app password (Manage app passwords)",
    password_steps_ja: None,
    enable_imap: None,
    oauth2: None,
    max_connections: None,
    max_message_bytes: None,
    download_bytes_per_day: None,
    upload_bytes_per_day: None,
    throttle_signals: YAHOO_THROTTLE,
    folders: &[],
    quirks: &[
        "runs on Yahoo's servers: the Yahoo quirks apply",
        "AOL accepts no new OAuth2 client registrations for mail",
    ],
    weak: &[],
};

const GMX: Preset = Preset {
    id: "gmx",
    name: "GMX (gmx.net, gmx.de, …)",
    aliases: &["gmx.net", "gmx.de"],
    domains: &["gmx.net", "gmx.de", "gmx.at", "gmx.ch"],
    host: "imap.gmx.net",
    alt_hosts: &[],
    port: 993,
    tls: TlsMode::Implicit,
    login: LoginName::Address,
    auth: Auth::Password,
    password_steps:
        "your GMX password (with two-factor login on: an application-specific password)",
    password_steps_ja: None,
    enable_imap: Some("GMX settings → POP3 & IMAP → allow access via POP3 and IMAP"),
    oauth2: None,
    max_connections: None,
    max_message_bytes: None,
    download_bytes_per_day: None,
    upload_bytes_per_day: None,
    throttle_signals: &[],
    folders: &[],
    quirks: &["GMX Freemail is reported to allow about 20 folders (folders in Trash count)"],
    weak: &[
        "the folder limit",
        "the application-specific password with two-factor login",
    ],
};

const GMX_COM: Preset = Preset {
    id: "gmx-com",
    name: "GMX (gmx.com)",
    aliases: &["gmx.com"],
    domains: &["gmx.com", "gmx.us"],
    host: "imap.gmx.com",
    ..GMX
};

const FASTMAIL: Preset = Preset {
    id: "fastmail",
    name: "Fastmail",
    aliases: &[],
    domains: &["fastmail.com", "fastmail.fm", "messagingengine.com"],
    host: "imap.fastmail.com",
    alt_hosts: &[],
    port: 993,
    tls: TlsMode::Implicit,
    login: LoginName::Address,
    auth: Auth::AppPassword,
    password_steps: "Settings → Privacy & Security → Integrations → App passwords → New app password, access \"Mail (IMAP/POP/SMTP)\"",
    password_steps_ja: None,
    enable_imap: None,
    oauth2: None,
    max_connections: None,
    max_message_bytes: None,
    download_bytes_per_day: None,
    upload_bytes_per_day: None,
    throttle_signals: &[],
    folders: &[],
    quirks: &["log in with the address you registered with, not an alias"],
    weak: &[],
};

const ZOHO: Preset = Preset {
    id: "zoho",
    name: "Zoho Mail (zoho.com)",
    aliases: &["zohomail"],
    domains: &["zoho.com", "zohomail.com"],
    host: "imap.zoho.com",
    alt_hosts: &[],
    port: 993,
    tls: TlsMode::Implicit,
    login: LoginName::Address,
    auth: Auth::AppPassword,
    password_steps: "enable IMAP first; with two-factor login, make an app-specific password: Zoho Accounts → Security → App Passwords",
    password_steps_ja: Some("Zoho アカウント →「セキュリティ」→「アプリパスワード」"),
    enable_imap: Some("Zoho Mail → Settings → Mail Accounts → IMAP Access: enable"),
    oauth2: None,
    max_connections: None,
    max_message_bytes: None,
    download_bytes_per_day: None,
    upload_bytes_per_day: None,
    throttle_signals: &[],
    folders: &[],
    quirks: &["the host follows your account's region: imap.zoho.com, .eu, .in, .com.au, .jp (presets zoho, zoho-eu, zoho-in, zoho-au, zoho-jp)"],
    weak: &[],
};

const ZOHO_EU: Preset = Preset {
    id: "zoho-eu",
    name: "Zoho Mail (EU)",
    aliases: &["zoho.eu"],
    domains: &["zoho.eu", "zohomail.eu"],
    host: "imap.zoho.eu",
    ..ZOHO
};

const ZOHO_IN: Preset = Preset {
    id: "zoho-in",
    name: "Zoho Mail (India)",
    aliases: &["zoho.in"],
    domains: &["zoho.in", "zohomail.in"],
    host: "imap.zoho.in",
    ..ZOHO
};

const ZOHO_AU: Preset = Preset {
    id: "zoho-au",
    name: "Zoho Mail (Australia)",
    aliases: &["zoho.com.au"],
    domains: &["zoho.com.au", "zohomail.com.au"],
    host: "imap.zoho.com.au",
    ..ZOHO
};

const ZOHO_JP: Preset = Preset {
    id: "zoho-jp",
    name: "Zoho Mail (Japan)",
    aliases: &["zoho.jp"],
    domains: &["zoho.jp", "zohomail.jp"],
    host: "imap.zoho.jp",
    ..ZOHO
};

static PRESETS: &[Preset] = &[
    GMAIL,
    GOOGLE_WORKSPACE,
    ICLOUD,
    YAHOO,
    YAHOO_JAPAN,
    OUTLOOK,
    MICROSOFT365,
    DOCOMO,
    AU,
    SOFTBANK,
    AOL,
    GMX,
    GMX_COM,
    FASTMAIL,
    ZOHO,
    ZOHO_EU,
    ZOHO_IN,
    ZOHO_AU,
    ZOHO_JP,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_aliases_and_domains_are_unique() {
        let mut names = std::collections::HashSet::new();
        for p in all() {
            for n in std::iter::once(p.id).chain(p.aliases.iter().copied()) {
                assert!(names.insert(n.to_ascii_lowercase()), "`{n}` twice");
            }
        }
        let mut domains = std::collections::HashSet::new();
        for p in all() {
            for d in p.domains {
                assert!(domains.insert(d.to_ascii_lowercase()), "domain `{d}` twice");
            }
        }
    }

    #[test]
    fn every_issue_provider_is_there() {
        for id in [
            "gmail",
            "google-workspace",
            "icloud",
            "yahoo",
            "yahoo-japan",
            "outlook",
            "microsoft365",
            "docomo",
            "au",
            "softbank",
            "aol",
            "gmx",
            "fastmail",
            "zoho",
        ] {
            let p = preset(id).unwrap_or_else(|| panic!("no preset `{id}`"));
            assert!(!p.host.is_empty() && p.port == 993, "{id}");
            assert!(!p.password_steps.is_empty(), "{id}");
        }
    }

    #[test]
    fn every_preset_resolves_to_its_settings() {
        use Auth::*;
        use LoginName::*;
        use TlsMode::Implicit;
        // id, an address or alias that finds it, host, login form, auth,
        // connections, OAuth2 flow.
        type Row = (
            &'static str,
            &'static str,
            &'static str,
            &'static str,
            Auth,
            Option<u32>,
            Option<OAuthFlow>,
        );
        let rows: &[Row] = &[
            (
                "gmail",
                "taro@gmail.com",
                "imap.gmail.com",
                "address",
                AppPassword,
                Some(15),
                Some(OAuthFlow::LoopbackPkce),
            ),
            (
                "gmail",
                "taro@googlemail.com",
                "imap.gmail.com",
                "address",
                AppPassword,
                Some(15),
                Some(OAuthFlow::LoopbackPkce),
            ),
            (
                "google-workspace",
                "gsuite",
                "imap.gmail.com",
                "address",
                AppPassword,
                Some(15),
                Some(OAuthFlow::LoopbackPkce),
            ),
            (
                "icloud",
                "taro@icloud.com",
                "imap.mail.me.com",
                "local",
                AppPassword,
                None,
                None,
            ),
            (
                "icloud",
                "taro@mac.com",
                "imap.mail.me.com",
                "local",
                AppPassword,
                None,
                None,
            ),
            (
                "yahoo",
                "taro@yahoo.co.uk",
                "imap.mail.yahoo.com",
                "address",
                AppPassword,
                None,
                None,
            ),
            (
                "yahoo",
                "taro@ymail.com",
                "imap.mail.yahoo.com",
                "address",
                AppPassword,
                None,
                None,
            ),
            (
                "yahoo-japan",
                "taro@yahoo.co.jp",
                "imap.mail.yahoo.co.jp",
                "local",
                Password,
                None,
                None,
            ),
            (
                "outlook",
                "taro@outlook.jp",
                "outlook.office365.com",
                "address",
                OAuth2Only,
                None,
                Some(OAuthFlow::DeviceCode),
            ),
            (
                "outlook",
                "taro@live.com",
                "outlook.office365.com",
                "address",
                OAuth2Only,
                None,
                Some(OAuthFlow::DeviceCode),
            ),
            (
                "microsoft365",
                "m365",
                "outlook.office365.com",
                "address",
                OAuth2Only,
                Some(20),
                Some(OAuthFlow::DeviceCode),
            ),
            (
                "docomo",
                "taro@docomo.ne.jp",
                "imap.spmode.ne.jp",
                "id",
                ImapPassword,
                None,
                None,
            ),
            (
                "au",
                "taro@au.com",
                "imap.ezweb.ne.jp",
                "id",
                Password,
                None,
                None,
            ),
            (
                "au",
                "taro@ezweb.ne.jp",
                "imap.ezweb.ne.jp",
                "id",
                Password,
                None,
                None,
            ),
            (
                "softbank",
                "taro@i.softbank.jp",
                "imap.softbank.jp",
                "local",
                Password,
                None,
                None,
            ),
            (
                "aol",
                "taro@aol.com",
                "imap.aol.com",
                "address",
                AppPassword,
                None,
                None,
            ),
            (
                "gmx",
                "taro@gmx.de",
                "imap.gmx.net",
                "address",
                Password,
                None,
                None,
            ),
            (
                "gmx-com",
                "taro@gmx.com",
                "imap.gmx.com",
                "address",
                Password,
                None,
                None,
            ),
            (
                "fastmail",
                "taro@fastmail.fm",
                "imap.fastmail.com",
                "address",
                AppPassword,
                None,
                None,
            ),
            (
                "zoho",
                "taro@zoho.com",
                "imap.zoho.com",
                "address",
                AppPassword,
                None,
                None,
            ),
            (
                "zoho-eu",
                "taro@zoho.eu",
                "imap.zoho.eu",
                "address",
                AppPassword,
                None,
                None,
            ),
            (
                "zoho-in",
                "taro@zoho.in",
                "imap.zoho.in",
                "address",
                AppPassword,
                None,
                None,
            ),
            (
                "zoho-au",
                "taro@zoho.com.au",
                "imap.zoho.com.au",
                "address",
                AppPassword,
                None,
                None,
            ),
            (
                "zoho-jp",
                "taro@zoho.jp",
                "imap.zoho.jp",
                "address",
                AppPassword,
                None,
                None,
            ),
        ];
        let mut seen = std::collections::HashSet::new();
        for &(id, key, host, login, auth, conns, flow) in rows {
            let p = if key.contains('@') {
                for_address(key)
            } else {
                preset(key)
            }
            .unwrap_or_else(|| panic!("`{key}` finds no preset"));
            assert_eq!(p.id, id, "`{key}`");
            assert_eq!((p.host, p.port, p.tls), (host, 993, Implicit), "{id}");
            assert_eq!(p.auth, auth, "{id}");
            assert_eq!(p.max_connections, conns, "{id}");
            assert_eq!(p.oauth2.map(|o| o.flow), flow, "{id}");
            let user = if key.contains('@') {
                key
            } else {
                "taro@example.com"
            };
            let want = match login {
                "address" => Some(user.to_string()),
                "local" => Some("taro".to_string()),
                _ => None,
            };
            assert_eq!(p.login_for(user), want, "{id}");
            assert_eq!(matches!(p.login, ProviderId(_)), login == "id", "{id}");
            // An account using the preset's server (no `provider` setting)
            // finds it, or the first preset of that server.
            let acct = AccountConfig::new(host, user);
            let by_host = for_account(&acct).unwrap();
            assert_eq!(by_host.host, host, "{id}");
            let mut named = acct.clone();
            named.provider = Some(id.into());
            assert_eq!(for_account(&named).unwrap().id, id);
            assert_eq!(max_connections(&named), conns, "{id}");
            seen.insert(id);
        }
        for p in all() {
            assert!(seen.contains(p.id), "preset `{}` has no row here", p.id);
        }
    }

    #[test]
    fn limits_and_slow_down_signals_for_migrate() {
        let gmail = AccountConfig::new("imap.gmail.com", "taro@gmail.com");
        assert_eq!(max_connections(&gmail), Some(15));
        let g = for_account(&gmail).unwrap();
        assert_eq!(g.max_message_bytes, Some(35_651_584));
        assert_eq!(g.download_bytes_per_day, Some(2_500_000_000));
        assert_eq!(g.upload_bytes_per_day, Some(500_000_000));
        let slow = |t: &str| crate::imap::throttle_in_text(t).is_some();
        assert!(slow(
            "NO [OVERQUOTA] Account exceeded command or bandwidth limits."
        ));
        assert!(slow("OK Success [THROTTLED]"));
        assert!(!slow("NO [AUTHENTICATIONFAILED] Invalid credentials"));
        // A full mailbox and a message too large are not "slow down".
        assert!(!slow("NO [OVERQUOTA] Quota exceeded"));
        assert!(!slow("NO [LIMIT] Message too large"));
        // Every preset's own signals are recognised.
        for p in all() {
            for s in p.throttle_signals {
                assert!(slow(s), "{}: `{s}` is not recognised", p.id);
            }
        }

        let mut m365 = AccountConfig::new("outlook.office365.com", "taro@example.com");
        m365.provider = Some("microsoft365".into());
        assert_eq!(max_connections(&m365), Some(20));
        assert_eq!(
            crate::imap::throttle_in_text(
                "BAD Request is throttled. Suggested Backoff Time: 299961 milliseconds"
            ),
            Some(Some(std::time::Duration::from_millis(299_961)))
        );

        // Yahoo's read-only export server is still Yahoo.
        let y = AccountConfig::new("export.imap.mail.yahoo.com", "taro@yahoo.com");
        assert_eq!(for_account(&y).unwrap().id, "yahoo");
        assert!(slow("NO [LIMIT] CAPABILITY Rate limit hit."));

        // --jobs is capped by the account's own setting, else the preset's.
        assert_eq!(gmail.connections(40), 15);
        assert_eq!(gmail.connections(4), 4);
        let mut capped = gmail.clone();
        capped.max_connections = Some(3);
        assert_eq!(capped.connections(40), 3);

        // A server of no preset: only the common signals, no known limit.
        let own = AccountConfig::new("mail.example.org", "taro");
        assert_eq!(for_account(&own), None);
        assert_eq!(max_connections(&own), None);
        assert_eq!(own.connections(40), 40);
        assert!(slow(
            "NO [UNAVAILABLE] Maximum number of connections from user+IP exceeded (mail_max_userip_connections=10)"
        ));
        assert!(!slow("NO [TRYCREATE] Mailbox doesn't exist"));
    }

    #[test]
    fn every_presets_folder_names_are_known_to_the_folder_map() {
        // The presets show their folder names; the folder map of restore and
        // migrate (`KNOWN_NAMES`) is what acts on them: it must know each.
        use crate::ops::restore::folders::use_of_folder;
        for p in all() {
            for (u, names) in p.folders {
                for n in *names {
                    let segs: Vec<String> = n.split('/').map(String::from).collect();
                    assert_eq!(
                        use_of_folder(&segs, None).as_deref(),
                        Some(*u),
                        "{}: `{n}` is not known as {u}",
                        p.id
                    );
                }
            }
        }
    }

    #[test]
    fn weak_facts_of_the_research_are_marked_weak() {
        for id in ["yahoo-japan", "docomo", "au", "softbank", "microsoft365"] {
            assert!(!preset(id).unwrap().weak.is_empty(), "{id}");
        }
        let au = preset("au").unwrap();
        assert!(au.weak.iter().any(|w| w.contains("no fixed public host")));
        let yj = preset("yahoo-japan").unwrap();
        assert!(yj.weak.iter().any(|w| w.contains("login name")));
        let d = preset("docomo").unwrap();
        assert!(d.weak.iter().any(|w| w.contains("TLS")));
    }

    #[test]
    fn presets_resolve_to_the_right_settings() {
        let g = for_address("taro@gmail.com").unwrap();
        assert_eq!((g.id, g.host, g.port), ("gmail", "imap.gmail.com", 993));
        assert_eq!(
            g.login_for("taro@gmail.com").as_deref(),
            Some("taro@gmail.com")
        );
        assert_eq!(g.max_connections, Some(15));
        assert_eq!(g.folder_names("\\All")[0], "[Gmail]/All Mail");
        assert!(g.throttle_signals.contains(&"[THROTTLED]"));

        let i = for_address("Emily@ME.com").unwrap();
        assert_eq!((i.id, i.host), ("icloud", "imap.mail.me.com"));
        assert_eq!(i.login_for("emily@me.com").as_deref(), Some("emily"));
        assert_eq!(i.folder_names("\\Sent"), ["Sent Messages", "Sent Items"]);

        let o = for_address("hanako@hotmail.co.jp").unwrap();
        assert_eq!((o.id, o.host), ("outlook", "outlook.office365.com"));
        assert_eq!(o.auth, Auth::OAuth2Only);
        assert_eq!(o.oauth2.unwrap().flow, OAuthFlow::DeviceCode);
        assert!(o.throttle_signals.contains(&"Suggested Backoff Time"));

        let m = preset("Office365").unwrap();
        assert_eq!(
            (m.id, m.host, m.max_connections),
            ("microsoft365", "outlook.office365.com", Some(20))
        );

        let d = for_address("taro@docomo.ne.jp").unwrap();
        assert_eq!((d.id, d.host), ("docomo", "imap.spmode.ne.jp"));
        assert_eq!(
            d.login_for("taro@docomo.ne.jp"),
            None,
            "the d ACCOUNT ID is not derived"
        );
        assert!(!d.weak.is_empty(), "docomo's facts are marked weak");

        let a = for_address("x@ezweb.ne.jp").unwrap();
        assert_eq!(a.id, "au");
        assert!(!a.weak.is_empty());

        let s = for_address("taro@i.softbank.jp").unwrap();
        assert_eq!((s.id, s.host), ("softbank", "imap.softbank.jp"));
        assert_eq!(s.login_for("taro@i.softbank.jp").as_deref(), Some("taro"));
        assert!(
            for_address("taro@softbank.ne.jp").is_none(),
            "MMS addresses are not IMAP"
        );

        let y = for_address("taro@yahoo.co.jp").unwrap();
        assert_eq!((y.id, y.host), ("yahoo-japan", "imap.mail.yahoo.co.jp"));
        assert!(!y.weak.is_empty());
        assert_eq!(
            for_address("t@yahoo.com").unwrap().host,
            "imap.mail.yahoo.com"
        );
        assert_eq!(for_address("t@aol.com").unwrap().host, "imap.aol.com");
        assert_eq!(for_address("t@gmx.de").unwrap().host, "imap.gmx.net");
        assert_eq!(for_address("t@gmx.com").unwrap().host, "imap.gmx.com");
        assert_eq!(
            for_address("t@fastmail.com").unwrap().host,
            "imap.fastmail.com"
        );
        assert_eq!(for_address("t@zoho.jp").unwrap().host, "imap.zoho.jp");
        assert_eq!(preset("workspace").unwrap().host, "imap.gmail.com");
        assert!(for_address("t@example.com").is_none());
        assert!(for_address("no-at-sign").is_none());
    }
}
