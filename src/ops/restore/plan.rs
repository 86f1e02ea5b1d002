//! What a restore will do, decided from the store alone: which messages of
//! which source folders, and the name each folder gets on the target. Pure
//! functions, no I/O, so every case is unit-tested.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;

use crate::imap::{encode_mailbox_name, Namespace};
use crate::index::{MailboxRow, StoredMessage};
use crate::model::{BlobId, Flags, InternalDate};

use super::super::folder_matches;

/// What is selected from the source account.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Folder patterns (`*`, `?`) on the source folder names; empty: all.
    pub folders: Vec<String>,
    /// INTERNALDATE on or after this day (in the date's own zone, like IMAP `SINCE`).
    pub since: Option<NaiveDate>,
    /// INTERNALDATE before this day (like IMAP `BEFORE`).
    pub before: Option<NaiveDate>,
    /// Only messages that `archive` removed from the server.
    pub archived_only: bool,
}

impl Selection {
    pub fn wants(&self, m: &StoredMessage) -> bool {
        if self.archived_only && m.archived_at.is_none() {
            return false;
        }
        let day = local_day(&m.internaldate);
        if self.since.is_some_and(|s| day < s) || self.before.is_some_and(|b| day >= b) {
            return false;
        }
        true
    }

    /// Whether messages are chosen by more than their folder.
    pub fn filters_messages(&self) -> bool {
        self.archived_only || self.since.is_some() || self.before.is_some()
    }

    pub fn wants_folder(&self, name: &str) -> bool {
        self.folders.is_empty() || self.folders.iter().any(|p| folder_matches(p, name))
    }
}

/// The calendar day of an INTERNALDATE in its own zone.
fn local_day(d: &InternalDate) -> NaiveDate {
    let offset = chrono::FixedOffset::east_opt(d.offset_min * 60)
        .unwrap_or_else(|| chrono::FixedOffset::east_opt(0).expect("zero offset"));
    chrono::DateTime::from_timestamp(d.unix, 0)
        .unwrap_or_default()
        .with_timezone(&offset)
        .date_naive()
}

/// One message to put into a target folder: one copy of its bytes (a folder
/// that held the same bytes under two UIDs gets two items, copy 0 and 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub blob: BlobId,
    /// Which copy of these bytes in the target folder: 0, 1, …
    pub copy: u32,
    pub flags: Flags,
    pub internaldate: InternalDate,
    pub size: u64,
}

/// One target folder and what goes into it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderPlan {
    /// Source folder names (decoded), more than one when `--to-folder` merges.
    pub sources: Vec<String>,
    /// Target name as on the wire (modified UTF-7).
    pub target_raw: String,
    /// Target name for people.
    pub target: String,
    /// A name segment held the target's separator and was changed.
    pub renamed: bool,
    pub items: Vec<Item>,
}

impl Item {
    /// What the restore map and a run's bookkeeping know the item by.
    pub fn key(&self) -> (BlobId, u32) {
        (self.blob, self.copy)
    }
}

impl FolderPlan {
    pub fn bytes(&self) -> u64 {
        self.items.iter().map(|i| i.size).sum()
    }
}

/// Where the target's folders live: its personal namespace, and its
/// special-use folders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetShape {
    /// Raw prefix (`""`, `"INBOX."`).
    pub prefix: String,
    pub delimiter: Option<char>,
    /// The target's folder for each special use it marks (`\sent` →
    /// `Sent Messages`), keys lower-case: a source folder with that use is
    /// restored into it, whatever either is called.
    pub special_use: BTreeMap<String, String>,
}

impl From<Namespace> for TargetShape {
    fn from(ns: Namespace) -> TargetShape {
        TargetShape {
            prefix: ns.prefix,
            delimiter: ns.delimiter,
            special_use: BTreeMap::new(),
        }
    }
}

impl TargetShape {
    /// Learns the target's special-use folders from its LIST.
    pub fn with_special_use(mut self, listed: &[crate::model::Folder]) -> TargetShape {
        for f in listed.iter().filter(|f| f.selectable) {
            if let Some(u) = &f.special_use {
                self.special_use
                    .entry(u.to_ascii_lowercase())
                    .or_insert_with(|| f.raw.clone());
            }
        }
        self
    }
}

/// What the user asked with `--to-folder`: written with `/` between levels
/// whatever the servers use. Ending in `/`: a parent folder, the source
/// hierarchy goes below it. Otherwise: one folder that takes every selected
/// message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToFolder {
    Under(Vec<String>),
    Into(Vec<String>),
}

impl ToFolder {
    pub fn parse(s: &str) -> Option<ToFolder> {
        let segs: Vec<String> = s
            .split('/')
            .filter(|p| !p.is_empty())
            .map(String::from)
            .collect();
        if segs.is_empty() {
            return None;
        }
        Some(if s.ends_with('/') {
            ToFolder::Under(segs)
        } else {
            ToFolder::Into(segs)
        })
    }
}

/// The source account's personal prefix, guessed from its folder names: on
/// Courier/Cyrus-style servers every folder but INBOX sits below `INBOX.`.
/// The store does not record the source's NAMESPACE, so this is the best
/// there is: if every folder other than INBOX starts with `INBOX` and the
/// delimiter, that is the prefix.
pub fn source_prefix(folders: &[(String, Option<String>)]) -> Option<String> {
    let mut others = folders
        .iter()
        .filter(|(name, _)| !name.eq_ignore_ascii_case("INBOX"))
        .peekable();
    others.peek()?;
    let mut prefix: Option<String> = None;
    for (name, delim) in others {
        let d = delim.as_deref().filter(|d| !d.is_empty())?;
        let p = format!("INBOX{d}");
        if name.len() <= p.len() || !name[..p.len()].eq_ignore_ascii_case(&p) {
            return None;
        }
        match &prefix {
            Some(q) if q != &p => return None,
            _ => prefix = Some(p),
        }
    }
    prefix
}

/// A source folder's path as segments: its display name without the source
/// prefix, split at the source delimiter. INBOX is always `["INBOX"]`.
pub fn source_segments(name: &str, delimiter: Option<&str>, prefix: Option<&str>) -> Vec<String> {
    if name.eq_ignore_ascii_case("INBOX") {
        return vec!["INBOX".into()];
    }
    let rest = match prefix {
        Some(p) if name.len() > p.len() && name[..p.len()].eq_ignore_ascii_case(p) => {
            &name[p.len()..]
        }
        _ => name,
    };
    let segs: Vec<String> = match delimiter.filter(|d| !d.is_empty()) {
        Some(d) => rest
            .split(d)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        None => vec![rest.to_string()],
    };
    let mut segs = if segs.is_empty() {
        vec![rest.to_string()]
    } else {
        segs
    };
    if segs[0].eq_ignore_ascii_case("INBOX") {
        segs[0] = "INBOX".into();
    }
    segs
}

/// The target's raw name for a path of segments, and whether a segment had to
/// be changed because it contained the target's separator (each such
/// character becomes `_`: `Reports 1.5` on a `.` server is `Reports 1_5`, a
/// folder of its own, not `5` below `Reports 1`).
pub fn target_name(segments: &[String], shape: &TargetShape) -> (String, bool) {
    if segments.len() == 1 && segments[0].eq_ignore_ascii_case("INBOX") {
        return ("INBOX".into(), false);
    }
    let mut renamed = false;
    let clean: Vec<String> = segments
        .iter()
        .map(|s| match shape.delimiter {
            Some(d) if s.contains(d) => {
                renamed = true;
                s.replace(d, "_")
            }
            _ => s.clone(),
        })
        .collect();
    let joiner = shape
        .delimiter
        .map(String::from)
        .unwrap_or_else(|| "/".into());
    let body = clean
        .iter()
        .map(|s| encode_mailbox_name(s))
        .collect::<Vec<_>>()
        .join(&joiner);
    // `INBOX/Sub` on an `INBOX.`-prefixed server is `INBOX.Sub`, not
    // `INBOX.INBOX.Sub`.
    let prefix_head = shape
        .delimiter
        .and_then(|d| shape.prefix.strip_suffix(d))
        .unwrap_or(&shape.prefix);
    let raw = if !prefix_head.is_empty() && clean[0].eq_ignore_ascii_case(prefix_head) {
        body
    } else {
        format!("{}{body}", shape.prefix)
    };
    (raw, renamed)
}

/// Builds the plan: for each selected source folder (every generation of it,
/// so that mail from before a UIDVALIDITY change is not forgotten), every
/// message it holds, with the flags and date of its latest sighting, in the
/// order the source had them. A message held under several UIDs of one
/// folder is restored as many times; the same bytes seen in several
/// generations of a folder, or in several folders merged into one target
/// folder, count as many times as the one that held them most often (a
/// UIDVALIDITY change renumbers the same messages; merging folders does not
/// repeat a message). Folders left empty by the date or archive filter are
/// left out.
pub fn build(
    mailboxes: &[(MailboxRow, Vec<StoredMessage>)],
    all_folders: &[(String, Option<String>)],
    selection: &Selection,
    to_folder: Option<&ToFolder>,
    shape: &TargetShape,
) -> Vec<FolderPlan> {
    let prefix = source_prefix(all_folders);
    let mut plans: BTreeMap<String, FolderPlan> = BTreeMap::new();
    // (target, blob) → the items of its copies, in order.
    let mut index: HashMap<(String, BlobId), Vec<usize>> = HashMap::new();
    for (mb, messages) in mailboxes {
        if !selection.wants_folder(&mb.name) {
            continue;
        }
        let (raw, renamed) = target_of(mb, prefix.as_deref(), to_folder, shape);
        let plan = plans.entry(raw.clone()).or_insert_with(|| FolderPlan {
            sources: Vec::new(),
            target: crate::imap::decode_mailbox_name(&raw),
            target_raw: raw.clone(),
            renamed,
            items: Vec::new(),
        });
        if !plan.sources.contains(&mb.name) {
            plan.sources.push(mb.name.clone());
        }
        // Copies of each blob in this generation of this folder so far.
        let mut seen_here: HashMap<BlobId, usize> = HashMap::new();
        for m in messages {
            if !selection.wants(m) {
                continue;
            }
            let nth = seen_here.entry(m.blob).or_insert(0);
            let copies = index.entry((raw.clone(), m.blob)).or_default();
            let item = Item {
                blob: m.blob,
                copy: *nth as u32,
                flags: m.flags.clone(),
                internaldate: m.internaldate,
                size: m.size,
            };
            match copies.get(*nth) {
                // Seen before (an older generation, another merged folder):
                // keep its place, take the newer flags.
                Some(&i) => plan.items[i] = item,
                None => {
                    copies.push(plan.items.len());
                    plan.items.push(item);
                }
            }
            *nth += 1;
        }
    }
    // An empty folder is recreated too, unless it is empty only because of
    // the date or archive filter.
    plans
        .into_values()
        .filter(|p| !p.items.is_empty() || !selection.filters_messages())
        .collect()
}

/// The target folder of a source folder: its name translated, or the
/// target's folder of the same special use (a Sent, Drafts, Trash, Junk or
/// Archive folder), unless `--to-folder` says where everything goes.
fn target_of(
    mb: &MailboxRow,
    prefix: Option<&str>,
    to_folder: Option<&ToFolder>,
    shape: &TargetShape,
) -> (String, bool) {
    let segs = source_segments(&mb.name, mb.delimiter.as_deref(), prefix);
    let segs = match to_folder {
        None => segs,
        Some(ToFolder::Under(head)) => head.iter().cloned().chain(segs).collect(),
        Some(ToFolder::Into(whole)) => whole.clone(),
    };
    let special = match (to_folder, mb.special_use.as_deref()) {
        (None, Some(u)) => shape.special_use.get(&u.to_ascii_lowercase()).cloned(),
        _ => None,
    };
    match special {
        Some(raw) => (raw, false),
        None => target_name(&segs, shape),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(prefix: &str, d: char) -> TargetShape {
        TargetShape {
            prefix: prefix.into(),
            delimiter: Some(d),
            special_use: BTreeMap::new(),
        }
    }

    fn segs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_follow_the_targets_separator_and_prefix() {
        let courier = shape("INBOX.", '.');
        assert_eq!(
            target_name(&segs(&["Work", "2019"]), &courier),
            ("INBOX.Work.2019".into(), false)
        );
        assert_eq!(
            target_name(&segs(&["INBOX"]), &courier),
            ("INBOX".into(), false)
        );
        assert_eq!(
            target_name(&segs(&["INBOX", "Sub"]), &courier),
            ("INBOX.Sub".into(), false)
        );
        assert_eq!(
            target_name(&segs(&["Reports 1.5"]), &courier),
            ("INBOX.Reports 1_5".into(), true)
        );
        let plain = shape("", '/');
        assert_eq!(
            target_name(&segs(&["Work", "2019"]), &plain),
            ("Work/2019".into(), false)
        );
        assert_eq!(
            target_name(&segs(&["仕事", "a/b"]), &plain),
            ("&TtVOiw-/a_b".into(), true)
        );
        let flat = TargetShape {
            prefix: String::new(),
            delimiter: None,
            special_use: BTreeMap::new(),
        };
        assert_eq!(
            target_name(&segs(&["Work", "2019"]), &flat),
            ("Work/2019".into(), false)
        );
    }

    #[test]
    fn source_paths_lose_the_source_prefix() {
        let courier = vec![
            ("INBOX".to_string(), Some(".".to_string())),
            ("INBOX.Sent".to_string(), Some(".".to_string())),
            ("INBOX.Work.2019".to_string(), Some(".".to_string())),
        ];
        let p = source_prefix(&courier);
        assert_eq!(p.as_deref(), Some("INBOX."));
        assert_eq!(
            source_segments("INBOX.Work.2019", Some("."), p.as_deref()),
            segs(&["Work", "2019"])
        );
        assert_eq!(
            source_segments("inbox", Some("."), p.as_deref()),
            segs(&["INBOX"])
        );
        let dovecot = vec![
            ("INBOX".to_string(), Some("/".to_string())),
            ("Sent".to_string(), Some("/".to_string())),
            ("INBOX/Sub".to_string(), Some("/".to_string())),
        ];
        assert_eq!(source_prefix(&dovecot), None);
        assert_eq!(
            source_segments("INBOX/Sub", Some("/"), None),
            segs(&["INBOX", "Sub"])
        );
        assert_eq!(source_prefix(&dovecot[..1]), None);
    }

    #[test]
    fn to_folder_forms() {
        assert_eq!(
            ToFolder::parse("Restored/"),
            Some(ToFolder::Under(segs(&["Restored"])))
        );
        assert_eq!(
            ToFolder::parse("Old/Inbox"),
            Some(ToFolder::Into(segs(&["Old", "Inbox"])))
        );
        assert_eq!(ToFolder::parse("/"), None);
    }

    fn row(id: i64, name: &str, uidvalidity: u32) -> MailboxRow {
        MailboxRow {
            id,
            account: "work".into(),
            raw_name: name.into(),
            name: name.into(),
            delimiter: Some("/".into()),
            special_use: None,
            uidvalidity,
            uidnext: None,
            highestmodseq: None,
            server_count: None,
            is_current: true,
            last_sync_at: None,
            gone_at: None,
        }
    }

    fn msg(uid: u32, body: &[u8], unix: i64, flags: &str, archived: bool) -> StoredMessage {
        StoredMessage {
            uid,
            blob: BlobId::of(body),
            flags: Flags::from_text(flags),
            modseq: None,
            internaldate: InternalDate {
                unix,
                offset_min: 540,
            },
            size: body.len() as u64,
            gone_at: None,
            archived_at: archived.then_some(1),
        }
    }

    #[test]
    fn each_blob_once_per_target_folder_newest_flags_win() {
        let jan_2019 = 1546300800; // 2019-01-01 00:00 UTC = 09:00 +0900
        let mbs = vec![
            (
                row(1, "INBOX", 1),
                vec![
                    msg(1, b"a", jan_2019, "", false),
                    msg(2, b"b", jan_2019 - 86_400, "", true),
                ],
            ),
            (
                row(2, "INBOX", 2),
                vec![
                    msg(1, b"a", jan_2019, "\\Seen", false),
                    msg(2, b"a", jan_2019, "\\Seen", false),
                ],
            ),
            (
                row(3, "Work/2019", 5),
                vec![msg(1, b"a", jan_2019, "", false)],
            ),
        ];
        let all: Vec<(String, Option<String>)> = mbs
            .iter()
            .map(|(m, _)| (m.name.clone(), m.delimiter.clone()))
            .collect();
        let target = shape("INBOX.", '.');
        let plans = build(&mbs, &all, &Selection::default(), None, &target);
        assert_eq!(plans.len(), 2);
        assert_eq!(plans[0].target_raw, "INBOX");
        assert_eq!(plans[0].items.len(), 2);
        assert_eq!(plans[0].items[0].flags.to_text(), "\\Seen");
        assert_eq!(plans[1].target_raw, "INBOX.Work.2019");
        assert_eq!(plans[1].items.len(), 1);

        let sel = Selection {
            since: NaiveDate::from_ymd_opt(2019, 1, 1),
            ..Default::default()
        };
        let plans = build(&mbs, &all, &sel, None, &target);
        assert_eq!(plans[0].items.len(), 1, "b is from 2018-12-31");
        let sel = Selection {
            archived_only: true,
            ..Default::default()
        };
        let plans = build(&mbs, &all, &sel, None, &target);
        assert_eq!(plans[0].items.len(), 1);
        assert_eq!(plans[0].items[0].blob, BlobId::of(b"b"));

        let sel = Selection {
            folders: vec!["Work/*".into()],
            ..Default::default()
        };
        let into = ToFolder::parse("Restored/").unwrap();
        let plans = build(&mbs, &all, &sel, Some(&into), &shape("", '/'));
        assert_eq!(plans.len(), 1);
        assert_eq!(plans[0].target_raw, "Restored/Work/2019");
        assert_eq!(plans[0].sources, vec!["Work/2019".to_string()]);

        // Merged into one folder: still each message once.
        let one = ToFolder::parse("All").unwrap();
        let plans = build(&mbs, &all, &Selection::default(), Some(&one), &target);
        assert_eq!(plans.len(), 1);
        assert_eq!(plans[0].target_raw, "INBOX.All");
        assert_eq!(plans[0].items.len(), 2);
        assert_eq!(plans[0].sources.len(), 2);
    }

    #[test]
    fn special_use_folders_go_to_the_targets_folder_of_that_use() {
        let mut sent = row(1, "[Gmail]/Sent Mail", 1);
        sent.special_use = Some("\\Sent".into());
        let mbs = vec![
            (sent, vec![msg(1, b"s", 1_600_000_000, "\\Seen", false)]),
            (
                row(2, "[Gmail]/Lists", 1),
                vec![msg(1, b"l", 1_600_000_000, "", false)],
            ),
        ];
        let all: Vec<(String, Option<String>)> = mbs
            .iter()
            .map(|(m, _)| (m.name.clone(), m.delimiter.clone()))
            .collect();
        let listed = vec![crate::model::Folder {
            raw: "Sent Messages".into(),
            display: "Sent Messages".into(),
            delimiter: Some('/'),
            special_use: Some("\\Sent".into()),
            selectable: true,
        }];
        let target = shape("", '/').with_special_use(&listed);
        let plans = build(&mbs, &all, &Selection::default(), None, &target);
        let names: Vec<&str> = plans.iter().map(|p| p.target_raw.as_str()).collect();
        assert_eq!(names, vec!["Sent Messages", "[Gmail]/Lists"]);
        // `--to-folder` puts everything where it says, special use or not.
        let into = ToFolder::parse("Old/").unwrap();
        let plans = build(&mbs, &all, &Selection::default(), Some(&into), &target);
        assert!(plans.iter().all(|p| p.target_raw.starts_with("Old/")));
    }
}
