//! A TCP proxy that adds latency, for `benches/compare.sh`: every byte is
//! delivered `--delay-ms` after it was read, in each direction, so a round
//! trip through it costs twice that (15 ms each way: 30 ms). With
//! `--rate-mb N` each connection carries at most N MB (10^6 bytes) a second
//! in each direction, as providers cap a connection; otherwise bandwidth is
//! not limited. Order is kept.
//!
//!     delay_proxy --upstream 127.0.0.1:PORT --delay-ms 15 [--rate-mb N] [--listen 127.0.0.1:0]
//!
//! Prints the port it listens on as its first line of stdout, then serves
//! until it is killed.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

fn die(msg: &str) -> ! {
    eprintln!("delay_proxy: {msg}");
    std::process::exit(2);
}

/// Copies `from` to `to`, each piece held back until `delay` after it
/// arrived and, with a `rate` (bytes a second), until the bytes before it
/// would have gone through at that rate.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
    rate: Option<f64>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx
                        .send((Instant::now() + delay, buf[..n].to_vec()))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    });
    let mut free_at = Instant::now();
    while let Some((at, bytes)) = rx.recv().await {
        let at = at.max(free_at);
        tokio::time::sleep_until(at).await;
        if to.write_all(&bytes).await.is_err() {
            break;
        }
        if let Some(rate) = rate {
            free_at = at + Duration::from_secs_f64(bytes.len() as f64 / rate);
        }
    }
    let _ = to.shutdown().await;
    reader.abort();
}

async fn serve(client: TcpStream, upstream: String, delay: Duration, rate: Option<f64>) {
    let Ok(server) = TcpStream::connect(&upstream).await else {
        eprintln!("delay_proxy: cannot connect to {upstream}");
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    tokio::join!(pipe(cr, sw, delay, rate), pipe(sr, cw, delay, rate));
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut listen = "127.0.0.1:0".to_string();
    let mut upstream = None;
    let mut delay_ms = 15u64;
    let mut rate = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || {
            args.next()
                .unwrap_or_else(|| die(&format!("`{a}` needs a value")))
        };
        match a.as_str() {
            "--listen" => listen = val(),
            "--upstream" => upstream = Some(val()),
            "--delay-ms" => delay_ms = val().parse().unwrap_or_else(|_| die("bad --delay-ms")),
            "--rate-mb" => {
                let mb: f64 = val().parse().unwrap_or_else(|_| die("bad --rate-mb"));
                if mb.is_nan() || mb <= 0.0 {
                    die("--rate-mb must be more than 0");
                }
                rate = Some(mb * 1e6);
            }
            _ => die(&format!("unknown argument `{a}`")),
        }
    }
    let upstream = upstream.unwrap_or_else(|| die("`--upstream HOST:PORT` is required"));
    let listener = TcpListener::bind(&listen)
        .await
        .unwrap_or_else(|e| die(&format!("cannot listen on {listen}: {e}")));
    let port = listener.local_addr().expect("local addr").port();
    println!("{port}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let delay = Duration::from_millis(delay_ms);
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(serve(client, upstream.clone(), delay, rate));
    }
}
