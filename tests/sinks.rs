//! Receivers for what triggers send: an HTTP server that records webhook
//! requests, and a small SMTP server that records mail (enough of RFC 5321
//! for one client: greeting, EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT).

use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// One webhook request as received.
#[derive(Debug, Clone)]
pub struct Hook {
    pub headers: axum::http::HeaderMap,
    pub body: bytes::Bytes,
}

/// Records every POST it gets; answers with `status`.
pub struct WebhookSink {
    pub url: String,
    pub received: Arc<Mutex<Vec<Hook>>>,
}

impl WebhookSink {
    pub async fn start(status: u16) -> WebhookSink {
        let received: Arc<Mutex<Vec<Hook>>> = Arc::default();
        let store = Arc::clone(&received);
        let app = axum::Router::new().fallback(
            move |headers: axum::http::HeaderMap, body: bytes::Bytes| {
                let store = Arc::clone(&store);
                async move {
                    if let Ok(mut hooks) = store.lock() {
                        hooks.push(Hook { headers, body });
                    }
                    axum::http::StatusCode::from_u16(status)
                        .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR)
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        WebhookSink { url, received }
    }

    pub fn hooks(&self) -> Vec<Hook> {
        self.received.lock().map(|h| h.clone()).unwrap_or_default()
    }
}

/// One message as the SMTP sink received it.
#[derive(Debug, Clone, Default)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// Headers and body, dot-unstuffed.
    pub data: String,
}

pub struct SmtpSink {
    /// `smtp://127.0.0.1:PORT` (plain, as `BUILDS_SMTP_URL` takes it).
    pub url: String,
    pub received: Arc<Mutex<Vec<Mail>>>,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("smtp://{}", listener.local_addr().expect("addr"));
        let received: Arc<Mutex<Vec<Mail>>> = Arc::default();
        let store = Arc::clone(&received);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    let _ = session(stream, store).await;
                });
            }
        });
        SmtpSink { url, received }
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.received.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

async fn session(
    stream: tokio::net::TcpStream,
    store: Arc<Mutex<Vec<Mail>>>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 sink ESMTP\r\n").await?;
    let mut mail = Mail::default();
    while let Some(line) = lines.next_line().await? {
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-sink\r\n250 8BITMIME\r\n"
        } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
            b"250 ok\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            mail = Mail {
                from: line[10..].trim().to_string(),
                ..Mail::default()
            };
            b"250 ok\r\n"
        } else if upper.starts_with("RCPT TO:") {
            mail.to.push(line[8..].trim().to_string());
            b"250 ok\r\n"
        } else if upper.starts_with("DATA") {
            write.write_all(b"354 end with .\r\n").await?;
            let mut data = String::new();
            while let Some(line) = lines.next_line().await? {
                if line == "." {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
                data.push('\n');
            }
            mail.data = data;
            if let Ok(mut mails) = store.lock() {
                mails.push(std::mem::take(&mut mail));
            }
            b"250 queued\r\n"
        } else if upper.starts_with("RSET") {
            mail = Mail::default();
            b"250 ok\r\n"
        } else if upper.starts_with("QUIT") {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            b"502 not implemented\r\n"
        };
        write.write_all(reply).await?;
    }
    Ok(())
}
