//! What a restore will do, decided from the store alone: which messages of
//! which source folders, and the name each folder gets on the target. Pure
//! functions, no I/O, so every case is unit-tested.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::NaiveDate;

use crate::imap::{encode_mailbox_name, Namespace};
use crate::index::{IndexError, MailboxRow, StoredMessage};
use crate::model::{BlobId, Flags, InternalDate};

use super::super::folder_matches;
use super::folders;

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
    /// Only what the source holds now: the current generation of folders it
    /// still lists, messages neither gone from it nor archived (`migrate`).
    pub current_only: bool,
}

impl Selection {
    pub fn wants(&self, m: &StoredMessage) -> bool {
        if self.archived_only && m.archived_at.is_none() {
            return false;
        }
        if self.current_only && (m.gone_at.is_some() || m.archived_at.is_some()) {
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

    fn wants_generation(&self, mb: &MailboxRow) -> bool {
        !self.current_only || (mb.is_current && mb.gone_at.is_none())
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
    /// What the target folder is for (`\Sent`, …), when the source said or
    /// its name did.
    pub special_use: Option<String>,
    /// The source folder generations it takes, in order.
    pub generations: Vec<Generation>,
    /// For All Mail: the messages that come through other folders.
    pub elsewhere: Option<Arc<HashSet<BlobId>>>,
    /// Empty as [`build`] made it: filled with [`items`] when the folder's
    /// turn comes.
    pub items: Vec<Item>,
    /// How many items it takes, and their bytes.
    pub count: u64,
    pub size: u64,
    /// Messages of the source folders left out because they come through
    /// another folder (Gmail's All Mail holds every labelled message again).
    pub skipped: u64,
    /// Messages the source folders held at their last backup (current
    /// generations), when known.
    pub source_count: Option<u64>,
}

/// A source folder that is not restored, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedFolder {
    pub name: String,
    pub reason: String,
    /// Messages it holds (as selected).
    pub messages: u64,
}

/// What [`build`] decided.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Built {
    pub folders: Vec<FolderPlan>,
    pub skipped: Vec<SkippedFolder>,
}

/// How source folders become target folders, beyond their names.
#[derive(Clone, Debug, Default)]
pub struct FolderRules {
    /// `--to-folder`.
    pub to_folder: Option<ToFolder>,
    /// `--map OLD=NEW`: a source folder, named as the source names it, and
    /// the target folder's path (levels split at `/`). Before anything else.
    pub maps: Vec<(String, Vec<String>)>,
    /// `--exclude PATTERN`: source folders left out.
    pub exclude: Vec<String>,
}

impl FolderRules {
    fn mapped(&self, name: &str) -> Option<&Vec<String>> {
        self.maps
            .iter()
            .find(|(from, _)| {
                from == name
                    || (from.eq_ignore_ascii_case("INBOX") && name.eq_ignore_ascii_case("INBOX"))
            })
            .map(|(_, to)| to)
    }

    fn excluded(&self, name: &str) -> bool {
        self.exclude.iter().any(|p| folder_matches(p, name))
    }

    /// `Old=New` as given to `--map`: `None` when either side is empty.
    pub fn parse_map(s: &str) -> Option<(String, Vec<String>)> {
        let (from, to) = s.split_once('=')?;
        let from = from.trim();
        let to: Vec<String> = to
            .split('/')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(String::from)
            .collect();
        (!from.is_empty() && !to.is_empty()).then(|| (from.to_string(), to))
    }
}

impl Item {
    /// What the restore map and a run's bookkeeping know the item by.
    pub fn key(&self) -> (BlobId, u32) {
        (self.blob, self.copy)
    }
}

/// A generation of a source folder that goes into a target folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generation {
    pub mailbox: MailboxRow,
    /// Gmail's All Mail: brings only what no other folder does.
    pub all_mail: bool,
}

/// Where [`build`] and [`items`] read a source folder generation's messages,
/// in UID order.
pub trait Messages {
    fn each(
        &mut self,
        mailbox: &MailboxRow,
        each: &mut dyn FnMut(StoredMessage),
    ) -> Result<(), IndexError>;
}

/// The messages of each generation by its id (tests, and `migrate --dry-run`,
/// which plans from the server's folder list alone).
impl Messages for HashMap<i64, Vec<StoredMessage>> {
    fn each(
        &mut self,
        mailbox: &MailboxRow,
        each: &mut dyn FnMut(StoredMessage),
    ) -> Result<(), IndexError> {
        for m in self.get(&mailbox.id).into_iter().flatten() {
            each(m.clone());
        }
        Ok(())
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
    /// Learns the target's special-use folders from its LIST: the folders
    /// it marks, then, for a use it marks none for, a folder whose name says
    /// it (`Sent Messages`, `送信済み`, …; see [`folders`](super::folders)).
    pub fn with_special_use(mut self, listed: &[crate::model::Folder]) -> TargetShape {
        for f in listed.iter().filter(|f| f.selectable) {
            if let Some(u) = &f.special_use {
                self.special_use
                    .entry(u.to_ascii_lowercase())
                    .or_insert_with(|| f.raw.clone());
            }
        }
        let prefix = (!self.prefix.is_empty()).then_some(self.prefix.as_str());
        let mut by_name: Vec<(usize, String, String)> = Vec::new();
        for f in listed
            .iter()
            .filter(|f| f.selectable && f.special_use.is_none())
        {
            let delim = f.delimiter.map(String::from);
            let segs = source_segments(&f.display, delim.as_deref(), prefix);
            if let Some(u) = folders::use_of_folder(&segs, None) {
                // Earlier names in the table first (`Sent` before `Sent Items`).
                let rank = folders::KNOWN_NAMES
                    .iter()
                    .find(|(k, _)| *k == u)
                    .and_then(|(_, names)| {
                        names
                            .iter()
                            .position(|n| n.eq_ignore_ascii_case(segs.last().unwrap()))
                    })
                    .unwrap_or(usize::MAX);
                by_name.push((rank, u.to_ascii_lowercase(), f.raw.clone()));
            }
        }
        by_name.sort();
        for (_, u, raw) in by_name {
            self.special_use.entry(u).or_insert(raw);
        }
        self
    }

    fn folder_for(&self, special_use: &str) -> Option<&String> {
        self.special_use.get(&special_use.to_ascii_lowercase())
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
///
/// A source with an All Mail folder (`\All`: Gmail) holds every labelled
/// message twice, in its label's folder and in All Mail; its Starred and
/// Important folders are views of messages held elsewhere. So All Mail
/// brings only the messages in no other folder (into the target's `\All`
/// folder, else its `\Archive` folder, else `Archive`), and the views are
/// left out; `--map` of such a folder takes it whole.
///
/// The messages are read from `messages` one folder generation at a time;
/// a plan keeps only which generations each target folder takes and how
/// many messages and bytes that makes. [`items`] gives a folder's messages
/// when its turn comes.
pub fn build(
    mailboxes: &[MailboxRow],
    all_folders: &[(String, Option<String>)],
    selection: &Selection,
    rules: &FolderRules,
    shape: &TargetShape,
    messages: &mut dyn Messages,
) -> Result<Built, IndexError> {
    let prefix = source_prefix(all_folders);
    let mut built = Built::default();
    // Each selected generation, with its path and what it is for.
    struct Source<'a> {
        mb: &'a MailboxRow,
        segs: Vec<String>,
        special_use: Option<String>,
    }
    let mut sources: Vec<Source<'_>> = Vec::new();
    let mut skipped: BTreeMap<String, SkippedFolder> = BTreeMap::new();
    let mut skip =
        |mb: &MailboxRow, reason: &str, messages: &mut dyn Messages| -> Result<(), IndexError> {
            let mut n = 0u64;
            messages.each(mb, &mut |m| n += u64::from(selection.wants(&m)))?;
            skipped
                .entry(mb.name.clone())
                .or_insert_with(|| SkippedFolder {
                    name: mb.name.clone(),
                    reason: reason.to_string(),
                    messages: 0,
                })
                .messages += n;
            Ok(())
        };
    for mb in mailboxes {
        if !selection.wants_folder(&mb.name) || !selection.wants_generation(mb) {
            continue;
        }
        if rules.excluded(&mb.name) {
            skip(mb, "excluded (--exclude)", messages)?;
            continue;
        }
        let segs = source_segments(&mb.name, mb.delimiter.as_deref(), prefix.as_deref());
        let special_use = folders::use_of_folder(&segs, mb.special_use.as_deref());
        sources.push(Source {
            mb,
            segs,
            special_use,
        });
    }
    let is_use = |s: &Source<'_>, u: &str| s.special_use.as_deref() == Some(u);
    let gmail_like = sources.iter().any(|s| is_use(s, "\\All"));
    let mapped = |s: &Source<'_>| rules.to_folder.is_some() || rules.mapped(&s.mb.name).is_some();
    if gmail_like {
        let mut kept = Vec::with_capacity(sources.len());
        for s in sources {
            let view = is_use(&s, "\\Flagged") || is_use(&s, "\\Important");
            if view && !mapped(&s) {
                skip(
                    s.mb,
                    "a view of messages held in other folders (Gmail's Starred, Important); they come through those, flags included",
                    messages,
                )?;
            } else {
                kept.push(s);
            }
        }
        sources = kept;
    }
    // Bytes held by a folder other than All Mail: All Mail brings only the rest.
    let elsewhere: Option<Arc<HashSet<BlobId>>> = if gmail_like {
        let mut set = HashSet::new();
        for s in sources.iter().filter(|s| !is_use(s, "\\All")) {
            messages.each(s.mb, &mut |m| {
                if selection.wants(&m) {
                    set.insert(m.blob);
                }
            })?;
        }
        Some(Arc::new(set))
    } else {
        None
    };

    let mut plans: BTreeMap<String, FolderPlan> = BTreeMap::new();
    for s in &sources {
        let all_mail = gmail_like && is_use(s, "\\All") && !mapped(s);
        let (raw, renamed) = target_of(
            s.mb,
            &s.segs,
            s.special_use.as_deref(),
            all_mail,
            rules,
            shape,
        );
        let plan = plans.entry(raw.clone()).or_insert_with(|| FolderPlan {
            sources: Vec::new(),
            generations: Vec::new(),
            elsewhere: None,
            target: crate::imap::decode_mailbox_name(&raw),
            target_raw: raw.clone(),
            renamed,
            special_use: None,
            items: Vec::new(),
            count: 0,
            size: 0,
            skipped: 0,
            source_count: Some(0),
        });
        if !plan.sources.contains(&s.mb.name) {
            plan.sources.push(s.mb.name.clone());
        }
        if plan.special_use.is_none() && rules.to_folder.is_none() {
            plan.special_use = s.special_use.clone();
        }
        if s.mb.is_current && s.mb.gone_at.is_none() {
            plan.source_count = match (plan.source_count, s.mb.server_count) {
                (Some(a), Some(b)) => Some(a + b as u64),
                _ => None,
            };
        }
        if all_mail {
            plan.elsewhere = elsewhere.clone();
        }
        plan.generations.push(Generation {
            mailbox: s.mb.clone(),
            all_mail,
        });
    }
    // What each folder will take, counted one folder at a time: only the
    // folder being counted is held.
    for plan in plans.values_mut() {
        let (items, skipped) = collect(plan, selection, messages)?;
        plan.count = items.len() as u64;
        plan.size = items.iter().map(|i| i.size).sum();
        plan.skipped = skipped;
    }
    // An empty folder is recreated too, unless it is empty only because of
    // the date or archive filter.
    built.folders = plans
        .into_values()
        .filter(|p| p.count > 0 || !selection.filters_messages())
        .collect();
    built.skipped = skipped.into_values().collect();
    Ok(built)
}

/// The messages a folder of the plan takes, in order: read again from the
/// store when the folder's turn comes, so that a restore holds the items of
/// the folders it is working on, not of the whole account.
pub fn items(
    plan: &FolderPlan,
    selection: &Selection,
    messages: &mut dyn Messages,
) -> Result<Vec<Item>, IndexError> {
    Ok(collect(plan, selection, messages)?.0)
}

/// A folder's items, and how many messages All Mail left to other folders.
fn collect(
    plan: &FolderPlan,
    selection: &Selection,
    messages: &mut dyn Messages,
) -> Result<(Vec<Item>, u64), IndexError> {
    let mut items: Vec<Item> = Vec::new();
    let mut skipped = 0u64;
    // (blob, copy) → where that copy is in `items`.
    let mut placed: HashMap<(BlobId, u32), usize> = HashMap::new();
    for g in &plan.generations {
        let elsewhere = plan.elsewhere.as_deref().filter(|_| g.all_mail);
        // Copies of each blob in this generation of this folder so far.
        let mut seen_here: HashMap<BlobId, u32> = HashMap::new();
        messages.each(&g.mailbox, &mut |m| {
            if !selection.wants(&m) {
                return;
            }
            if elsewhere.is_some_and(|e| e.contains(&m.blob)) {
                skipped += 1;
                return;
            }
            let nth = seen_here.entry(m.blob).or_insert(0);
            let item = Item {
                blob: m.blob,
                copy: *nth,
                flags: m.flags,
                internaldate: m.internaldate,
                size: m.size,
            };
            *nth += 1;
            match placed.get(&item.key()) {
                // Seen before (an older generation, another merged folder):
                // keep its place, take the newer flags.
                Some(&i) => items[i] = item,
                None => {
                    placed.insert(item.key(), items.len());
                    items.push(item);
                }
            }
        })?;
    }
    Ok((items, skipped))
}

/// The target folder of a source folder, in this order: `--map`;
/// `--to-folder`; the target's folder of the same special use (marked, or
/// known by its name); the source's name translated (a folder below Gmail's
/// `[Gmail]` loses that level; a special-use one there, with no folder of
/// that use on the target, gets the plain name of its use).
fn target_of(
    mb: &MailboxRow,
    segs: &[String],
    special_use: Option<&str>,
    all_mail: bool,
    rules: &FolderRules,
    shape: &TargetShape,
) -> (String, bool) {
    if let Some(to) = rules.mapped(&mb.name) {
        return target_name(to, shape);
    }
    let segs: Vec<String> = match &rules.to_folder {
        Some(ToFolder::Under(head)) => head.iter().cloned().chain(segs.iter().cloned()).collect(),
        Some(ToFolder::Into(whole)) => return target_name(whole, shape),
        None => segs.to_vec(),
    };
    if rules.to_folder.is_some() {
        return target_name(&segs, shape);
    }
    if all_mail {
        if let Some(raw) = shape
            .folder_for("\\All")
            .or_else(|| shape.folder_for("\\Archive"))
        {
            return (raw.clone(), false);
        }
        return target_name(&["Archive".to_string()], shape);
    }
    if let Some(u) = special_use {
        if let Some(raw) = shape.folder_for(u) {
            return (raw.clone(), false);
        }
    }
    let under_gmail = segs.len() > 1 && folders::is_gmail_parent(&segs[0]);
    if under_gmail {
        if let Some(name) = special_use.and_then(folders::default_name) {
            return target_name(&[name.to_string()], shape);
        }
        return target_name(&segs[1..], shape);
    }
    target_name(&segs, shape)
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

    fn rules(to: ToFolder) -> FolderRules {
        FolderRules {
            to_folder: Some(to),
            ..FolderRules::default()
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

    /// [`build`] on messages held in memory, each folder's items filled in
    /// as a restore fills them when the folder's turn comes.
    fn planned(
        mbs: &[(MailboxRow, Vec<StoredMessage>)],
        all: &[(String, Option<String>)],
        selection: &Selection,
        rules: &FolderRules,
        shape: &TargetShape,
    ) -> Built {
        let rows: Vec<MailboxRow> = mbs.iter().map(|(m, _)| m.clone()).collect();
        let mut messages: HashMap<i64, Vec<StoredMessage>> =
            mbs.iter().map(|(m, v)| (m.id, v.clone())).collect();
        let mut built = build(&rows, all, selection, rules, shape, &mut messages).unwrap();
        for p in &mut built.folders {
            assert!(p.items.is_empty(), "build holds no items");
            p.items = items(p, selection, &mut messages).unwrap();
            assert_eq!(p.count, p.items.len() as u64, "counted as filled");
            assert_eq!(p.size, p.items.iter().map(|i| i.size).sum::<u64>());
        }
        built
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
        let plans = planned(
            &mbs,
            &all,
            &Selection::default(),
            &FolderRules::default(),
            &target,
        )
        .folders;
        assert_eq!(plans.len(), 2);
        assert_eq!(plans[0].target_raw, "INBOX");
        // a twice in the newer generation, b once in the older.
        assert_eq!(plans[0].items.len(), 3);
        assert_eq!(plans[0].items[0].flags.to_text(), "\\Seen");
        assert_eq!(
            (plans[0].items[2].blob, plans[0].items[2].copy),
            (BlobId::of(b"a"), 1)
        );
        assert_eq!(plans[1].target_raw, "INBOX.Work.2019");
        assert_eq!(plans[1].items.len(), 1);

        let sel = Selection {
            since: NaiveDate::from_ymd_opt(2019, 1, 1),
            ..Default::default()
        };
        let plans = planned(&mbs, &all, &sel, &FolderRules::default(), &target).folders;
        assert_eq!(plans[0].items.len(), 2, "a twice; b is from 2018-12-31");
        let sel = Selection {
            archived_only: true,
            ..Default::default()
        };
        let plans = planned(&mbs, &all, &sel, &FolderRules::default(), &target).folders;
        assert_eq!(plans[0].items.len(), 1);
        assert_eq!(plans[0].items[0].blob, BlobId::of(b"b"));

        let sel = Selection {
            folders: vec!["Work/*".into()],
            ..Default::default()
        };
        let into = ToFolder::parse("Restored/").unwrap();
        let plans = planned(&mbs, &all, &sel, &rules(into), &shape("", '/')).folders;
        assert_eq!(plans.len(), 1);
        assert_eq!(plans[0].target_raw, "Restored/Work/2019");
        assert_eq!(plans[0].sources, vec!["Work/2019".to_string()]);

        // Merged into one folder: a message as often as the folder that held
        // it most often (a twice in INBOX, once in Work/2019), b once.
        let one = ToFolder::parse("All").unwrap();
        let plans = planned(&mbs, &all, &Selection::default(), &rules(one), &target).folders;
        assert_eq!(plans.len(), 1);
        assert_eq!(plans[0].target_raw, "INBOX.All");
        assert_eq!(plans[0].items.len(), 3);
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
        let plans = planned(
            &mbs,
            &all,
            &Selection::default(),
            &FolderRules::default(),
            &target,
        )
        .folders;
        let names: Vec<&str> = plans.iter().map(|p| p.target_raw.as_str()).collect();
        // Gmail's `[Gmail]` level is Gmail's own: its other folders lose it.
        assert_eq!(names, vec!["Lists", "Sent Messages"]);
        // `--to-folder` puts everything where it says, special use or not.
        let into = ToFolder::parse("Old/").unwrap();
        let plans = planned(&mbs, &all, &Selection::default(), &rules(into), &target).folders;
        assert!(plans.iter().all(|p| p.target_raw.starts_with("Old/")));
    }
    fn folder(raw: &str, special_use: Option<&str>) -> crate::model::Folder {
        crate::model::Folder {
            raw: raw.into(),
            display: crate::imap::decode_mailbox_name(raw),
            delimiter: Some('/'),
            special_use: special_use.map(String::from),
            selectable: true,
        }
    }

    fn all_of(mbs: &[(MailboxRow, Vec<StoredMessage>)]) -> Vec<(String, Option<String>)> {
        mbs.iter()
            .map(|(m, _)| (m.name.clone(), m.delimiter.clone()))
            .collect()
    }

    #[test]
    fn gmail_all_mail_brings_only_what_no_label_holds_and_views_are_left_out() {
        let t = 1_600_000_000;
        let mut all_mail = row(1, "[Gmail]/All Mail", 1);
        all_mail.special_use = Some("\\All".into());
        let mut starred = row(2, "[Gmail]/Starred", 1);
        starred.special_use = Some("\\Flagged".into());
        let mbs = vec![
            (
                all_mail,
                vec![
                    msg(1, b"in inbox", t, "", false),
                    msg(2, b"in work", t, "", false),
                    msg(3, b"archived", t, "", false),
                ],
            ),
            (starred, vec![msg(1, b"in work", t, "\\Flagged", false)]),
            (row(3, "INBOX", 1), vec![msg(1, b"in inbox", t, "", false)]),
            (
                row(4, "Work", 1),
                vec![msg(1, b"in work", t, "\\Flagged", false)],
            ),
        ];
        // A target with neither \All nor \Archive: All Mail's own messages go
        // to a new `Archive`.
        let plain = shape("", '/');
        let built = planned(
            &mbs,
            &all_of(&mbs),
            &Selection::default(),
            &FolderRules::default(),
            &plain,
        );
        let got: Vec<(&str, usize, u64)> = built
            .folders
            .iter()
            .map(|p| (p.target_raw.as_str(), p.items.len(), p.skipped))
            .collect();
        assert_eq!(
            got,
            vec![("Archive", 1, 2), ("INBOX", 1, 0), ("Work", 1, 0)]
        );
        assert_eq!(built.folders[0].items[0].blob, BlobId::of(b"archived"));
        assert_eq!(built.skipped.len(), 1);
        assert_eq!(built.skipped[0].name, "[Gmail]/Starred");
        assert_eq!(built.skipped[0].messages, 1);

        // A target with its own All Mail (Gmail): there.
        let gmail = shape("", '/').with_special_use(&[
            folder("[Gmail]/All Mail", Some("\\All")),
            folder("[Gmail]/Sent Mail", Some("\\Sent")),
        ]);
        let built = planned(
            &mbs,
            &all_of(&mbs),
            &Selection::default(),
            &FolderRules::default(),
            &gmail,
        );
        let all_mail = built
            .folders
            .iter()
            .find(|p| p.target_raw == "[Gmail]/All Mail")
            .unwrap();
        assert_eq!(all_mail.items.len(), 1);
        assert_eq!(built.folders.len(), 3);

        // `--map` takes a folder whole; `--exclude` leaves one out.
        let rules = FolderRules {
            maps: vec![FolderRules::parse_map("[Gmail]/Starred=Flagged mail").unwrap()],
            exclude: vec!["Work".into()],
            ..FolderRules::default()
        };
        let built = planned(&mbs, &all_of(&mbs), &Selection::default(), &rules, &plain);
        let names: Vec<&str> = built
            .folders
            .iter()
            .map(|p| p.target_raw.as_str())
            .collect();
        assert_eq!(names, vec!["Archive", "Flagged mail", "INBOX"]);
        // Work is excluded, but its message is in the mapped Starred folder.
        assert_eq!(built.folders[0].items.len(), 1);
        assert_eq!(built.folders[1].items.len(), 1);
        assert_eq!(built.skipped[0].name, "Work");
    }

    #[test]
    fn folders_known_by_name_meet_on_both_sides() {
        let t = 1_600_000_000;
        // An old server marks nothing: `Sent Items` is known by its name …
        let mbs = vec![
            (
                row(1, "Sent Items", 1),
                vec![msg(1, b"s", t, "\\Seen", false)],
            ),
            (
                row(2, "送信済み", 1),
                vec![msg(1, b"j", t, "\\Seen", false)],
            ),
            (row(3, "Projects/Sent", 1), vec![msg(1, b"p", t, "", false)]),
        ];
        // … and so is the target's `Sent Messages`, which it does not mark either.
        let target = shape("", '/').with_special_use(&[
            folder("Sent Messages", None),
            folder("Deleted Messages", None),
            folder("Projects", None),
        ]);
        let built = planned(
            &mbs,
            &all_of(&mbs),
            &Selection::default(),
            &FolderRules::default(),
            &target,
        );
        let got: Vec<(&str, usize)> = built
            .folders
            .iter()
            .map(|p| (p.target_raw.as_str(), p.items.len()))
            .collect();
        assert_eq!(got, vec![("Projects/Sent", 1), ("Sent Messages", 2)]);
        assert_eq!(built.folders[1].special_use.as_deref(), Some("\\Sent"));
    }

    #[test]
    fn current_only_takes_what_the_source_holds_now() {
        let t = 1_600_000_000;
        let mut old = row(1, "INBOX", 1);
        old.is_current = false;
        let mut gone = msg(2, b"deleted", t, "", false);
        gone.gone_at = Some(5);
        let mut current = row(2, "INBOX", 2);
        current.server_count = Some(2);
        let mbs = vec![
            (old, vec![msg(1, b"renumbered away", t, "", false)]),
            (
                current,
                vec![
                    msg(1, b"kept", t, "", false),
                    gone,
                    msg(3, b"archived", t, "", true),
                ],
            ),
        ];
        let sel = Selection {
            current_only: true,
            ..Selection::default()
        };
        let built = planned(
            &mbs,
            &all_of(&mbs),
            &sel,
            &FolderRules::default(),
            &shape("", '/'),
        );
        assert_eq!(built.folders.len(), 1);
        assert_eq!(built.folders[0].items.len(), 1);
        assert_eq!(built.folders[0].items[0].blob, BlobId::of(b"kept"));
        assert_eq!(built.folders[0].source_count, Some(2));
    }
}
