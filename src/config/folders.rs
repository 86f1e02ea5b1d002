//! Folder patterns of `include` / `exclude`: `*` and `?` wildcards, all else literal.

/// Whether `pattern` matches the whole of `name`.
///
/// `*` matches any run of characters including the hierarchy separator, `?`
/// exactly one character; `[`, `]` and everything else stand for themselves
/// (Gmail's folders are called `[Gmail]/…`). A name or pattern that is
/// `INBOX`, or starts with `INBOX/`, has that part compared without case,
/// since IMAP treats `INBOX` so.
pub fn matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = normalize_inbox(pattern).chars().collect();
    let n: Vec<char> = normalize_inbox(name).chars().collect();
    wildcard(&p, &n)
}

fn normalize_inbox(s: &str) -> String {
    let head = s.split('/').next().unwrap_or("");
    if head.eq_ignore_ascii_case("INBOX") {
        format!("INBOX{}", &s[head.len()..])
    } else {
        s.to_string()
    }
}

/// Iterative wildcard match with backtracking to the last `*`: linear space,
/// O(len(p) × len(n)) time at worst.
fn wildcard(p: &[char], n: &[char]) -> bool {
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn literal_and_wildcards() {
        assert!(matches("Trash", "Trash"));
        assert!(!matches("Trash", "Trash/Old"));
        assert!(matches("Trash*", "Trash/Old"));
        assert!(matches("*", "a/b/c"));
        assert!(matches("Archive/*", "Archive/2023/Q1"));
        assert!(!matches("Archive/*", "Archive"));
        assert!(matches("?ent", "Sent"));
        assert!(!matches("?ent", "Spent"));
        assert!(matches("*a*b*", "xxaxxbxx"));
        assert!(!matches("*a*b", "xxaxxbxx"));
    }

    #[test]
    fn brackets_are_literal() {
        assert!(matches("[Gmail]/Spam", "[Gmail]/Spam"));
        assert!(!matches("[Gmail]/Spam", "G/Spam"));
        assert!(matches("[Gmail]/*", "[Gmail]/All Mail"));
    }

    #[test]
    fn japanese_names() {
        assert!(matches("送信済み", "送信済み"));
        assert!(matches("仕事/*", "仕事/2024年"));
        assert!(matches("?信済み", "送信済み"));
        assert!(!matches("送信済み", "送信"));
    }

    #[test]
    fn inbox_ignores_case() {
        assert!(matches("INBOX", "inbox"));
        assert!(matches("inbox/*", "INBOX/Sub"));
        assert!(!matches("inboxes", "INBOXES"));
    }
}
