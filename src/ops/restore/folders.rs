//! What a folder is for, when the server does not say: special-use folders
//! (RFC 6154 `\Sent \Drafts \Trash \Junk \Archive \All \Flagged`) known by
//! the names providers and mail clients give them, in the languages users
//! meet. Pure data and pure functions.
//!
//! Names are compared case-insensitively (ASCII) and exactly otherwise,
//! against a folder's last level, and only for a folder at the top of the
//! hierarchy (below the personal prefix `INBOX.` if the server has one, or
//! below Gmail's `[Gmail]` / `[Google Mail]`): `Projects/Sent` is a
//! project's folder, not the Sent folder.

/// (special use, names). The first name of each list is what a folder of
/// that use is called when it has to be created.
pub const KNOWN_NAMES: &[(&str, &[&str])] = &[
    (
        "\\Sent",
        &[
            "Sent",
            "Sent Messages",
            "Sent Items",
            "Sent Mail",
            "Sent-Mail",
            "Outbox Sent",
            "送信済み",
            "送信済みメール",
            "送信済みアイテム",
            "送信済みトレイ",
            "送信箱",
            "Gesendet",
            "Gesendete Elemente",
            "Gesendete Objekte",
            "Envoyés",
            "Éléments envoyés",
            "Messages envoyés",
            "Enviados",
            "Elementos enviados",
            "Itens enviados",
            "Posta inviata",
            "Inviati",
            "Verzonden",
            "Verzonden items",
            "Skickat",
            "Skickade objekt",
            "Sendt",
            "Wysłane",
            "Отправленные",
            "已发送",
            "已傳送",
            "寄件備份",
            "보낸편지함",
        ],
    ),
    (
        "\\Drafts",
        &[
            "Drafts",
            "Draft",
            "下書き",
            "Entwürfe",
            "Brouillons",
            "Borradores",
            "Rascunhos",
            "Bozze",
            "Concepten",
            "Utkast",
            "Kladder",
            "Kopie robocze",
            "Черновики",
            "草稿",
            "草稿箱",
            "임시보관함",
        ],
    ),
    (
        "\\Trash",
        &[
            "Trash",
            "Deleted Messages",
            "Deleted Items",
            "Deleted",
            "Bin",
            "ゴミ箱",
            "ごみ箱",
            "削除済みアイテム",
            "削除済み",
            "Papierkorb",
            "Gelöschte Elemente",
            "Gelöschte Objekte",
            "Corbeille",
            "Éléments supprimés",
            "Papelera",
            "Elementos eliminados",
            "Lixeira",
            "Itens excluídos",
            "Cestino",
            "Posta eliminata",
            "Prullenbak",
            "Verwijderde items",
            "Papperskorgen",
            "Borttagna objekt",
            "Kosz",
            "Корзина",
            "Удаленные",
            "已删除",
            "已刪除",
            "垃圾桶",
            "휴지통",
        ],
    ),
    (
        "\\Junk",
        &[
            "Junk",
            "Spam",
            "Junk E-mail",
            "Junk Email",
            "Junk Mail",
            "Bulk Mail",
            "Bulk",
            "迷惑メール",
            "迷惑メール＿ドコモ用",
            "迷惑メールフォルダ",
            "Junk-E-Mail",
            "Spamverdacht",
            "Courrier indésirable",
            "Pourriels",
            "Correo no deseado",
            "Lixo eletrônico",
            "Posta indesiderata",
            "Ongewenste e-mail",
            "Skräppost",
            "Спам",
            "垃圾邮件",
            "垃圾郵件",
            "스팸메일함",
        ],
    ),
    (
        "\\Archive",
        &[
            "Archive",
            "Archives",
            "アーカイブ",
            "Archiv",
            "Archivio",
            "Archivo",
            "Arquivo",
            "Archief",
            "Arkiv",
            "Archiwum",
            "Архив",
            "存档",
            "封存",
            "보관함",
        ],
    ),
    (
        "\\All",
        &[
            "All Mail",
            "すべてのメール",
            "Alle Nachrichten",
            "Tous les messages",
            "Todos",
            "Todos os e-mails",
            "Tutti i messaggi",
            "Alle berichten",
            "Все письма",
            "所有邮件",
            "所有郵件",
            "전체보관함",
        ],
    ),
    (
        "\\Flagged",
        &[
            "Starred",
            "Flagged",
            "スター付き",
            "Markiert",
            "Suivis",
            "Destacados",
            "Com estrela",
            "Speciali",
            "Met ster",
            "Помеченные",
            "已加星标",
            "중요편지함",
        ],
    ),
    (
        "\\Important",
        &["Important", "重要", "Wichtig", "Importants", "Importantes"],
    ),
];

/// Gmail's folder of its own folders (labels with a special meaning).
pub const GMAIL_PARENTS: &[&str] = &["[Gmail]", "[Google Mail]"];

/// The special use a name stands for (`Sent Messages` → `\Sent`).
pub fn use_of_name(name: &str) -> Option<&'static str> {
    let name = name.trim();
    KNOWN_NAMES.iter().find_map(|(u, names)| {
        names
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name) || nfc_eq(n, name))
            .then_some(*u)
    })
}

/// Composed and decomposed forms of the same text (`é` as one code point or
/// two) are the same name.
fn nfc_eq(a: &str, b: &str) -> bool {
    use unicode_normalization::UnicodeNormalization;
    !a.is_ascii() && a.nfc().eq(b.nfc())
}

/// The special use of a folder given as path segments (the personal prefix
/// already taken off): its server's mark when it has one, else what its name
/// says, when it sits at the top or right below `[Gmail]`.
pub fn use_of_folder(segments: &[String], marked: Option<&str>) -> Option<String> {
    if let Some(u) = marked {
        return Some(normal_use(u));
    }
    let name = match segments {
        [one] => one,
        [parent, one] if is_gmail_parent(parent) => one,
        _ => return None,
    };
    use_of_name(name).map(String::from)
}

/// `\sent` → `\Sent`: as the table writes it, for comparing and printing.
pub fn normal_use(u: &str) -> String {
    KNOWN_NAMES
        .iter()
        .map(|(k, _)| *k)
        .find(|k| k.eq_ignore_ascii_case(u))
        .map(String::from)
        .unwrap_or_else(|| u.to_string())
}

pub fn is_gmail_parent(segment: &str) -> bool {
    GMAIL_PARENTS
        .iter()
        .any(|g| g.eq_ignore_ascii_case(segment))
}

/// The name a folder of this use gets when the target has none.
pub fn default_name(special_use: &str) -> Option<&'static str> {
    KNOWN_NAMES
        .iter()
        .find(|(u, _)| u.eq_ignore_ascii_case(special_use))
        .map(|(_, names)| names[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_in_many_languages_say_what_a_folder_is_for() {
        assert_eq!(use_of_name("Sent Messages"), Some("\\Sent"));
        assert_eq!(use_of_name("sent items"), Some("\\Sent"));
        assert_eq!(use_of_name("送信済み"), Some("\\Sent"));
        assert_eq!(use_of_name("送信済みアイテム"), Some("\\Sent"));
        assert_eq!(use_of_name("Gesendet"), Some("\\Sent"));
        assert_eq!(use_of_name("Deleted Messages"), Some("\\Trash"));
        assert_eq!(use_of_name("ゴミ箱"), Some("\\Trash"));
        assert_eq!(use_of_name("迷惑メール"), Some("\\Junk"));
        assert_eq!(use_of_name("Spam"), Some("\\Junk"));
        assert_eq!(use_of_name("下書き"), Some("\\Drafts"));
        assert_eq!(use_of_name("すべてのメール"), Some("\\All"));
        assert_eq!(use_of_name("Starred"), Some("\\Flagged"));
        // Decomposed é is the same name.
        assert_eq!(use_of_name("Envoye\u{301}s"), Some("\\Sent"));
        assert_eq!(use_of_name("Projects"), None);
        assert_eq!(use_of_name("INBOX"), None);
    }

    #[test]
    fn only_a_top_level_folder_is_known_by_its_name() {
        assert_eq!(
            use_of_folder(&segs(&["Sent Items"]), None).as_deref(),
            Some("\\Sent")
        );
        assert_eq!(
            use_of_folder(&segs(&["[Gmail]", "送信済みメール"]), None).as_deref(),
            Some("\\Sent")
        );
        assert_eq!(
            use_of_folder(&segs(&["[Google Mail]", "Gesendet"]), None).as_deref(),
            Some("\\Sent")
        );
        assert_eq!(use_of_folder(&segs(&["Projects", "Sent"]), None), None);
        // The server's mark wins over the name.
        assert_eq!(
            use_of_folder(&segs(&["Sent"]), Some("\\archive")).as_deref(),
            Some("\\Archive")
        );
    }

    #[test]
    fn a_created_folder_of_a_use_has_a_plain_english_name() {
        assert_eq!(default_name("\\sent"), Some("Sent"));
        assert_eq!(default_name("\\Archive"), Some("Archive"));
        assert_eq!(default_name("\\Nothing"), None);
    }
}
