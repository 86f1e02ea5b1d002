//! `Env`: an isolated user for running the real `mailkeep` binary — its own config
//! file, store, HOME and XDG directories, and nothing else from the caller's
//! environment except PATH.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

use tempfile::TempDir;

use super::dovecot::Dovecot;
use super::mailkeep_bin;
use super::proxy::FaultProxy;

/// How long `Env::run` lets the binary run before killing it and panicking.
pub const DEFAULT_RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// What a finished run printed and returned.
#[derive(Clone, Debug)]
pub struct Output {
    /// The exit code; `128 + signal` when the process was killed by a signal.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Panics, showing everything the run printed, unless it exited 0.
    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert!(self.code == 0, "expected exit code 0\n{self}");
        self
    }

    /// Panics, showing everything the run printed, unless it exited non-zero.
    #[track_caller]
    pub fn assert_failure(&self) -> &Self {
        assert!(self.code != 0, "expected a non-zero exit code\n{self}");
        self
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit code: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// An isolated user: `dir/config.toml`, `dir/store`, `dir/home`, `dir/xdg/*`.
pub struct Env {
    pub dir: TempDir,
    pub config: PathBuf,
    pub store: PathBuf,
    passwords: Mutex<Vec<(String, String)>>,
}

impl Default for Env {
    fn default() -> Self {
        Env::new()
    }
}

impl Env {
    /// A fresh environment with an empty `config.toml` (the store directory is not
    /// created: mailkeep creates it).
    pub fn new() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("mk-env-")
            .tempdir()
            .expect("create Env temp dir");
        let config = dir.path().join("config.toml");
        std::fs::write(&config, "# written by tests/support/env.rs\n").expect("write config");
        // As `mailkeep account add` writes it: readable by its owner only.
        std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("chmod config");
        for sub in [
            "home",
            "xdg/config",
            "xdg/data",
            "xdg/cache",
            "xdg/state",
            "xdg/runtime",
        ] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("create Env dir");
        }
        Env {
            store: dir.path().join("store"),
            config,
            dir,
            passwords: Mutex::new(Vec::new()),
        }
    }

    /// A new environment with a copy of this one's config file, store and
    /// password variables: one store, damaged in many ways, one copy each.
    pub fn fork(&self) -> Env {
        let env = Env::new();
        std::fs::copy(&self.config, &env.config).expect("copy config");
        if self.store.exists() {
            copy_dir(&self.store, &env.store);
        }
        *env.passwords.lock().unwrap() = self.passwords.lock().unwrap().clone();
        env
    }

    /// Appends `[accounts.NAME]` for `user` on `server` (implicit TLS on its imaps
    /// port, its CA) with `password_env = "MK_PW_<NAME>"`, and remembers the password
    /// so that `run` sets that variable.
    pub fn add_account(&self, name: &str, server: &Dovecot, user: &str) {
        let var = password_env_name(name);
        let body = format!(
            "host = \"localhost\"\nport = {}\ntls = \"implicit\"\nusername = {}\npassword_env = {}\nca_file = {}\n",
            server.imaps_port(),
            toml_str(user),
            toml_str(&var),
            toml_str(&server.ca_file().display().to_string()),
        );
        self.add_account_raw(name, &body, Some((&var, server.password(user))));
    }

    /// Appends `[accounts.NAME]` for `user` on `server` reached through `proxy`:
    /// host `127.0.0.1`, the proxy's port, `tls = "none"` (plain IMAP on loopback).
    pub fn add_account_via(&self, name: &str, proxy: &FaultProxy, server: &Dovecot, user: &str) {
        let var = password_env_name(name);
        let body = format!(
            "host = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nusername = {}\npassword_env = {}\n",
            proxy.port(),
            toml_str(user),
            toml_str(&var),
        );
        self.add_account_raw(name, &body, Some((&var, server.password(user))));
    }

    /// Appends `[accounts.NAME]` with `toml_body` as its contents; `password_env`
    /// is a `(variable, value)` for `run` to set.
    pub fn add_account_raw(&self, name: &str, toml_body: &str, password_env: Option<(&str, &str)>) {
        let mut text = std::fs::read_to_string(&self.config).expect("read config");
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!("\n[accounts.{}]\n{}", toml_key(name), toml_body));
        if !text.ends_with('\n') {
            text.push('\n');
        }
        std::fs::write(&self.config, text).expect("write config");
        if let Some((var, value)) = password_env {
            let mut pw = self.passwords.lock().unwrap();
            pw.retain(|(v, _)| v != var);
            pw.push((var.to_string(), value.to_string()));
        }
    }

    /// Appends raw TOML (e.g. global settings) to the config file.
    pub fn append_config(&self, toml: &str) {
        let mut text = std::fs::read_to_string(&self.config).expect("read config");
        text.push_str(toml);
        if !text.ends_with('\n') {
            text.push('\n');
        }
        std::fs::write(&self.config, text).expect("write config");
    }

    /// Sets an extra environment variable for later runs (e.g. a second password).
    pub fn set_var(&self, var: &str, value: &str) {
        let mut pw = self.passwords.lock().unwrap();
        pw.retain(|(v, _)| v != var);
        pw.push((var.to_string(), value.to_string()));
    }

    /// Runs `mailkeep --config <config> --store <store> ARGS…` to completion
    /// (at most `DEFAULT_RUN_TIMEOUT`).
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with_timeout(args, DEFAULT_RUN_TIMEOUT)
    }

    /// Like `run`; kills the process and panics if it has not exited after `timeout`.
    pub fn run_with_timeout(&self, args: &[&str], timeout: Duration) -> Output {
        run_command(self.command(args), timeout)
    }

    /// Runs any `program ARGS…` in this environment the way `run` runs mailkeep.
    pub fn run_program(&self, program: &Path, args: &[&str], timeout: Duration) -> Output {
        let mut cmd = self.command_for(program);
        cmd.args(args);
        run_command(cmd, timeout)
    }

    /// Starts `mailkeep` with stdout and stderr piped (read them, or they may fill
    /// up and block the process) — for kill -9 and concurrency tests.
    pub fn spawn(&self, args: &[&str]) -> Child {
        let mut cmd = self.command(args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", mailkeep_bin().display()))
    }

    /// The `Command` that `run` and `spawn` use: `mailkeep --config … --store … ARGS`.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.command_for(&mailkeep_bin());
        cmd.arg("--config")
            .arg(&self.config)
            .arg("--store")
            .arg(&self.store)
            .args(args);
        cmd
    }

    /// Any program in this environment: env cleared except PATH; HOME and XDG_*
    /// inside `dir`; NO_COLOR=1; the password variables; stdin null.
    pub fn command_for(&self, program: &Path) -> Command {
        let d = self.dir.path();
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", d.join("home"))
            .env("XDG_CONFIG_HOME", d.join("xdg/config"))
            .env("XDG_DATA_HOME", d.join("xdg/data"))
            .env("XDG_CACHE_HOME", d.join("xdg/cache"))
            .env("XDG_STATE_HOME", d.join("xdg/state"))
            .env("XDG_RUNTIME_DIR", d.join("xdg/runtime"))
            .env("NO_COLOR", "1")
            .current_dir(d)
            .stdin(Stdio::null());
        for (var, value) in self.passwords.lock().unwrap().iter() {
            cmd.env(var, value);
        }
        cmd
    }
}

/// `MK_PW_<NAME>`: the name upper-cased, anything but ASCII letters and digits as `_`.
pub fn password_env_name(account: &str) -> String {
    let upper: String = account
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("MK_PW_{upper}")
}

/// Runs `cmd` with piped output; kills it and panics after `timeout`.
fn run_command(mut cmd: Command, timeout: Duration) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let program = format!("{cmd:?}");
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    let pid = child.id();
    let out = pipe_reader(child.stdout.take().unwrap());
    let err = pipe_reader(child.stderr.take().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = match rx.recv_timeout(timeout) {
        Ok(status) => status.expect("wait for child"),
        Err(_) => {
            // SAFETY: kill(2) on the pid of our own child, which has not been reaped.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
            let _ = rx.recv();
            let stdout = out.join().unwrap_or_default();
            let stderr = err.join().unwrap_or_default();
            panic!(
                "{program} did not finish within {timeout:?}; killed\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
            );
        }
    };
    let code = match status.code() {
        Some(c) => c,
        None => {
            use std::os::unix::process::ExitStatusExt;
            128 + status.signal().unwrap_or(0)
        }
    };
    Output {
        code,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

fn pipe_reader<R: Read + Send + 'static>(mut r: R) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// A TOML basic string.
pub fn toml_str(s: &str) -> String {
    let mut q = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\r' => q.push_str("\\r"),
            '\t' => q.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                q.push_str(&format!("\\u{:04X}", c as u32))
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

/// A TOML key: bare when possible, else quoted.
fn toml_key(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        s.to_string()
    } else {
        toml_str(s)
    }
}

/// Copies a directory tree (files and directories only).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for e in std::fs::read_dir(from).expect("read dir") {
        let e = e.expect("dir entry");
        let dest = to.join(e.file_name());
        if e.file_type().expect("file type").is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).expect("copy file");
        }
    }
}
