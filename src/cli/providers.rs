//! `mailkeep providers [NAME]`: the preset table, or one provider in full.

use crate::config::providers::{self, Preset};
use crate::ops::OpError;

use super::fmt::human_bytes;
use super::out::outln;

#[derive(clap::Args, Debug)]
pub struct ProvidersArgs {
    /// One provider (its name, an alias, or an address at it) in full.
    #[arg(value_name = "NAME")]
    name: Option<String>,
}

pub fn run(args: ProvidersArgs) -> Result<i32, OpError> {
    match args.name {
        None => {
            let rows: Vec<[String; 5]> = providers::all()
                .iter()
                .map(|p| {
                    [
                        p.id.to_string(),
                        format!("{}:{}", p.host, p.port),
                        p.login_short(),
                        p.auth_text().to_string(),
                        if p.weak.is_empty() {
                            String::new()
                        } else {
                            "some facts unconfirmed".into()
                        },
                    ]
                })
                .collect();
            let head = ["provider", "server", "login", "password", "note"];
            let widths: Vec<usize> = (0..5)
                .map(|i| {
                    rows.iter()
                        .map(|r| super::display_width(&r[i]))
                        .chain([head[i].len()])
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            let line = |cols: [&str; 5]| {
                let mut s = String::new();
                for (i, c) in cols.iter().enumerate() {
                    if i == 4 {
                        s.push_str(c);
                    } else {
                        s.push_str(&super::pad(c, widths[i] + 2));
                    }
                }
                s.trim_end().to_string()
            };
            outln!("{}", line(head));
            for r in &rows {
                outln!("{}", line([&r[0], &r[1], &r[2], &r[3], &r[4]]));
            }
            outln!();
            outln!("`mailkeep providers NAME` shows one in full; `mailkeep account add NAME --user ADDRESS` uses the one the address belongs to.");
            Ok(0)
        }
        Some(name) => {
            let p = providers::preset(&name)
                .or_else(|| providers::for_address(&name))
                .or_else(|| providers::for_domain(&name))
                .ok_or_else(|| {
                    OpError::usage(
                        format!("unknown provider `{name}`"),
                        Some("`mailkeep providers` lists the known ones"),
                    )
                })?;
            print_one(p);
            Ok(0)
        }
    }
}

fn print_one(p: &Preset) {
    outln!("{} (`--provider {}`)", p.name, p.id);
    if !p.aliases.is_empty() {
        outln!("  also called:   {}", p.aliases.join(", "));
    }
    if !p.domains.is_empty() {
        outln!("  addresses:     {}", p.domains.join(", "));
    }
    outln!(
        "  server:        {}:{} ({})",
        p.host,
        p.port,
        match p.tls {
            crate::model::TlsMode::Implicit => "implicit TLS",
            crate::model::TlsMode::Starttls => "STARTTLS",
            crate::model::TlsMode::None => "no TLS",
        }
    );
    outln!("  login:         {}", p.login_text());
    outln!("  password:      {}", p.auth_text());
    outln!("  how:           {}", p.password_steps);
    if let Some(ja) = p.password_steps_ja {
        outln!("  (日本語):      {ja}");
    }
    if let Some(e) = p.enable_imap {
        outln!("  IMAP on:       {e}");
    }
    if let Some(o) = &p.oauth2 {
        outln!(
            "  OAuth2:        {} flow, scope `{}`",
            match o.flow {
                providers::OAuthFlow::DeviceCode => "device-code",
                providers::OAuthFlow::LoopbackPkce => "browser (loopback + PKCE)",
            },
            o.scope
        );
        outln!("  your client ID: {}", o.register);
    }
    if let Some(n) = p.max_connections {
        outln!("  connections:   at most {n} at once (shared with your other mail programs)");
    }
    if let Some(n) = p.max_message_bytes {
        outln!("  messages:      at most {} each", human_bytes(n));
    }
    match (p.download_bytes_per_day, p.upload_bytes_per_day) {
        (None, None) => {}
        (down, up) => outln!(
            "  a day:         {} download, {} upload over IMAP",
            down.map(human_bytes)
                .unwrap_or_else(|| "no known limit of".into()),
            up.map(human_bytes)
                .unwrap_or_else(|| "no known limit of".into())
        ),
    }
    if !p.alt_hosts.is_empty() {
        outln!("  other servers: {}", p.alt_hosts.join(", "));
    }
    if !p.throttle_signals.is_empty() {
        outln!("  slow-down signals: {}", p.throttle_signals.join(" | "));
    }
    for (u, names) in p.folders {
        outln!("  folder {u:9} {}", names.join(", "));
    }
    for q in p.quirks {
        outln!("  - {q}");
    }
    for w in p.weak {
        outln!("  unconfirmed:   {w}");
    }
}
