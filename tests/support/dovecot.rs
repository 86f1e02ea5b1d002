//! A throwaway Dovecot (2.3 configuration syntax) on free loopback ports, with its
//! own configuration, certificates, users and Maildirs in a temporary directory.
//!
//! Quirks this module works around are listed in GUIDE.md section 7; the ones found
//! while writing it are noted where they are handled.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::client::TestClient;
use super::tls;

/// How long `start`/`restart` wait for the `* OK` greeting on both ports.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How many times `start` picks new ports when Dovecot cannot bind.
const BIND_ATTEMPTS: usize = 5;

/// Shape of the server: hierarchy separator, personal namespace prefix, quota,
/// users and special-use mailboxes.
#[derive(Clone, Debug)]
pub struct DovecotOptions {
    /// Hierarchy separator of the personal namespace (`/` by default).
    pub separator: char,
    /// Personal namespace prefix: `""` (default) or e.g. `"INBOX."` (Courier/Cyrus style).
    pub prefix: String,
    /// Storage quota in KiB (maildir++ quota, `GETQUOTAROOT` via `imap_quota`).
    pub quota_kib: Option<u64>,
    /// The largest message the server takes, in KiB (`quota_max_mail_size`,
    /// which Dovecot also announces as `APPENDLIMIT=`); needs `quota_kib`.
    pub max_mail_kib: Option<u64>,
    /// `(user, password)` pairs.
    pub users: Vec<(String, String)>,
    /// Create Sent, Drafts, Trash, Junk and Archive (auto = subscribe) with their
    /// special-use flags.
    pub special_use: bool,
    /// The special-use folders' names and flags when `special_use` is set
    /// (default: Sent, Drafts, Trash, Junk, Archive); e.g. `Sent Messages`
    /// for an iCloud-like server.
    pub special_names: Vec<(String, String)>,
    /// The server certificate's kind (CA-signed by default).
    pub cert: tls::CertKind,
    /// OpenSSL cipher list for TLS 1.2 (`ssl_cipher_list`); with it set,
    /// TLS 1.3 is turned off (`ssl_cipher_suites` empty is refused, so
    /// `ssl_max_protocol`… does not exist in 2.3: the min/max is TLSv1.2).
    pub ssl_cipher_list: Option<String>,
    /// `introspection_url` for an oauth2 passdb (XOAUTH2, OAUTHBEARER) beside
    /// the passwd-file one.
    pub oauth2_introspection: Option<String>,
    /// Gmail's shape (special use off for the personal namespace):
    /// `[Gmail]/All Mail` (`\All`) and `[Gmail]/Starred` (`\Flagged`) are
    /// virtual mailboxes (Dovecot's `virtual` plugin) of every other one,
    /// `[Gmail]/Sent Mail`, `[Gmail]/Trash` and `[Gmail]/Spam` virtual
    /// mailboxes that save into hidden ones, and `hidden/Archived` a hidden
    /// mailbox whose messages only All Mail shows (mail archived in Gmail).
    pub gmail: bool,
}

impl Default for DovecotOptions {
    fn default() -> Self {
        DovecotOptions {
            separator: '/',
            prefix: String::new(),
            quota_kib: None,
            max_mail_kib: None,
            users: vec![
                ("alice".to_string(), "alice-secret".to_string()),
                ("bob".to_string(), "bob-secret".to_string()),
            ],
            special_use: true,
            special_names: [
                ("Sent", "\\Sent"),
                ("Drafts", "\\Drafts"),
                ("Trash", "\\Trash"),
                ("Junk", "\\Junk"),
                ("Archive", "\\Archive"),
            ]
            .iter()
            .map(|(n, f)| (n.to_string(), f.to_string()))
            .collect(),
            cert: tls::CertKind::CaSigned,
            ssl_cipher_list: None,
            oauth2_introspection: None,
            gmail: false,
        }
    }
}

/// A running Dovecot. Dropping it stops the server and removes its directory.
pub struct Dovecot {
    dir: TempDir,
    opts: DovecotOptions,
    imap_port: u16,
    imaps_port: u16,
    ca_file: PathBuf,
    child: Option<Child>,
}

impl Dovecot {
    /// Starts a server. Panics (with Dovecot's log) if it cannot start: never skips.
    pub fn start(opts: DovecotOptions) -> Dovecot {
        check_dovecot_version();
        let dir = tempfile::Builder::new()
            .prefix("mk-dovecot-")
            .tempdir()
            .expect("create Dovecot temp dir");
        // tempdirs are 0700: the dovecot and dovenull users must traverse it.
        chmod(dir.path(), 0o755);
        for sub in ["run", "state", "mail"] {
            let p = dir.path().join(sub);
            std::fs::create_dir_all(&p).expect("create Dovecot sub dir");
            chmod(&p, 0o755);
        }
        // The mail processes create `mail/<user>/Maildir` as the mail owner.
        let owner = run_as();
        std::os::unix::fs::chown(
            dir.path().join("mail"),
            Some(owner.mail_uid),
            Some(owner.mail_gid),
        )
        .expect("chown the mail dir to the mail owner");
        let pki = tls::generate(opts.cert);
        let ca_file = dir.path().join("ca.pem");
        write_file(&ca_file, &pki.ca_pem, 0o644);
        write_file(&dir.path().join("server.pem"), &pki.server_cert_pem, 0o644);
        // Read by the master process (root) only, through `ssl_key = <file`.
        write_file(&dir.path().join("server.key"), &pki.server_key_pem, 0o600);
        let passwd: String = opts
            .users
            .iter()
            .map(|(u, p)| format!("{u}:{{PLAIN}}{p}\n"))
            .collect();
        write_file(&dir.path().join("passwd"), &passwd, 0o644);

        let mut server = Dovecot {
            dir,
            opts,
            imap_port: 0,
            imaps_port: 0,
            ca_file,
            child: None,
        };
        let mut last_err = String::new();
        for _ in 0..BIND_ATTEMPTS {
            let (p1, p2) = free_port_pair();
            server.imap_port = p1;
            server.imaps_port = p2;
            server.write_config();
            match server.spawn_and_wait() {
                Ok(()) => return server,
                Err(e) => {
                    let log = server.log();
                    server.kill_child();
                    if log.contains("Address already in use") {
                        last_err = e;
                        continue;
                    }
                    panic!("Dovecot did not start: {e}\n--- dovecot log ---\n{log}");
                }
            }
        }
        panic!(
            "Dovecot could not bind free ports after {BIND_ATTEMPTS} attempts: {last_err}\n--- dovecot log ---\n{}",
            server.log()
        );
    }

    /// Port of the implicit-TLS listener (`inet_listener imaps`).
    pub fn imaps_port(&self) -> u16 {
        self.imaps_port
    }

    /// Port of the plain listener (STARTTLS offered, LOGIN allowed without TLS).
    pub fn imap_port(&self) -> u16 {
        self.imap_port
    }

    /// PEM file of the CA that signed the server certificate (localhost, 127.0.0.1).
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// The password of `user`; panics for an unknown user.
    pub fn password(&self, user: &str) -> &str {
        self.opts
            .users
            .iter()
            .find(|(u, _)| u == user)
            .map(|(_, p)| p.as_str())
            .unwrap_or_else(|| panic!("no user `{user}` on this test Dovecot"))
    }

    /// The options the server was started with.
    pub fn options(&self) -> &DovecotOptions {
        &self.opts
    }

    /// The server's temporary directory (config, log, `mail/<user>/Maildir`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The Maildir of `user` (exists once the user has logged in).
    pub fn maildir(&self, user: &str) -> PathBuf {
        self.dir.path().join("mail").join(user).join("Maildir")
    }

    /// A logged-in client over implicit TLS, verifying the certificate.
    pub fn client(&self, user: &str) -> TestClient {
        TestClient::connect_tls(self.imaps_port, &self.ca_file, user, self.password(user))
    }

    /// Stops and starts the server again with the same directories and ports.
    pub fn restart(&mut self) {
        self.stop();
        // A stale penalty socket makes anvil refuse to start.
        let _ = std::fs::remove_file(self.dir.path().join("run").join("anvil-auth-penalty"));
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match self.spawn_and_wait() {
                Ok(()) => return,
                Err(e) => {
                    let log = self.log();
                    self.kill_child();
                    // The old listeners may linger for a moment after the master exits.
                    if log.contains("Address already in use") && Instant::now() < deadline {
                        continue;
                    }
                    panic!("Dovecot did not restart: {e}\n--- dovecot log ---\n{log}");
                }
            }
        }
    }

    /// Stops the server (SIGTERM to the master, SIGKILL after 10 s). Idempotent.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // Closing the wrapper's stdin makes it SIGTERM the master and wait for it.
        drop(child.stdin.take());
        if wait_timeout(&mut child, Duration::from_secs(10)).is_none() {
            self.kill_master();
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn kill_master(&self) {
        let pid_file = self.dir.path().join("run").join("master.pid");
        if let Some(pid) = std::fs::read_to_string(pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<libc::pid_t>().ok())
        {
            // SAFETY: kill(2) on the master of this server, which we started.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }

    /// Dovecot's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    /// Path of the generated `dovecot.conf`.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("dovecot.conf")
    }

    fn kill_child(&mut self) {
        self.stop();
    }

    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let starts_before = self.log().matches("starting up").count();
        // `dovecot -F` under a small sh wrapper that SIGTERMs it when its stdin (a pipe
        // held only by this process) closes: on `stop`, and also when the test process
        // dies without running Drop, so no server outlives its tests.
        let child = Command::new("sh")
            .arg("-c")
            .arg(WRAPPER)
            .arg("dovecot-wrapper")
            .arg(dovecot_binary())
            .arg(self.config_path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.path().join("dovecot.stderr"))
                    .expect("open dovecot.stderr"),
            ))
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot run `{}`: {e}\nhint: install it with `apt-get install -y dovecot-imapd` (scripts/test does)",
                    dovecot_binary().display()
                )
            })?;
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        // The master logs "starting up" only once all its listeners are bound, so a
        // greeting seen after that comes from this server, not from whoever else might
        // hold a port we lost a race for.
        let started = |log: &str| log.matches("starting up").count() > starts_before;
        let mut waiting_for = "the master's `starting up` log line";
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().ok().flatten() {
                let stderr = std::fs::read_to_string(self.dir.path().join("dovecot.stderr"))
                    .unwrap_or_default();
                return Err(format!("dovecot exited with {status}; stderr:\n{stderr}"));
            }
            if started(&self.log()) {
                waiting_for = "a `* OK` greeting on the imap port";
                if greeting_ok(self.imap_port) {
                    waiting_for = "the imaps port";
                    if TcpStream::connect(("127.0.0.1", self.imaps_port)).is_ok() {
                        return Ok(());
                    }
                }
            }
            if Instant::now() > deadline {
                return Err(format!("no {waiting_for} within {READY_TIMEOUT:?}"));
            }
            // Poll the condition; each probe is itself bounded.
            std::thread::sleep(Duration::from_millis(20)); // wait-ok: polling a condition
        }
    }

    fn write_config(&self) {
        let d = self.dir.path().display().to_string();
        let o = &self.opts;
        let RunAs {
            login_user,
            internal_user,
            internal_group,
            mail_uid: uid,
            mail_gid: gid,
        } = run_as();
        let internal_group = internal_group
            .map(|g| format!("default_internal_group = {g}\n"))
            .unwrap_or_default();
        let ciphers = match &o.ssl_cipher_list {
            Some(list) => format!("ssl_cipher_list = {list}\nssl_min_protocol = TLSv1.2\nssl_cipher_suites = TLS_AES_128_CCM_8_SHA256\n"),
            None => "ssl_min_protocol = TLSv1.2\n".to_string(),
        };
        let (mechanisms, oauth) = match &o.oauth2_introspection {
            Some(url) => {
                let ext = format!("{d}/oauth2.conf.ext");
                write_file(
                    Path::new(&ext),
                    &format!(
                        "introspection_url = {url}\nintrospection_mode = post\nusername_attribute = username\nactive_attribute = active\nactive_value = true\n"
                    ),
                    0o644,
                );
                (
                    "plain login xoauth2 oauthbearer",
                    format!(
                        "passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {ext}\n}}\n"
                    ),
                )
            }
            None => ("plain login", String::new()),
        };
        let passwd_mechs = if o.oauth2_introspection.is_some() {
            "  mechanisms = plain login\n"
        } else {
            ""
        };
        let quota = match o.quota_kib {
            Some(kib) => format!(
                "mail_plugins = $mail_plugins quota\n\
                 protocol imap {{\n  mail_plugins = $mail_plugins imap_quota\n}}\n\
                 plugin {{\n  quota = maildir:User quota\n  quota_rule = *:storage={kib}K\n{max}}}\n",
                max = o
                    .max_mail_kib
                    .map(|m| format!("  quota_max_mail_size = {m}K\n"))
                    .unwrap_or_default()
            ) + &o
                .max_mail_kib
                // Dovecot 2.3 enforces the size but does not announce it.
                .map(|m| format!("imap_capability = +APPENDLIMIT={}\n", m * 1024))
                .unwrap_or_default(),
            None => String::new(),
        };
        let gmail = if o.gmail {
            self.write_gmail_mailboxes();
            gmail_config(&d)
        } else {
            String::new()
        };
        let special = if o.special_use && !o.gmail {
            o.special_names
                .iter()
            .map(|(name, flag)| {
                format!(
                    "  mailbox \"{name}\" {{\n    auto = subscribe\n    special_use = {flag}\n  }}\n"
                )
            })
            .collect::<String>()
        } else {
            String::new()
        };
        let conf = format!(
            r#"# generated by tests/support/dovecot.rs
instance_name = mk-test-{imap_port}
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{d}/server.pem
ssl_key = <{d}/server.key
{ciphers}disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
auth_failure_delay = 0
default_login_user = {login_user}
default_internal_user = {internal_user}
{internal_group}first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:{d}/mail/%u/Maildir
mail_max_userip_connections = 100
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {d}/passwd
{passwd_mechs}}}
{oauth}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
namespace inbox {{
  type = private
  separator = {sep}
  prefix = {prefix}
  inbox = yes
{special}}}
{gmail}{quota}"#,
            imap_port = self.imap_port,
            imaps_port = self.imaps_port,
            sep = o.separator,
            prefix = o.prefix,
        );
        write_file(&self.config_path(), &conf, 0o644);
    }
}

impl Dovecot {
    /// The `dovecot-virtual` files of the Gmail-like mailboxes, per user.
    fn write_gmail_mailboxes(&self) {
        let owner = run_as();
        let all = "*\n-[Gmail]/*\n-hidden/Trash\n-hidden/Spam\nhidden/Sent\nhidden/Archived\n";
        let boxes = [
            ("All Mail", format!("{all}  all\n")),
            ("Starred", format!("{all}  flagged\n")),
            ("Sent Mail", "!hidden/Sent\n  all\n".to_string()),
            ("Trash", "!hidden/Trash\n  all\n".to_string()),
            ("Spam", "!hidden/Spam\n  all\n".to_string()),
        ];
        for (user, _) in &self.opts.users {
            let root = self.dir.path().join("virtual").join(user);
            for (name, text) in &boxes {
                let dir = root.join(name);
                std::fs::create_dir_all(&dir).expect("create a virtual mailbox dir");
                write_file(&dir.join("dovecot-virtual"), text, 0o644);
            }
            for p in std::iter::once(self.dir.path().join("virtual"))
                .chain(std::iter::once(root.clone()))
                .chain(boxes.iter().map(|(n, _)| root.join(n)))
            {
                std::os::unix::fs::chown(&p, Some(owner.mail_uid), Some(owner.mail_gid))
                    .expect("chown a virtual mailbox dir");
            }
        }
    }
}

/// The namespaces of a Gmail-like server: the virtual `[Gmail]/` and the
/// hidden real mailboxes behind it.
fn gmail_config(d: &str) -> String {
    format!(
        r#"mail_plugins = $mail_plugins virtual
namespace gmail {{
  type = private
  separator = /
  prefix = [Gmail]/
  location = virtual:{d}/virtual/%u
  mailbox "All Mail" {{
    special_use = \All
  }}
  mailbox Starred {{
    special_use = \Flagged
  }}
  mailbox "Sent Mail" {{
    special_use = \Sent
  }}
  mailbox Trash {{
    special_use = \Trash
  }}
  mailbox Spam {{
    special_use = \Junk
  }}
}}
namespace hidden {{
  type = private
  separator = /
  prefix = hidden/
  location = maildir:{d}/mail/%u/hidden
  hidden = yes
  list = no
  subscriptions = no
  mailbox Sent {{
    auto = create
  }}
  mailbox Trash {{
    auto = create
  }}
  mailbox Spam {{
    auto = create
  }}
  mailbox Archived {{
    auto = create
  }}
}}
"#
    )
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `$1 -F -c $2`; when stdin reaches EOF, SIGTERMs it; exits with its status.
const WRAPPER: &str = r#"exec 3<&0
"$1" -F -c "$2" </dev/null &
pid=$!
( read -r _ <&3; kill -TERM "$pid" 2>/dev/null ) &
watcher=$!
exec 3<&-
wait "$pid"
status=$?
kill "$watcher" 2>/dev/null
exit "$status"
"#;

/// The `dovecot` binary: `/usr/sbin/dovecot`, else whatever `PATH` finds.
fn dovecot_binary() -> PathBuf {
    let sbin = PathBuf::from("/usr/sbin/dovecot");
    if sbin.exists() {
        sbin
    } else {
        PathBuf::from("dovecot")
    }
}

/// The configuration written here is Dovecot 2.3 syntax (Debian 12 ships 2.3.19).
fn check_dovecot_version() {
    let out = Command::new(dovecot_binary())
        .arg("--version")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "error: cannot run `dovecot --version`: {e}\nhint: install Dovecot with `apt-get install -y dovecot-imapd` (scripts/test does it)"
            )
        });
    let v = String::from_utf8_lossy(&out.stdout);
    if !v.starts_with("2.3.") {
        panic!(
            "error: Dovecot `{}` is not 2.3.x; the harness writes Dovecot 2.3 configuration\nhint: install Debian 12's `dovecot-imapd` (2.3.19)",
            v.trim()
        );
    }
}

/// Who the server's processes run as.
struct RunAs {
    login_user: String,
    internal_user: String,
    /// `default_internal_group` when not the packaged `dovecot` group (non-root).
    internal_group: Option<String>,
    /// Owner of the mail: the `dovecot` user as root, else the current user.
    mail_uid: u32,
    mail_gid: u32,
}

/// The container defaults when running as root (login as dovenull, mail owned by
/// dovecot), else the current user for everything.
fn run_as() -> RunAs {
    // SAFETY: geteuid/getegid cannot fail; getpwuid/getpwnam return pointers into
    // static storage that are read at once, on one thread at a time (tests hold no
    // other reference to it).
    unsafe {
        let uid = libc::geteuid();
        if uid == 0 {
            let pw = libc::getpwnam(c"dovecot".as_ptr());
            assert!(
                !pw.is_null(),
                "error: no `dovecot` user\nhint: `apt-get install -y dovecot-imapd` creates it (scripts/test does)"
            );
            assert!(
                !libc::getpwnam(c"dovenull".as_ptr()).is_null(),
                "error: no `dovenull` user\nhint: `apt-get install -y dovecot-imapd` creates it (scripts/test does)"
            );
            return RunAs {
                login_user: "dovenull".into(),
                internal_user: "dovecot".into(),
                internal_group: None,
                mail_uid: (*pw).pw_uid,
                mail_gid: (*pw).pw_gid,
            };
        }
        let gid = libc::getegid();
        let pw = libc::getpwuid(uid);
        assert!(!pw.is_null(), "cannot find the name of uid {uid}");
        let name = std::ffi::CStr::from_ptr((*pw).pw_name)
            .to_string_lossy()
            .into_owned();
        let gr = libc::getgrgid(gid);
        assert!(!gr.is_null(), "cannot find the name of gid {gid}");
        let group = std::ffi::CStr::from_ptr((*gr).gr_name)
            .to_string_lossy()
            .into_owned();
        RunAs {
            login_user: name.clone(),
            internal_user: name,
            internal_group: Some(group),
            mail_uid: uid,
            mail_gid: gid,
        }
    }
}

/// Connects to the plain port and checks the first line is `* OK`.
fn greeting_ok(port: u16) -> bool {
    let Ok(s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).is_ok() && line.starts_with("* OK")
}

/// Two distinct free loopback ports (bound to port 0, then released).
pub fn free_port_pair() -> (u16, u16) {
    let a = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let b = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    )
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

fn write_file(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    chmod(path, mode);
}

/// Waits for `child` to exit, at most `timeout`.
pub(crate) fn wait_timeout(
    child: &mut Child,
    timeout: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20)) // wait-ok: polling the exit
            }
            _ => return None,
        }
    }
}
