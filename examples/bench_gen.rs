//! Writes a generated mailbox straight into a Maildir, for `benches/compare.sh`.
//!
//! Deterministic: the same `--seed` and counts give the same bytes. Each
//! message is drawn from its own random stream (seed × index), so the work
//! is split over threads and `--first` can add more messages later (the 1 %
//! of new mail between two backups) into the same 100 folders.
//!
//!     bench_gen --maildir DIR [--messages N] [--first I] [--folders 100] [--seed S]
//!               [--manifest FILE] [--threads T] [--text-only]
//!     bench_gen --maildir DIR --big-mib 200
//!
//! Files are written CRLF (so the bytes the server serves are the bytes on
//! disk), named `EPOCH.M<index>P<seed>.mkbench,S=<size>:2,<flags>`, with
//! mtime = INTERNALDATE. A summary goes to stdout as `key=value` lines; the
//! manifest (one line per folder: wire name, messages, bytes) to `--manifest`.
//! `--text-only` leaves every attachment out (the same messages otherwise),
//! for runs whose size is bounded by the disk rather than by the count.
//! What the mail looks like, and why, is in docs/benchmarks.md.

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// The mailbox owner.
const OWNER_NAME: &str = "Bench User";
const OWNER_ADDR: &str = "bench@example.com";
/// INTERNALDATEs fall in 2015-01-01 … 2025-01-01.
const DATE_FROM: i64 = 1_420_070_400;
const DATE_SPAN: i64 = 315_532_800;

// ---------------------------------------------------------------- randomness

/// wyrand: small, fast, good enough for test data.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Rng {
        let mut r = Rng(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        r.next();
        r.next();
        r
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        let t = (self.0 as u128).wrapping_mul((self.0 ^ 0xe703_7ed1_a0b4_28db) as u128);
        ((t >> 64) ^ t) as u64
    }
    /// 0 ≤ x < n.
    fn below(&mut self, n: u64) -> u64 {
        ((self.next() as u128 * n as u128) >> 64) as u64
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
    fn word_of(&mut self, xs: &[&'static str]) -> &'static str {
        xs[self.below(xs.len() as u64) as usize]
    }
    /// Log-uniform in [lo, hi].
    fn log_uniform(&mut self, lo: f64, hi: f64) -> f64 {
        (lo.ln() + self.unit() * (hi.ln() - lo.ln())).exp()
    }
    /// Log-normal with this median and sigma, clamped to [lo, hi].
    fn log_normal(&mut self, median: f64, sigma: f64, lo: f64, hi: f64) -> f64 {
        // Box–Muller.
        let u1 = self.unit().max(1e-12);
        let u2 = self.unit();
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        (median * (sigma * z).exp()).clamp(lo, hi)
    }
    /// Bounded Pareto on [lo, hi] with shape alpha.
    fn pareto(&mut self, lo: f64, hi: f64, alpha: f64) -> f64 {
        let u = self.unit();
        let la = lo.powf(alpha);
        let ha = hi.powf(alpha);
        (-(u * ha - u * la - ha) / (ha * la)).powf(-1.0 / alpha)
    }
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
    fn hex(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n);
        while s.len() < n {
            let _ = write!(s, "{:016x}", self.next());
        }
        s.truncate(n);
        s
    }
    fn b64(&mut self, bytes: usize) -> String {
        let mut b = vec![0u8; bytes];
        self.fill(&mut b);
        B64.encode(b)
    }
    fn alnum(&mut self, n: usize) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..n).map(|_| *self.pick(A) as char).collect()
    }
}

// ---------------------------------------------------------------- vocabulary

/// The most frequent English words, in rank order; the Zipf vocabulary
/// starts with them and goes on with made-up words (see [`Vocab`]).
const COMMON: &str = "the of and to a in is it you that he was for on are with as I his they \
be at one have this from or had by hot word but what some we can out other were all there when \
up use your how said an each she which do their time if will way about many then them write \
would like so these her long make thing see him two has look more day could go come did number \
sound no most people my over know water than call first who may down side been now find any \
new work part take get place made live where after back little only round man year came show \
every good me give our under name very through just form sentence great think say help low line \
differ turn cause much mean before move right boy old too same tell does set three want air well \
also play small end put home read hand port large spell add even land here must big high such \
follow act why ask men change went light kind off need house picture try us again animal point \
mother world near build self earth father head stand own page should country found answer school \
grow study still learn plant cover food sun four between state keep eye never last let thought \
city tree cross farm hard start might story saw far sea draw left late run while press close \
night real life few north open seem together next white children begin got walk example ease \
paper group always music those both mark often letter until mile river car feet care second book \
carry took science eat room friend began idea fish mountain stop once base hear horse cut sure \
watch color face wood main enough plain girl usual young ready above ever red list though feel \
talk bird soon body dog family direct pose leave song measure door product black short numeral \
class wind question happen complete ship area half rock order fire south problem piece told knew \
pass since top whole king space heard best hour better true during hundred five remember step \
early hold west ground interest reach fast verb sing listen six table travel less morning ten \
simple several vowel toward war lay against pattern slow center love person money serve appear \
road map rain rule govern pull cold notice voice unit power town fine certain fly fall lead cry \
dark machine note wait plan figure star box noun field rest correct able pound done beauty drive \
stood contain front teach week final gave green quick develop ocean warm free minute strong \
special mind behind clear tail produce fact street inch multiply nothing course stay wheel full \
force blue object decide surface deep moon island foot system busy test record boat common gold \
possible plane stead dry wonder laugh thousand ago ran check game shape equate miss brought heat \
snow tire bring yes distant fill east paint language among meeting budget report quarterly \
invoice contract schedule review project deadline client proposal estimate reconcile \
reconciliation attached please thanks regards draft version release server backup update \
migration customer shipment payment account office team agenda minutes summary forecast";

/// Syllables for the made-up words past the common ones.
const SYLLABLES: &[&str] = &[
    "ka", "ter", "mo", "ri", "lan", "vo", "sen", "ta", "pre", "dis", "con", "ex", "pro", "ly",
    "tion", "ment", "ing", "al", "er", "ous", "ive", "or", "ate", "ble", "ic", "na", "po", "qu",
    "st", "tra", "gen", "mar", "bel", "cor", "fin", "gra", "ho", "in", "jus", "lo", "nu", "os",
    "pel", "ran", "sul", "tem", "ur", "ven", "wes", "zo",
];

/// Zipf-distributed words: rank r is drawn with weight 1/r^1.07.
struct Vocab {
    words: Vec<String>,
    cdf: Vec<f64>,
}

impl Vocab {
    fn new() -> Vocab {
        let mut words: Vec<String> = Vec::new();
        for w in COMMON.split_whitespace() {
            if !words.iter().any(|x| x == w) {
                words.push(w.to_string());
            }
        }
        let mut r = Rng::new(7, 7);
        while words.len() < 12_000 {
            let n = r.range(2, 4);
            let w: String = (0..n).map(|_| *r.pick(SYLLABLES)).collect();
            if !words.contains(&w) || words.len() > 11_000 {
                words.push(w);
            }
        }
        let mut cdf = Vec::with_capacity(words.len());
        let mut acc = 0.0;
        for rank in 1..=words.len() {
            acc += 1.0 / (rank as f64).powf(1.07);
            cdf.push(acc);
        }
        Vocab { words, cdf }
    }
    fn word(&self, r: &mut Rng) -> &str {
        let x = r.unit() * self.cdf[self.cdf.len() - 1];
        let i = self.cdf.partition_point(|&c| c < x);
        &self.words[i.min(self.words.len() - 1)]
    }
    /// A sentence of 5–22 words.
    fn sentence(&self, r: &mut Rng, out: &mut String) {
        let n = r.range(5, 22);
        for i in 0..n {
            let w = self.word(r);
            if i == 0 {
                let mut c = w.chars();
                if let Some(f) = c.next() {
                    out.extend(f.to_uppercase());
                    out.push_str(c.as_str());
                }
            } else {
                out.push(' ');
                out.push_str(w);
                if r.chance(0.06) {
                    out.push(',');
                }
            }
        }
        out.push(if r.chance(0.1) { '?' } else { '.' });
    }
    /// A paragraph wrapped at 72 columns, lines ending CRLF.
    fn paragraph(&self, r: &mut Rng, out: &mut String, prefix: &str) {
        let mut text = String::new();
        for i in 0..r.range(1, 6) {
            if i > 0 {
                text.push(' ');
            }
            self.sentence(r, &mut text);
        }
        wrap(&text, 72, prefix, out);
    }
}

fn wrap(text: &str, width: usize, prefix: &str, out: &mut String) {
    let mut col = 0;
    out.push_str(prefix);
    for w in text.split(' ') {
        let len = w.chars().count();
        if col > 0 && col + 1 + len > width {
            out.push_str("\r\n");
            out.push_str(prefix);
            col = 0;
        } else if col > 0 {
            out.push(' ');
            col += 1;
        }
        out.push_str(w);
        col += len;
    }
    out.push_str("\r\n");
}

/// Japanese words and phrases the Japanese mail is built from.
const JA_NOUNS: &[&str] = &[
    "会議",
    "資料",
    "見積",
    "請求書",
    "契約",
    "納期",
    "打ち合わせ",
    "予定",
    "報告",
    "確認",
    "担当者",
    "お客様",
    "案件",
    "進捗",
    "議事録",
    "出張",
    "経費",
    "申請",
    "承認",
    "発注",
    "在庫",
    "出荷",
    "品質",
    "改善",
    "提案",
    "予算",
    "来週",
    "今月",
    "本日",
    "明日",
    "東京",
    "大阪",
    "名古屋",
    "福岡",
    "新製品",
    "説明会",
    "日程",
    "変更",
    "添付ファイル",
    "修正版",
    "サーバー",
    "バックアップ",
    "移行",
    "障害",
    "対応",
    "メール",
    "システム",
    "更新",
    "検討",
    "結果",
];
const JA_VERBS: &[&str] = &[
    "をお送りします",
    "について確認させてください",
    "を添付いたします",
    "の件でご連絡しました",
    "をご確認ください",
    "を修正しました",
    "について相談があります",
    "を共有します",
    "が決まりました",
    "を延期します",
    "の準備ができました",
    "をお願いできますか",
];
const JA_OPEN: &[&str] = &[
    "いつもお世話になっております。",
    "お疲れ様です。",
    "ご無沙汰しております。",
    "先日はありがとうございました。",
];
const JA_CLOSE: &[&str] = &[
    "よろしくお願いいたします。",
    "何卒よろしくお願い申し上げます。",
    "ご検討のほどよろしくお願いします。",
    "取り急ぎご連絡まで。",
];

fn ja_sentence(r: &mut Rng) -> String {
    let mut s = String::new();
    s.push_str(r.word_of(JA_NOUNS));
    if r.chance(0.5) {
        s.push('の');
        s.push_str(r.word_of(JA_NOUNS));
    }
    s.push_str(r.word_of(JA_VERBS));
    s.push('。');
    s
}

// ---------------------------------------------------------------- people

const FIRST: &[&str] = &[
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Christopher",
    "Lisa",
    "Daniel",
    "Nancy",
    "Matthew",
    "Betty",
    "Anthony",
    "Sandra",
    "Mark",
    "Ashley",
    "Paul",
    "Emily",
    "Steven",
    "Kimberly",
    "Andrew",
    "Donna",
    "Lukas",
    "Sofia",
    "Mateo",
    "Chloé",
    "Jörg",
    "Ingrid",
    "Pierre",
    "Amélie",
    "Giulia",
    "Marco",
];
const LAST: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Wilson",
    "Anderson",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Thompson",
    "White",
    "Harris",
    "Clark",
    "Lewis",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Müller",
    "Schmidt",
    "Dubois",
    "Rossi",
    "Novak",
    "Kowalski",
    "Jensen",
    "Larsen",
    "Silva",
];
/// Japanese correspondents: (family, given, romanised family, romanised given).
const JA_PEOPLE: &[(&str, &str, &str, &str)] = &[
    ("田中", "太郎", "tanaka", "taro"),
    ("鈴木", "花子", "suzuki", "hanako"),
    ("佐藤", "健", "sato", "ken"),
    ("高橋", "美咲", "takahashi", "misaki"),
    ("伊藤", "大輔", "ito", "daisuke"),
    ("渡辺", "由美", "watanabe", "yumi"),
    ("山本", "翔", "yamamoto", "sho"),
    ("中村", "愛", "nakamura", "ai"),
    ("小林", "誠", "kobayashi", "makoto"),
    ("加藤", "優子", "kato", "yuko"),
    ("田中", "一郎", "tanaka", "ichiro"),
    ("吉田", "直樹", "yoshida", "naoki"),
];
const DOMAINS: &[&str] = &[
    "example.org",
    "example.net",
    "acme-corp.example",
    "globex.example",
    "initech.example",
    "umbrella.example",
    "hooli.example",
    "stark-industries.example",
    "wayne-ent.example",
    "cyberdyne.example",
    "tyrell.example",
    "soylent.example",
    "massive-dynamic.example",
    "gmail.example",
    "outlook.example",
    "yahoo.example",
    "proton.example",
    "fastmail.example",
    "uni-heidelberg.example",
    "mit.example",
    "cern.example",
    "lists.debian.example",
    "kernel.example",
    "rust-lang.example",
    "python.example",
    "apache.example",
];
const JA_DOMAINS: &[&str] = &[
    "example.jp",
    "tanaka-shoji.example.jp",
    "yamato-sangyo.example.jp",
    "docomo.example.jp",
    "softbank.example.jp",
];
const TITLES: &[&str] = &[
    "Senior Engineer",
    "Project Manager",
    "Sales Director",
    "Account Executive",
    "CTO",
    "Operations Lead",
    "Research Scientist",
    "Legal Counsel",
    "Head of Finance",
    "Consultant",
];

struct Person {
    display: String,
    /// The From:/To: form, RFC 2047-encoded where needed.
    header: String,
    addr: String,
    domain: String,
    signature: String,
    japanese: bool,
}

fn people(seed: u64) -> Vec<Person> {
    let mut r = Rng::new(seed, 0xC0FFEE);
    let mut out = Vec::new();
    for i in 0..360 {
        if i % 10 == 0 {
            let (fam, giv, rf, rg) = JA_PEOPLE[(i / 10) % JA_PEOPLE.len()];
            let domain = r.pick(JA_DOMAINS).to_string();
            let addr = if i / 10 < JA_PEOPLE.len() {
                format!("{rf}.{rg}@{domain}")
            } else {
                format!("{rf}{}@{domain}", i)
            };
            let display = format!("{fam} {giv}");
            let header = format!("=?UTF-8?B?{}?= <{addr}>", B64.encode(display.as_bytes()));
            let signature = format!(
                "-- \r\n{display}\r\n{}株式会社 営業部\r\nTel: 03-{:04}-{:04}\r\n{addr}\r\n",
                r.pick(&["田中商事", "大和産業", "日本電算", "東洋物産"]),
                r.below(10_000),
                r.below(10_000)
            );
            out.push(Person {
                display,
                header,
                addr,
                domain,
                signature,
                japanese: true,
            });
        } else {
            let first = *r.pick(FIRST);
            let last = *r.pick(LAST);
            let domain = r.pick(DOMAINS).to_string();
            let local = format!(
                "{}.{}{}",
                ascii_fold(first),
                ascii_fold(last),
                if r.chance(0.3) {
                    r.below(100).to_string()
                } else {
                    String::new()
                }
            );
            let addr = format!("{local}@{domain}");
            let display = format!("{first} {last}");
            let header = if display.is_ascii() {
                format!("\"{display}\" <{addr}>")
            } else {
                format!("=?UTF-8?Q?{}?= <{addr}>", q_word(&display))
            };
            let company = domain.split('.').next().unwrap_or("example").to_string();
            let signature = format!(
                "-- \r\n{display}\r\n{} | {company}\r\n+1 ({:03}) {:03}-{:04}\r\nhttps://www.{domain}/\r\n",
                r.pick(TITLES),
                r.range(200, 999),
                r.range(200, 999),
                r.below(10_000)
            );
            out.push(Person {
                display,
                header,
                addr,
                domain,
                signature,
                japanese: false,
            });
        }
    }
    out
}

fn ascii_fold(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'é' => 'e',
            'ö' => 'o',
            'ü' => 'u',
            _ => c,
        })
        .collect::<String>()
        .to_lowercase()
}

/// RFC 2047 Q encoding of a phrase (UTF-8).
fn q_word(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        match b {
            b' ' => o.push('_'),
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => o.push(b as char),
            _ => {
                let _ = write!(o, "={b:02X}");
            }
        }
    }
    o
}

// ---------------------------------------------------------------- folders

/// Modified UTF-7 (RFC 3501 5.1.3) of a folder name.
fn mutf7(name: &str) -> String {
    let mut out = String::new();
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if pending.is_empty() {
            return;
        }
        let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
        let enc = base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes);
        out.push('&');
        out.push_str(&enc.replace('/', ","));
        out.push('-');
        pending.clear();
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut pending, &mut out);
    out
}

struct Folder {
    /// As on the wire, `/` between levels.
    wire: String,
    /// Share of the messages.
    weight: f64,
    kind: FolderKind,
    list: Option<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum FolderKind {
    Inbox,
    Sent,
    List,
    Newsletters,
    Japanese,
    Other,
}

fn folders(n: usize) -> Vec<Folder> {
    let mut names: Vec<(String, FolderKind, Option<String>)> = vec![
        ("INBOX".into(), FolderKind::Inbox, None),
        ("Sent".into(), FolderKind::Sent, None),
        ("Archive".into(), FolderKind::Other, None),
        ("Trash".into(), FolderKind::Other, None),
        ("Junk".into(), FolderKind::Newsletters, None),
        ("Drafts".into(), FolderKind::Sent, None),
        ("Newsletters".into(), FolderKind::Newsletters, None),
        (mutf7("取引先/田中商事"), FolderKind::Japanese, None),
        (mutf7("会議資料"), FolderKind::Japanese, None),
        (mutf7("請求書"), FolderKind::Japanese, None),
    ];
    let lists = [
        "rust-users",
        "debian-devel",
        "linux-kernel",
        "postgresql-general",
        "python-dev",
        "dovecot",
        "isync-devel",
        "nginx",
        "openbsd-misc",
        "freebsd-hackers",
        "gnome-devel",
        "kde-devel",
        "llvm-dev",
        "gcc-help",
        "sqlite-users",
        "zstd-dev",
        "tokio-users",
        "mutt-users",
        "notmuch",
        "emacs-devel",
    ];
    for l in lists {
        names.push((format!("Lists/{l}"), FolderKind::List, Some(l.to_string())));
    }
    for y in 2015..2025 {
        names.push((format!("Archive/{y}"), FolderKind::Other, None));
    }
    let projects = [
        "Apollo", "Borealis", "Cascade", "Delta", "Ember", "Fjord", "Granite", "Harbor", "Iris",
        "Juniper", "Kestrel", "Lumen", "Meridian", "Nimbus", "Orchid",
    ];
    for p in projects {
        names.push((format!("Projects/{p}"), FolderKind::Other, None));
    }
    let clients = [
        "Acme", "Globex", "Initech", "Umbrella", "Hooli", "Tyrell", "Soylent", "Wayne",
    ];
    for c in clients {
        names.push((format!("Clients/{c}"), FolderKind::Other, None));
        names.push((format!("Clients/{c}/Invoices"), FolderKind::Other, None));
    }
    for o in [
        "Receipts",
        "Travel",
        "Family",
        "Friends",
        "Notifications",
        "GitHub",
        "Jira",
        "Calendar",
        "Bank",
        "Insurance",
        "Tax",
        "Health",
        "Car",
        "House",
        "Kids/School",
        "Kids/Sports",
        "Hobbies/Photography",
        "Hobbies/Cycling",
        "Conferences",
        "Recruiting",
        "Vendors",
    ] {
        names.push((o.to_string(), FolderKind::Other, None));
    }
    let mut i = 0;
    while names.len() < n {
        names.push((format!("Misc/Folder {i:02}"), FolderKind::Other, None));
        i += 1;
    }
    names.truncate(n.max(1));
    names
        .into_iter()
        .enumerate()
        .map(|(rank, (wire, kind, list))| {
            let weight = match rank {
                0 => 30.0,
                1 => 10.0,
                2 => 6.0,
                _ => 20.0 / (rank as f64).powf(0.9),
            };
            Folder {
                wire,
                weight,
                kind,
                list,
            }
        })
        .collect()
}

/// The Maildir++ directory of a folder.
fn folder_dir(root: &Path, wire: &str) -> PathBuf {
    if wire == "INBOX" {
        root.to_path_buf()
    } else {
        root.join(format!(".{}", wire.replace('/', ".")))
    }
}

fn make_folder(root: &Path, wire: &str) -> std::io::Result<()> {
    let d = folder_dir(root, wire);
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(d.join(sub))?;
    }
    if wire != "INBOX" {
        fs::write(d.join("maildirfolder"), b"")?;
    }
    Ok(())
}

// ---------------------------------------------------------------- messages

struct World {
    seed: u64,
    /// `--text-only`: no message gets an attachment.
    text_only: bool,
    vocab: Vocab,
    people: Vec<Person>,
    folders: Vec<Folder>,
    folder_cdf: Vec<f64>,
}

/// What one message turned out to be, for the summary.
#[derive(Default)]
struct Stats {
    messages: u64,
    bytes: u64,
    /// Bytes of base64 lines that carry random (incompressible) attachment data.
    random_b64: u64,
    japanese: u64,
    iso2022: u64,
    html: u64,
    attachments: u64,
    lists: u64,
}

fn rfc2822(epoch: i64, offset_min: i32) -> String {
    let off = chrono::FixedOffset::east_opt(offset_min * 60).expect("offset");
    chrono::DateTime::from_timestamp(epoch, 0)
        .expect("date")
        .with_timezone(&off)
        .format("%a, %d %b %Y %H:%M:%S %z")
        .to_string()
}

fn fold_b64(out: &mut String, prefix: &str, b64: &str) {
    // Header continuation lines of a signature, as signers write them.
    out.push_str(prefix);
    let mut first = true;
    for chunk in b64.as_bytes().chunks(70) {
        if !first {
            out.push_str("\r\n\t ");
        }
        first = false;
        out.push_str(std::str::from_utf8(chunk).expect("ascii"));
    }
}

fn ip(r: &mut Rng) -> String {
    format!(
        "{}.{}.{}.{}",
        r.range(11, 223),
        r.below(256),
        r.below(256),
        r.range(1, 254)
    )
}

/// Received, Authentication-Results, DKIM and ARC headers, newest first.
fn transport_headers(r: &mut Rng, from: &Person, epoch: i64, out: &mut String) {
    let hops = r.range(2, 6);
    let mut t = epoch + r.range(2, 40) as i64;
    let relays = ["mx1", "mx2", "mx-in", "smtp-in", "mail", "relay", "edge"];
    let ciphers = [
        "version=TLS1_3 cipher=TLS_AES_256_GCM_SHA384 bits=256/256",
        "version=TLS1_2 cipher=ECDHE-RSA-AES128-GCM-SHA256 bits=128/128",
        "version=TLS1_3 cipher=TLS_CHACHA20_POLY1305_SHA256 bits=256/256",
    ];
    let _ = write!(
        out,
        "Return-Path: <{}>\r\nDelivered-To: {OWNER_ADDR}\r\n",
        from.addr
    );
    for h in 0..hops {
        let by = if h == 0 {
            "imap.example.com".to_string()
        } else {
            format!("{}.{}", r.pick(&relays), r.pick(DOMAINS))
        };
        let from_host = if h + 1 == hops {
            format!("smtp-out-{}.{}", r.below(40), from.domain)
        } else {
            format!("{}.{}", r.pick(&relays), r.pick(DOMAINS))
        };
        let _ = write!(
            out,
            "Received: from {from_host} ({from_host} [{}])\r\n\tby {by} (Postfix) with ESMTPS id {}\r\n\t({})\r\n\tfor <{OWNER_ADDR}>; {}\r\n",
            ip(r),
            r.alnum(12).to_uppercase(),
            r.pick(&ciphers),
            rfc2822(t, 0)
        );
        t -= r.range(0, 5) as i64;
    }
    let _ = write!(
        out,
        "Authentication-Results: imap.example.com;\r\n\tdkim=pass (2048-bit key) header.d={} header.i=@{} header.b={};\r\n\tspf=pass (imap.example.com: domain of {} designates {} as permitted sender) smtp.mailfrom={};\r\n\tdmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from={}\r\n",
        from.domain,
        from.domain,
        r.alnum(8),
        from.addr,
        ip(r),
        from.addr,
        from.domain
    );
    if r.chance(0.3) {
        let _ = write!(
            out,
            "ARC-Seal: i=1; a=rsa-sha256; t={epoch}; cv=none;\r\n\td=outlook.example; s=arcselector9901;\r\n"
        );
        fold_b64(out, "\tb=", &r.b64(256));
        out.push_str("\r\n");
        let _ = write!(
            out,
            "ARC-Message-Signature: i=1; a=rsa-sha256; c=relaxed/relaxed; d=outlook.example;\r\n\ts=arcselector9901; h=From:Date:Subject:Message-ID:Content-Type:MIME-Version;\r\n\tbh={};\r\n",
            r.b64(32)
        );
        fold_b64(out, "\tb=", &r.b64(256));
        out.push_str("\r\n");
        let _ = write!(
            out,
            "ARC-Authentication-Results: i=1; mx.outlook.example 1; spf=pass\r\n\tsmtp.mailfrom={}; dmarc=pass action=none header.from={}; dkim=pass\r\n\theader.d={}; arc=none\r\n",
            from.domain, from.domain, from.domain
        );
    }
    if r.chance(0.75) {
        let _ = write!(
            out,
            "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d={};\r\n\ts={}; t={epoch}; x={};\r\n\th=from:to:subject:date:message-id:mime-version:content-type;\r\n\tbh={};\r\n",
            from.domain,
            r.pick(&["google", "s1", "selector1", "default", "20230601"]),
            epoch + 604_800,
            r.b64(32)
        );
        fold_b64(out, "\tb=", &r.b64(256));
        out.push_str("\r\n");
    }
}

fn message_id(r: &mut Rng, domain: &str) -> String {
    match r.below(3) {
        0 => format!("<{}.{}@{domain}>", r.hex(16), r.hex(8)),
        1 => format!("<CA+{}={}@mail.gmail.example>", r.alnum(24), r.alnum(12)),
        _ => format!("<{}@{}.prod.outlook.example>", r.alnum(32), r.alnum(10)),
    }
}

/// Quoted-printable (RFC 2045) of UTF-8 text with CRLF line ends.
fn qp(text: &str, out: &mut String) {
    for line in text.split("\r\n") {
        let mut col = 0;
        for b in line.bytes() {
            let enc = matches!(b, b'=' | 0x80..=0xFF) || (b < 32 && b != b'\t');
            let w = if enc { 3 } else { 1 };
            if col + w > 75 {
                out.push_str("=\r\n");
                col = 0;
            }
            if enc {
                let _ = write!(out, "={b:02X}");
            } else {
                out.push(b as char);
            }
            col += w;
        }
        out.push_str("\r\n");
    }
}

fn b64_lines(bytes: &[u8], out: &mut Vec<u8>) {
    for chunk in bytes.chunks(57) {
        out.extend_from_slice(B64.encode(chunk).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// Attachment sizes (decoded bytes): log-uniform 8 KB–250 KB, and for one
/// in thirty a bounded Pareto (alpha 1.4) 1–25 MB.
fn attachment_size(r: &mut Rng) -> usize {
    if r.chance(1.0 / 30.0) {
        r.pareto(1e6, 25e6, 1.4) as usize
    } else {
        r.log_uniform(8e3, 250e3) as usize
    }
}

const ATTACH_TYPES: &[(&str, &str)] = &[
    ("application/pdf", "pdf"),
    ("image/jpeg", "jpg"),
    ("image/png", "png"),
    ("application/zip", "zip"),
    (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "xlsx",
    ),
    (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "docx",
    ),
];

impl World {
    fn new(seed: u64, nfolders: usize, text_only: bool) -> World {
        let folders = folders(nfolders);
        let mut acc = 0.0;
        let folder_cdf = folders
            .iter()
            .map(|f| {
                acc += f.weight;
                acc
            })
            .collect();
        World {
            seed,
            text_only,
            vocab: Vocab::new(),
            people: people(seed),
            folders,
            folder_cdf,
        }
    }

    fn folder_of(&self, r: &mut Rng) -> usize {
        let x = r.unit() * self.folder_cdf[self.folder_cdf.len() - 1];
        self.folder_cdf
            .partition_point(|&c| c < x)
            .min(self.folders.len() - 1)
    }

    fn person(&self, r: &mut Rng, japanese: bool) -> &Person {
        // A few correspondents write most of the mail.
        loop {
            let i = ((r.unit().powf(2.2)) * self.people.len() as f64) as usize;
            let p = &self.people[i.min(self.people.len() - 1)];
            if p.japanese == japanese {
                return p;
            }
        }
    }

    fn subject(&self, r: &mut Rng) -> String {
        let mut s = String::new();
        for i in 0..r.range(2, 8) {
            if i > 0 {
                s.push(' ');
            }
            s.push_str(self.vocab.word(r));
        }
        let mut c = s.chars();
        match c.next() {
            Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
            None => s,
        }
    }

    /// Plain English body of about `target` bytes, maybe quoting a reply.
    fn english_body(&self, r: &mut Rng, target: usize, sender: &Person, reply: bool) -> String {
        let mut b = String::new();
        let greet = sender.display.split(' ').next().unwrap_or("all");
        let _ = write!(
            b,
            "{} {greet},\r\n\r\n",
            r.pick(&["Hi", "Hello", "Dear", "Hey"])
        );
        let own = if reply { target * 2 / 5 } else { target };
        while b.len() < own {
            self.vocab.paragraph(r, &mut b, "");
            b.push_str("\r\n");
        }
        b.push_str(r.word_of(&["Thanks,", "Best regards,", "Cheers,", "Kind regards,"]));
        b.push_str("\r\n");
        b.push_str(&sender.signature);
        if reply {
            let _ = write!(
                b,
                "\r\nOn {}, {} wrote:\r\n",
                rfc2822(DATE_FROM + r.below(DATE_SPAN as u64) as i64, 0),
                OWNER_NAME
            );
            while b.len() < target {
                self.vocab.paragraph(r, &mut b, "> ");
                b.push_str(">\r\n");
            }
        }
        b
    }

    fn japanese_body(&self, r: &mut Rng, target: usize, sender: &Person) -> String {
        let mut b = String::new();
        let _ = write!(b, "{}様\r\n\r\n{}\r\n", OWNER_NAME, r.pick(JA_OPEN));
        let _ = write!(b, "{}です。\r\n\r\n", sender.display);
        while b.len() < target {
            let mut line = String::new();
            for _ in 0..r.range(1, 3) {
                line.push_str(&ja_sentence(r));
            }
            b.push_str(&line);
            b.push_str("\r\n");
            if r.chance(0.25) {
                b.push_str("\r\n");
            }
        }
        let _ = write!(b, "\r\n{}\r\n\r\n{}", r.pick(JA_CLOSE), sender.signature);
        b
    }

    fn html(&self, r: &mut Rng, target: usize, brand: &str) -> (String, String) {
        let mut text = String::new();
        let mut html = String::new();
        let _ = write!(
            html,
            "<!DOCTYPE html>\r\n<html><head><meta charset=\"utf-8\"><title>{brand}</title>\r\n<style>body{{margin:0;padding:0;font-family:Helvetica,Arial,sans-serif}} .btn{{background:#0a66c2;color:#fff;border-radius:4px}}</style></head>\r\n<body><table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" style=\"background-color:#f4f4f4;\">\r\n"
        );
        while html.len() < target {
            let title = self.subject(r);
            let mut para = String::new();
            self.vocab.sentence(r, &mut para);
            para.push(' ');
            self.vocab.sentence(r, &mut para);
            let token = r.hex(32);
            let _ = write!(
                html,
                "<tr><td style=\"padding:24px 32px;font-size:16px;line-height:24px;color:#333333;\"><h2 style=\"margin:0 0 12px 0;font-size:20px;\">{title}</h2>\r\n<p style=\"margin:0 0 12px 0;\">{para}</p>\r\n<a class=\"btn\" href=\"https://news.{brand}.example/c/{token}?utm_source=newsletter&amp;utm_medium=email&amp;utm_campaign={}\" style=\"display:inline-block;padding:10px 18px;text-decoration:none;\">Read more</a></td></tr>\r\n",
                r.alnum(10)
            );
            let _ = write!(text, "{title}\r\n");
            wrap(&para, 72, "", &mut text);
            let _ = write!(
                text,
                "Read more: https://news.{brand}.example/c/{token}\r\n\r\n"
            );
        }
        let _ = write!(
            html,
            "<tr><td style=\"font-size:11px;color:#999;\">You receive this because you subscribed. <a href=\"https://news.{brand}.example/unsub/{}\">Unsubscribe</a></td></tr></table>\r\n</body></html>",
            r.hex(40)
        );
        (text, html)
    }

    /// One whole message; returns its bytes and its folder index.
    fn message(&self, index: u64, st: &mut Stats) -> (Vec<u8>, usize, i64, String) {
        let mut r = Rng::new(self.seed, index + 1);
        let fi = self.folder_of(&mut r);
        let folder = &self.folders[fi];
        let epoch = DATE_FROM + r.below(DATE_SPAN as u64) as i64;
        let japanese = folder.kind == FolderKind::Japanese || r.chance(0.05);
        let newsletter = folder.kind == FolderKind::Newsletters || (!japanese && r.chance(0.06));
        let list = folder.list.clone().or_else(|| {
            if !newsletter && !japanese && r.chance(0.08) {
                Some(
                    r.pick(&["announce", "users", "devel", "general"])
                        .to_string(),
                )
            } else {
                None
            }
        });
        let sent = folder.kind == FolderKind::Sent;
        // Drawn even when left out, so that every other draw stays the same.
        let attach = !newsletter && r.chance(0.07) && !self.text_only;
        let other = self.person(&mut r, japanese);
        let reply = !newsletter && r.chance(0.4);
        let mut h = String::with_capacity(4096);
        if !sent {
            transport_headers(&mut r, other, epoch, &mut h);
        }
        let offset = if japanese {
            540
        } else {
            *r.pick(&[0, 60, 120, -300, -420, -480, 330])
        };
        let from = if sent {
            format!("{OWNER_NAME} <{OWNER_ADDR}>")
        } else if newsletter {
            let brand = other.domain.split('.').next().unwrap_or("news");
            format!("\"{brand} Weekly\" <newsletter@news.{}>", other.domain)
        } else {
            other.header.clone()
        };
        let to = if sent {
            other.header.clone()
        } else {
            format!("{OWNER_NAME} <{OWNER_ADDR}>")
        };
        let iso2022 = japanese && r.chance(0.5);
        let subject_text = if japanese {
            format!(
                "{}{}",
                r.pick(JA_NOUNS),
                r.pick(&["のご案内", "について", "の件", "（修正版）", "のお願い", ""])
            )
        } else {
            self.subject(&mut r)
        };
        let subject_text = if reply {
            format!("Re: {subject_text}")
        } else {
            subject_text
        };
        let subject = if japanese {
            if iso2022 {
                let (enc, _, _) = encoding_rs::ISO_2022_JP.encode(&subject_text);
                format!("=?ISO-2022-JP?B?{}?=", B64.encode(&enc))
            } else {
                format!("=?UTF-8?B?{}?=", B64.encode(subject_text.as_bytes()))
            }
        } else {
            subject_text
        };
        let _ = write!(
            h,
            "Date: {}\r\nFrom: {from}\r\nTo: {to}\r\n",
            rfc2822(epoch, offset)
        );
        if r.chance(0.15) {
            let cc = self.person(&mut r, japanese);
            let _ = write!(h, "Cc: {}\r\n", cc.header);
        }
        let _ = write!(
            h,
            "Subject: {subject}\r\nMessage-ID: {}\r\n",
            message_id(&mut r, &other.domain)
        );
        if reply {
            let parent = message_id(&mut r, &other.domain);
            let mut refs = String::new();
            for _ in 0..r.range(0, 4) {
                let d = *r.pick(DOMAINS);
                refs.push_str(&message_id(&mut r, d));
                refs.push_str("\r\n ");
            }
            let _ = write!(h, "In-Reply-To: {parent}\r\nReferences: {refs}{parent}\r\n");
        }
        if let Some(l) = &list {
            st.lists += 1;
            let host = format!("lists.{}", other.domain);
            let _ = write!(
                h,
                "List-Id: {l} discussion <{l}.{host}>\r\nList-Unsubscribe: <mailto:{l}-request@{host}?subject=unsubscribe>,\r\n <https://{host}/mailman/options/{l}>\r\nList-Archive: <https://{host}/pipermail/{l}/>\r\nList-Post: <mailto:{l}@{host}>\r\nList-Help: <mailto:{l}-request@{host}?subject=help>\r\nList-Subscribe: <https://{host}/mailman/listinfo/{l}>,\r\n <mailto:{l}-request@{host}?subject=subscribe>\r\nPrecedence: list\r\nSender: \"{l}\" <{l}-bounces@{host}>\r\nErrors-To: {l}-bounces@{host}\r\n"
            );
        }
        if newsletter {
            let _ = write!(
                h,
                "List-Unsubscribe: <https://news.{}/unsub/{}>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\nFeedback-ID: {}:{}:newsletter\r\nX-Campaign-ID: {}\r\n",
                other.domain,
                r.hex(24),
                r.range(1000, 99999),
                r.alnum(8),
                r.hex(12)
            );
        }
        if !sent && r.chance(0.4) {
            let _ = write!(
                h,
                "X-Mailer: {}\r\n",
                r.pick(&[
                    "Microsoft Outlook 16.0",
                    "Apple Mail (2.3774.300.61.1.2)",
                    "Mozilla Thunderbird 115.6.0",
                    "Roundcube Webmail/1.6.5",
                ])
            );
        }
        if !sent && r.chance(0.5) {
            let _ = write!(
                h,
                "X-Spam-Status: No, score=-{}.{} required=5.0 tests=DKIM_SIGNED,DKIM_VALID,SPF_PASS autolearn=ham\r\n",
                r.below(5),
                r.below(10)
            );
        }
        h.push_str("MIME-Version: 1.0\r\n");

        // Body size targets (the text the sender wrote, before encoding).
        let text_target = r.log_normal(3_000.0, 0.75, 300.0, 30_000.0) as usize;
        let mut body: Vec<u8> = Vec::with_capacity(text_target * 2);
        let boundary = format!("----=_Part_{}_{}", r.below(1_000_000), r.hex(12));
        let text_part = |r: &mut Rng, body: &mut Vec<u8>, h: Option<&mut String>| {
            // Writes the text part; with `h`, as the top-level body.
            let (ctype, cte, bytes): (&str, &str, Vec<u8>) = if japanese {
                let t = self.japanese_body(r, text_target.min(8_000), other);
                if iso2022 {
                    let (enc, _, _) = encoding_rs::ISO_2022_JP.encode(&t);
                    ("text/plain; charset=ISO-2022-JP", "7bit", enc.into_owned())
                } else if r.chance(0.5) {
                    let mut v = Vec::new();
                    b64_lines(t.as_bytes(), &mut v);
                    ("text/plain; charset=UTF-8", "base64", v)
                } else {
                    ("text/plain; charset=UTF-8", "8bit", t.into_bytes())
                }
            } else {
                let t = self.english_body(r, text_target, other, reply);
                if t.is_ascii() {
                    (
                        "text/plain; charset=us-ascii; format=flowed",
                        "7bit",
                        t.into_bytes(),
                    )
                } else {
                    let mut q = String::new();
                    qp(&t, &mut q);
                    (
                        "text/plain; charset=UTF-8",
                        "quoted-printable",
                        q.into_bytes(),
                    )
                }
            };
            let head = format!("Content-Type: {ctype}\r\nContent-Transfer-Encoding: {cte}\r\n");
            match h {
                Some(h) => {
                    h.push_str(&head);
                }
                None => body.extend_from_slice(head.as_bytes()),
            }
            if !body.is_empty() || !bytes.is_empty() {
                if !body.is_empty() {
                    body.extend_from_slice(b"\r\n");
                }
                body.extend_from_slice(&bytes);
            }
        };
        if japanese {
            st.japanese += 1;
            if iso2022 {
                st.iso2022 += 1;
            }
        }
        let mut random_b64 = 0u64;
        if newsletter {
            st.html += 1;
            let brand = other.domain.split('.').next().unwrap_or("news");
            let target = r.log_uniform(10e3, 70e3) as usize;
            let (text, html) = self.html(&mut r, target, brand);
            let _ = write!(
                h,
                "Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n"
            );
            let _ = write!(
                body,
                "--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n{text}\r\n--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
            );
            let mut q = String::new();
            qp(&html, &mut q);
            body.extend_from_slice(q.as_bytes());
            let _ = write!(body, "--{boundary}--\r\n");
        } else if attach {
            st.attachments += 1;
            let _ = write!(
                h,
                "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n"
            );
            let _ = write!(
                body,
                "This is a multi-part message in MIME format.\r\n\r\n--{boundary}\r\n"
            );
            let mut part = Vec::new();
            text_part(&mut r, &mut part, None);
            body.extend_from_slice(&part);
            for _ in 0..(if r.chance(0.15) { 2 } else { 1 }) {
                let (ct, ext) = *r.pick(ATTACH_TYPES);
                let size = attachment_size(&mut r);
                let name = format!(
                    "{}-{}.{ext}",
                    r.pick(&[
                        "report", "IMG", "scan", "invoice", "slides", "photo", "contract", "data"
                    ]),
                    r.range(1000, 9999)
                );
                let _ = write!(
                    body,
                    "\r\n--{boundary}\r\nContent-Type: {ct}; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                );
                let mut raw = vec![0u8; size];
                r.fill(&mut raw);
                let before = body.len();
                b64_lines(&raw, &mut body);
                random_b64 += (body.len() - before) as u64;
            }
            let _ = write!(body, "\r\n--{boundary}--\r\n");
        } else {
            text_part(&mut r, &mut body, Some(&mut h));
        }
        h.push_str("\r\n");
        let mut msg = h.into_bytes();
        msg.extend_from_slice(&body);
        if !msg.ends_with(b"\r\n") {
            msg.extend_from_slice(b"\r\n");
        }
        // Flags: most mail read, some answered or flagged.
        let mut flags = String::new();
        if r.chance(0.05) {
            flags.push('F');
        }
        if reply && sent || r.chance(0.1) {
            flags.push('R');
        }
        if sent || r.chance(0.85) {
            flags.push('S');
        }
        st.messages += 1;
        st.bytes += msg.len() as u64;
        st.random_b64 += random_b64;
        (msg, fi, epoch, flags)
    }
}

fn set_mtime(path: &Path, epoch: i64) -> std::io::Result<()> {
    let f = fs::File::options().write(true).open(path)?;
    f.set_modified(UNIX_EPOCH + Duration::from_secs(epoch as u64))
}

fn write_message(dir: &Path, index: u64, seed: u64, epoch: i64, flags: &str, msg: &[u8]) {
    let name = format!("{epoch}.M{index}P{seed}.mkbench,S={}:2,{flags}", msg.len());
    let path = dir.join("cur").join(name);
    fs::write(&path, msg).unwrap_or_else(|e| die(&format!("cannot write {}: {e}", path.display())));
    set_mtime(&path, epoch).unwrap_or_else(|e| die(&format!("cannot set mtime: {e}")));
}

/// One message of about `mib` MiB: a short text and one random attachment,
/// written in pieces (the generator never holds it).
fn big_message(root: &Path, mib: u64, seed: u64) {
    make_folder(root, "INBOX").unwrap_or_else(|e| die(&format!("mkdir: {e}")));
    let epoch = 1_700_000_000;
    let tmp = root.join("tmp").join("big");
    let f = fs::File::create(&tmp).unwrap_or_else(|e| die(&format!("create: {e}")));
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
    let boundary = "----=_Part_big_0001";
    let head = format!(
        "Date: {}\r\nFrom: \"Scanner\" <scanner@example.org>\r\nTo: {OWNER_NAME} <{OWNER_ADDR}>\r\nSubject: Scanned archive ({mib} MiB)\r\nMessage-ID: <big-{mib}@mkbench.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n--{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nThe scanned archive is attached.\r\n\r\n--{boundary}\r\nContent-Type: application/zip; name=\"archive.zip\"\r\nContent-Disposition: attachment; filename=\"archive.zip\"\r\nContent-Transfer-Encoding: base64\r\n\r\n",
        rfc2822(epoch, 0)
    );
    w.write_all(head.as_bytes()).expect("write");
    let mut r = Rng::new(seed, u64::MAX);
    let target = mib << 20;
    let mut written = head.len() as u64;
    let mut raw = vec![0u8; 57 * 1024];
    let mut enc = Vec::with_capacity(80 * 1024);
    while written + 40 < target {
        r.fill(&mut raw);
        enc.clear();
        b64_lines(&raw, &mut enc);
        let take = enc
            .len()
            .min((target - written - 40) as usize / 78 * 78)
            .max(78);
        w.write_all(&enc[..take]).expect("write");
        written += take as u64;
    }
    let tail = format!("\r\n--{boundary}--\r\n");
    w.write_all(tail.as_bytes()).expect("write");
    written += tail.len() as u64;
    w.flush().expect("flush");
    drop(w);
    let path = root
        .join("cur")
        .join(format!("{epoch}.Mbig{mib}P{seed}.mkbench,S={written}:2,S"));
    fs::rename(&tmp, &path).expect("rename");
    set_mtime(&path, epoch).expect("mtime");
    println!(
        "messages=1\nbytes={written}\nrandom_b64={}",
        written - head.len() as u64
    );
}

fn die(msg: &str) -> ! {
    eprintln!("bench_gen: {msg}");
    std::process::exit(2);
}

fn main() {
    let mut maildir: Option<PathBuf> = None;
    let mut messages = 10_000u64;
    let mut first = 0u64;
    let mut nfolders = 100usize;
    let mut seed = 1u64;
    let mut manifest: Option<PathBuf> = None;
    let mut big_mib: Option<u64> = None;
    let mut text_only = false;
    let mut threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || {
            args.next()
                .unwrap_or_else(|| die(&format!("`{a}` needs a value")))
        };
        let num = |s: String| -> u64 {
            s.parse()
                .unwrap_or_else(|_| die(&format!("`{s}` is not a number")))
        };
        match a.as_str() {
            "--maildir" => maildir = Some(PathBuf::from(val())),
            "--messages" => messages = num(val()),
            "--first" => first = num(val()),
            "--folders" => nfolders = num(val()) as usize,
            "--seed" => seed = num(val()),
            "--manifest" => manifest = Some(PathBuf::from(val())),
            "--big-mib" => big_mib = Some(num(val())),
            "--threads" => threads = num(val()).max(1) as usize,
            "--text-only" => text_only = true,
            _ => die(&format!(
                "unknown argument `{a}`; see the comment at the top of examples/bench_gen.rs"
            )),
        }
    }
    let root = maildir.unwrap_or_else(|| die("`--maildir DIR` is required"));
    if let Some(mib) = big_mib {
        big_message(&root, mib, seed);
        return;
    }
    let started = SystemTime::now();
    let world = World::new(seed, nfolders, text_only);
    for f in &world.folders {
        make_folder(&root, &f.wire)
            .unwrap_or_else(|e| die(&format!("mkdir in {}: {e}", root.display())));
    }
    let per_folder: Vec<(AtomicU64, AtomicU64)> = world
        .folders
        .iter()
        .map(|_| (AtomicU64::new(0), AtomicU64::new(0)))
        .collect();
    let dirs: Vec<PathBuf> = world
        .folders
        .iter()
        .map(|f| folder_dir(&root, &f.wire))
        .collect();
    let totals: Vec<Stats> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads as u64)
            .map(|t| {
                let world = &world;
                let per_folder = &per_folder;
                let dirs = &dirs;
                s.spawn(move || {
                    let mut st = Stats::default();
                    let mut i = first + t;
                    while i < first + messages {
                        let (msg, fi, epoch, flags) = world.message(i, &mut st);
                        write_message(&dirs[fi], i, seed, epoch, &flags, &msg);
                        per_folder[fi].0.fetch_add(1, Ordering::Relaxed);
                        per_folder[fi]
                            .1
                            .fetch_add(msg.len() as u64, Ordering::Relaxed);
                        i += threads as u64;
                    }
                    st
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    let mut st = Stats::default();
    for t in totals {
        st.messages += t.messages;
        st.bytes += t.bytes;
        st.random_b64 += t.random_b64;
        st.japanese += t.japanese;
        st.iso2022 += t.iso2022;
        st.html += t.html;
        st.attachments += t.attachments;
        st.lists += t.lists;
    }
    if let Some(m) = manifest {
        let mut s = String::new();
        for (f, (n, b)) in world.folders.iter().zip(&per_folder) {
            let _ = writeln!(
                s,
                "{}\t{}\t{}",
                f.wire,
                n.load(Ordering::Relaxed),
                b.load(Ordering::Relaxed)
            );
        }
        fs::write(&m, s).unwrap_or_else(|e| die(&format!("cannot write {}: {e}", m.display())));
    }
    let secs = started.elapsed().map(|d| d.as_secs_f64()).unwrap_or(0.0);
    println!(
        "messages={}\nbytes={}\nrandom_b64={}\njapanese={}\niso2022jp={}\nhtml={}\nattachments={}\nlists={}\nfolders={}\nseconds={secs:.2}",
        st.messages, st.bytes, st.random_b64, st.japanese, st.iso2022, st.html, st.attachments, st.lists, world.folders.len()
    );
}
