//! Default locations of the config file and the store (XDG base directories).

use std::ffi::OsString;
use std::path::PathBuf;

/// `$MAILKEEP_CONFIG`, else `$XDG_CONFIG_HOME/mailkeep/config.toml`, else
/// `~/.config/mailkeep/config.toml`. Empty variables count as unset, and so
/// does a relative `XDG_CONFIG_HOME` (the XDG spec says to ignore it).
pub fn default_config_path() -> PathBuf {
    config_path_from(&|k| std::env::var_os(k))
}

/// `$MAILKEEP_STORE`, else `$XDG_DATA_HOME/mailkeep`, else `~/.local/share/mailkeep`.
pub fn default_store_path() -> PathBuf {
    store_path_from(&|k| std::env::var_os(k))
}

type Lookup<'a> = &'a dyn Fn(&str) -> Option<OsString>;

fn var(get: Lookup, key: &str) -> Option<PathBuf> {
    get(key).filter(|v| !v.is_empty()).map(PathBuf::from)
}

fn xdg(get: Lookup, key: &str) -> Option<PathBuf> {
    var(get, key).filter(|p| p.is_absolute())
}

fn config_path_from(get: Lookup) -> PathBuf {
    if let Some(p) = var(get, "MAILKEEP_CONFIG") {
        return p;
    }
    xdg(get, "XDG_CONFIG_HOME")
        .unwrap_or_else(|| home(get).join(".config"))
        .join("mailkeep")
        .join("config.toml")
}

fn store_path_from(get: Lookup) -> PathBuf {
    if let Some(p) = var(get, "MAILKEEP_STORE") {
        return p;
    }
    xdg(get, "XDG_DATA_HOME")
        .unwrap_or_else(|| home(get).join(".local").join("share"))
        .join("mailkeep")
}

/// `$HOME`, else the home directory in the password database, else `/`.
fn home(get: Lookup) -> PathBuf {
    var(get, "HOME")
        .or_else(home_from_passwd)
        .unwrap_or_else(|| PathBuf::from("/"))
}

fn home_from_passwd() -> Option<PathBuf> {
    use std::ffi::CStr;
    use std::os::unix::ffi::OsStrExt;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the call; getpwuid_r writes the
    // strings into `buf`, which outlives their use below.
    let rc = unsafe {
        libc::getpwuid_r(
            libc::getuid(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() || pwd.pw_dir.is_null() {
        return None;
    }
    // SAFETY: pw_dir points into `buf` and is NUL-terminated.
    let dir = unsafe { CStr::from_ptr(pwd.pw_dir) };
    let dir = std::ffi::OsStr::from_bytes(dir.to_bytes());
    (!dir.is_empty()).then(|| PathBuf::from(dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let m: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn config_path_precedence() {
        let e = env(&[
            ("MAILKEEP_CONFIG", "/x/c.toml"),
            ("XDG_CONFIG_HOME", "/xdg"),
            ("HOME", "/home/t"),
        ]);
        assert_eq!(config_path_from(&e), PathBuf::from("/x/c.toml"));
        let e = env(&[
            ("MAILKEEP_CONFIG", ""),
            ("XDG_CONFIG_HOME", "/xdg"),
            ("HOME", "/home/t"),
        ]);
        assert_eq!(
            config_path_from(&e),
            PathBuf::from("/xdg/mailkeep/config.toml")
        );
        let e = env(&[("XDG_CONFIG_HOME", "rel"), ("HOME", "/home/t")]);
        assert_eq!(
            config_path_from(&e),
            PathBuf::from("/home/t/.config/mailkeep/config.toml")
        );
    }

    #[test]
    fn store_path_precedence() {
        let e = env(&[("MAILKEEP_STORE", "/s"), ("HOME", "/home/t")]);
        assert_eq!(store_path_from(&e), PathBuf::from("/s"));
        let e = env(&[("XDG_DATA_HOME", "/d"), ("HOME", "/home/t")]);
        assert_eq!(store_path_from(&e), PathBuf::from("/d/mailkeep"));
        let e = env(&[("HOME", "/home/t")]);
        assert_eq!(
            store_path_from(&e),
            PathBuf::from("/home/t/.local/share/mailkeep")
        );
    }

    #[test]
    fn home_falls_back_to_passwd() {
        let e = env(&[]);
        assert!(config_path_from(&e).is_absolute());
    }
}
