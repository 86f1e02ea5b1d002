//! Which messages an archive run takes: parsing `--older-than`, `--before`
//! and `--until-below`, which folders are eligible, and the oldest-first
//! choice against a quota. Pure functions, no I/O.

use std::collections::BTreeMap;

use chrono::TimeZone;

use crate::model::{Folder, InternalDate, Uid};

/// An age given as `2y`, `18m`, `6w` or `90d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Age {
    Months(u32),
    Days(u32),
}

impl Age {
    pub fn parse(s: &str) -> Result<Age, String> {
        let s = s.trim();
        let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
        let n: u32 = num
            .parse()
            .map_err(|_| format!("`{s}` is not an age like `2y`, `18m`, `6w` or `90d`"))?;
        match unit.to_ascii_lowercase().as_str() {
            "y" => Ok(Age::Months(n.saturating_mul(12))),
            "m" => Ok(Age::Months(n)),
            "w" => Ok(Age::Days(n.saturating_mul(7))),
            "d" => Ok(Age::Days(n)),
            _ => Err(format!(
                "`{s}` is not an age like `2y`, `18m`, `6w` or `90d` (y = years, m = months, w = weeks, d = days)"
            )),
        }
    }

    /// The instant this long before `now` (unix seconds), by the calendar.
    pub fn before(self, now: i64) -> i64 {
        let now = chrono::DateTime::from_timestamp(now, 0).unwrap_or_default();
        let t = match self {
            Age::Months(m) => now.checked_sub_months(chrono::Months::new(m)),
            Age::Days(d) => now.checked_sub_days(chrono::Days::new(d as u64)),
        };
        t.map(|t| t.timestamp()).unwrap_or(i64::MIN)
    }
}

/// `YYYY-MM-DD` → midnight at its start, local time, as unix seconds.
pub fn parse_date(s: &str) -> Result<i64, String> {
    let d = chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| format!("`{s}` is not a date like `2022-01-31`"))?;
    let midnight = d.and_hms_opt(0, 0, 0).expect("midnight exists");
    Ok(chrono::Local
        .from_local_datetime(&midnight)
        .earliest()
        .map(|t| t.timestamp())
        // A zone that skips that midnight: take it in UTC.
        .unwrap_or_else(|| midnight.and_utc().timestamp()))
}

/// `70%` or `70` → 70.0; must be above 0 and below 100.
pub fn parse_percent(s: &str) -> Result<f64, String> {
    let t = s.trim().trim_end_matches('%').trim();
    match t.parse::<f64>() {
        Ok(p) if p > 0.0 && p < 100.0 => Ok(p),
        _ => Err(format!(
            "`{s}` is not a percentage between 0 and 100 like `70%`"
        )),
    }
}

/// A drafts folder: special-use `\Drafts`, or a folder whose own name (the
/// last part of its path) is `Drafts`.
pub fn is_drafts(f: &Folder) -> bool {
    if f.special_use
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("\\Drafts"))
    {
        return true;
    }
    let leaf = match f.delimiter {
        Some(d) => f.display.rsplit(d).next().unwrap_or(&f.display),
        None => &f.display,
    };
    leaf.eq_ignore_ascii_case("Drafts")
}

/// One message that may be archived, in one of the run's folders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// Index of its folder in the run's folder list.
    pub folder: usize,
    pub uid: Uid,
    pub date: InternalDate,
    pub size: u64,
}

/// A STORAGE quota root as projected while choosing: bytes used and limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Storage {
    pub used: u64,
    pub limit: u64,
}

impl Storage {
    fn above(&self, percent: f64) -> bool {
        self.limit > 0 && self.used as f64 >= self.limit as f64 * percent / 100.0
    }
}

/// Oldest first across all folders, takes messages while a quota root they
/// count against is at or above `percent` of its limit, and stops once
/// every root of `folder_roots` is below. Returns the indices of the taken
/// items and the projected usage per root afterwards. Items in a folder that
/// counts against no STORAGE root are never taken (removing them frees
/// nothing that the target measures).
pub fn until_below(
    items: &[Item],
    folder_roots: &[Vec<String>],
    roots: &BTreeMap<String, Storage>,
    percent: f64,
) -> (Vec<usize>, BTreeMap<String, Storage>) {
    let mut projected = roots.clone();
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| (items[i].date.unix, items[i].folder, items[i].uid));
    let mut taken = Vec::new();
    for i in order {
        let any_above = projected.values().any(|s| s.above(percent));
        if !any_above {
            break;
        }
        let item = &items[i];
        let Some(its_roots) = folder_roots.get(item.folder) else {
            continue;
        };
        let helps = its_roots
            .iter()
            .any(|r| projected.get(r).is_some_and(|s| s.above(percent)));
        if !helps {
            continue;
        }
        for r in its_roots {
            if let Some(s) = projected.get_mut(r) {
                s.used = s.used.saturating_sub(item.size);
            }
        }
        taken.push(i);
    }
    taken.sort_unstable();
    (taken, projected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(Age::parse("2y"), Ok(Age::Months(24)));
        assert_eq!(Age::parse("18m"), Ok(Age::Months(18)));
        assert_eq!(Age::parse("90d"), Ok(Age::Days(90)));
        assert_eq!(Age::parse("6W"), Ok(Age::Days(42)));
        assert!(Age::parse("2").is_err());
        assert!(Age::parse("y").is_err());
        assert!(Age::parse("2 years").is_err());
        // 2024-03-31 minus one month is the end of February, by the calendar.
        let now = chrono::Utc
            .with_ymd_and_hms(2024, 3, 31, 12, 0, 0)
            .unwrap()
            .timestamp();
        let feb = chrono::Utc
            .with_ymd_and_hms(2024, 2, 29, 12, 0, 0)
            .unwrap()
            .timestamp();
        assert_eq!(Age::Months(1).before(now), feb);
        assert_eq!(Age::Days(1).before(now), now - 86_400);
        assert_eq!(
            Age::Months(24).before(now),
            chrono::Utc
                .with_ymd_and_hms(2022, 3, 31, 12, 0, 0)
                .unwrap()
                .timestamp()
        );
    }

    #[test]
    fn dates_and_percentages() {
        let t = parse_date("2022-01-31").unwrap();
        // Local midnight is within a day of UTC midnight.
        let utc = chrono::Utc
            .with_ymd_and_hms(2022, 1, 31, 0, 0, 0)
            .unwrap()
            .timestamp();
        assert!((t - utc).abs() <= 14 * 3600);
        assert!(parse_date("31.01.2022").is_err());
        assert!(parse_date("2022-02-30").is_err());
        assert_eq!(parse_percent("70%"), Ok(70.0));
        assert_eq!(parse_percent(" 55.5 "), Ok(55.5));
        assert!(parse_percent("0").is_err());
        assert!(parse_percent("100%").is_err());
        assert!(parse_percent("lots").is_err());
    }

    fn folder(display: &str, special: Option<&str>) -> Folder {
        Folder {
            raw: display.into(),
            display: display.into(),
            delimiter: Some('.'),
            special_use: special.map(String::from),
            selectable: true,
        }
    }

    #[test]
    fn drafts_by_flag_or_name() {
        assert!(is_drafts(&folder("Entwürfe", Some("\\Drafts"))));
        assert!(is_drafts(&folder("Drafts", None)));
        assert!(is_drafts(&folder("INBOX.drafts", None)));
        assert!(!is_drafts(&folder("Drafts old", None)));
        assert!(!is_drafts(&folder("Sent", Some("\\Sent"))));
    }

    fn item(folder: usize, uid: Uid, date: i64, size: u64) -> Item {
        Item {
            folder,
            uid,
            date: InternalDate {
                unix: date,
                offset_min: 0,
            },
            size,
        }
    }

    #[test]
    fn until_below_takes_oldest_first_across_folders_and_stops() {
        let items = vec![
            item(0, 1, 300, 100),
            item(0, 2, 100, 100),
            item(1, 7, 200, 100),
            item(1, 8, 400, 100),
        ];
        let folder_roots = vec![vec!["q".to_string()], vec!["q".to_string()]];
        let roots: BTreeMap<String, Storage> = [(
            "q".to_string(),
            Storage {
                used: 950,
                limit: 1000,
            },
        )]
        .into();
        // 950 → below 70% (700) needs 3 messages of 100: the three oldest.
        let (taken, after) = until_below(&items, &folder_roots, &roots, 70.0);
        assert_eq!(taken, vec![0, 1, 2]);
        assert_eq!(after["q"].used, 650);
        // Already below: nothing.
        let (taken, _) = until_below(&items, &folder_roots, &roots, 96.0);
        assert!(taken.is_empty());
        // Exactly at the target is not below it.
        let exact: BTreeMap<String, Storage> = [(
            "q".to_string(),
            Storage {
                used: 800,
                limit: 1000,
            },
        )]
        .into();
        let (taken, _) = until_below(&items, &folder_roots, &exact, 70.0);
        assert_eq!(taken.len(), 2);
    }

    #[test]
    fn until_below_skips_folders_that_free_nothing_measured() {
        let items = vec![item(0, 1, 100, 100), item(1, 2, 200, 100)];
        // Folder 0 counts against no STORAGE root.
        let folder_roots = vec![vec![], vec!["q".to_string()]];
        let roots: BTreeMap<String, Storage> = [(
            "q".to_string(),
            Storage {
                used: 1000,
                limit: 1000,
            },
        )]
        .into();
        let (taken, _) = until_below(&items, &folder_roots, &roots, 95.0);
        assert_eq!(taken, vec![1]);
    }
}
