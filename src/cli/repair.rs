//! `mailkeep repair`: rebuild the index from the packs.

use super::out::{errln, outln};
use crate::ops::{FailureKind, OpError};
use crate::store::repair::OldIndex;

use super::progress::{bytes_bar, Bars};
use super::verify::describe_place;
use super::{count, Globals};

pub fn run(g: &Globals) -> Result<i32, OpError> {
    let bars = Bars::new(g.progress);
    let bar = bars
        .counter(0, "")
        .map(|b| bytes_bar(b, "reading the packs".into()));
    let r = crate::ops::verify::repair(&g.store_path, &mut |done, total| {
        if let Some(b) = &bar {
            b.set_length(total);
            b.set_position(done);
        }
    })?;
    bars.clear();
    outln!(
        "rebuilt the index from {}: {}, {}, {} unique",
        count(r.packs as usize, "pack", "packs"),
        count(r.records as usize, "record", "records"),
        count(r.messages as usize, "message", "messages"),
        r.unique_messages
    );
    if r.skipped_bytes > 0 || r.truncated_bytes > 0 {
        errln!(
            "note: {} damaged bytes skipped and {} bytes of a torn write cut off; \
             a copy of each is kept beside its pack:",
            r.skipped_bytes,
            r.truncated_bytes
        );
        for q in &r.quarantined {
            errln!("  {}", q.display());
        }
    }
    for no in &r.headers_rewritten {
        errln!("note: the header of pack {no:06} was damaged and was written again");
    }
    for id in &r.dictionaries_rebuilt {
        errln!(
            "note: every copy of dictionary {id} was damaged; it was trained again from the \
             messages it was made from, and checked against messages compressed with it"
        );
    }
    if r.healed > 0 {
        errln!(
            "note: {} written again from the old index (what damaged records held)",
            count(r.healed as usize, "record", "records")
        );
    }
    match &r.old_index {
        OldIndex::Damaged { kept, why } => errln!(
            "note: the old index was damaged ({why}); it is kept as `{}`, and can be removed",
            kept.display()
        ),
        OldIndex::Missing | OldIndex::Sound => {}
    }
    for c in &r.carried {
        if let Err(e) = &c.result {
            errln!(
                "warning: the {} could not be carried over from the old index: {e}",
                c.what
            );
        }
    }
    if !r.to_fetch_again.is_empty() {
        errln!(
            "note: {} whose bytes were damaged {} still on the server; the next backup \
             fetches {} again:",
            count(r.to_fetch_again.len(), "message", "messages"),
            if r.to_fetch_again.len() == 1 {
                "is"
            } else {
                "are"
            },
            if r.to_fetch_again.len() == 1 {
                "it"
            } else {
                "them"
            }
        );
        for p in &r.to_fetch_again {
            errln!("  {}", describe_place(p, None));
        }
        let mut accounts: Vec<&str> = r
            .to_fetch_again
            .iter()
            .map(|p| p.account.as_str())
            .collect();
        accounts.sort_unstable();
        accounts.dedup();
        errln!("hint: run `mailkeep backup {}`", accounts.join(" "));
    }
    if !r.lost.is_empty() {
        errln!(
            "error: {} {} lost: {} bytes were damaged and the server no longer has {}:",
            count(r.lost.len(), "message", "messages"),
            if r.lost.len() == 1 { "is" } else { "are" },
            if r.lost.len() == 1 { "its" } else { "their" },
            if r.lost.len() == 1 { "it" } else { "them" },
        );
        for p in &r.lost {
            errln!("  {}", describe_place(p, None));
        }
        errln!(
            "hint: if you have another copy (an export, an mbox), `mailkeep import` of it puts \
             the bytes back"
        );
        return Ok(FailureKind::Partial.exit_code());
    }
    Ok(0)
}
