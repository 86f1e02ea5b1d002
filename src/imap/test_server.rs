//! A throwaway Dovecot for this module's tests: its own CA and server
//! certificate (openssl CLI), config, Maildir and loopback ports in a temp
//! dir; stopped on Drop. If it cannot start, the test fails with Dovecot's
//! log: these tests are never skipped.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::model::{Endpoint, Secret, TlsMode};

pub(crate) const USER: &str = "alice";
/// A second user whose quota (100 MB) takes messages of tens of MB.
pub(crate) const BIG_USER: &str = "bigmail";
pub(crate) const PASSWORD: &str = "s3cret \"pw\"";

pub(crate) struct TestServer {
    dir: tempfile::TempDir,
    child: Option<Child>,
    pub imap_port: u16,
    pub imaps_port: u16,
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn user_ids(name: &str) -> (u32, u32) {
    let cname = std::ffi::CString::new(name).unwrap();
    // SAFETY: getpwnam with a valid C string; the result is read at once.
    let pw = unsafe { libc::getpwnam(cname.as_ptr()) };
    assert!(
        !pw.is_null(),
        "user {name} does not exist (is dovecot-imapd installed?)"
    );
    // SAFETY: checked non-null above.
    unsafe { ((*pw).pw_uid, (*pw).pw_gid) }
}

/// CA + server certificate for `localhost` and 127.0.0.1.
fn make_certs(dir: &Path) {
    let p = |f: &str| dir.join(f);
    run(Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=mailkeep test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
        ])
        .arg(p("ca.key"))
        .arg("-out")
        .arg(p("ca.pem")));
    run(Command::new("openssl")
        .args([
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
        ])
        .arg(p("server.key"))
        .arg("-out")
        .arg(p("server.csr")));
    std::fs::write(
        p("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "2", "-CAcreateserial", "-in"])
        .arg(p("server.csr"))
        .arg("-CA")
        .arg(p("ca.pem"))
        .arg("-CAkey")
        .arg(p("ca.key"))
        .arg("-extfile")
        .arg(p("ext.cnf"))
        .arg("-out")
        .arg(p("server.pem")));
}

impl TestServer {
    pub fn start() -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        // Dovecot's unprivileged processes must traverse every directory.
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        make_certs(&root);
        let mail = root.join("mail");
        std::fs::create_dir(&mail).unwrap();
        let (uid, gid) = user_ids("dovecot");
        std::os::unix::fs::chown(&mail, Some(uid), Some(gid)).unwrap();
        std::fs::write(
            root.join("users"),
            format!(
                "{USER}:{{PLAIN}}{PASSWORD}::::::\n\
                 {BIG_USER}:{{PLAIN}}{PASSWORD}::::::userdb_quota_rule=*:storage=100M\n"
            ),
        )
        .unwrap();

        let imap_port = free_port();
        let imaps_port = free_port();
        let d = root.display();
        let conf = format!(
            r#"base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
default_login_user = dovenull
default_internal_user = dovecot
first_valid_uid = 1
ssl = yes
ssl_cert = <{d}/server.pem
ssl_key = <{d}/server.key
disable_plaintext_auth = no
auth_mechanisms = plain
auth_failure_delay = 0
passdb {{
  driver = passwd-file
  args = {d}/users
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={d}/mail/%u
}}
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \Sent
    auto = create
  }}
  mailbox Drafts {{
    special_use = \Drafts
    auto = create
  }}
  mailbox Trash {{
    special_use = \Trash
    auto = create
  }}
}}
mail_plugins = quota
protocol imap {{
  mail_plugins = $mail_plugins imap_quota
}}
plugin {{
  quota = maildir:User quota
  quota_rule = *:storage=10M
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
"#
        );
        let conf_path = root.join("dovecot.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new("/usr/sbin/dovecot")
            .arg("-F")
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(root.join("stderr.log")).unwrap(),
            ))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start /usr/sbin/dovecot: {e}"));
        let mut server = TestServer {
            dir,
            child: Some(child),
            imap_port,
            imaps_port,
        };
        server.wait_ready();
        server
    }

    /// Polls until the plain port sends a greeting (imap-login is up).
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "dovecot exited with {status} before it was ready:\n{}",
                    self.log()
                );
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.imap_port)) {
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut buf = [0u8; 4];
                if s.read_exact(&mut buf).is_ok() && &buf == b"* OK" {
                    return;
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "dovecot did not accept connections within 20 s:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
        format!(
            "--- dovecot.log\n{}--- stderr\n{}",
            read("dovecot.log"),
            read("stderr.log")
        )
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn endpoint(&self, tls: TlsMode) -> Endpoint {
        Endpoint {
            host: "localhost".into(),
            port: match tls {
                TlsMode::Implicit => self.imaps_port,
                TlsMode::Starttls | TlsMode::None => self.imap_port,
            },
            tls,
            username: USER.into(),
            ca_file: Some(self.ca_file()),
            tls_fingerprint: None,
        }
    }

    pub fn password() -> Secret {
        Secret::new(PASSWORD)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SIGTERM lets the master stop its children too; SIGKILL if it hangs.
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}
