//! A small HTTP/1.1 server that answers as a hostile or broken upstream would: redirects,
//! bodies too large or never ending, downloads that stall, requests never answered. It records
//! every request (when, method, path with query, headers).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone)]
pub struct Req {
    pub at: Instant,
    pub method: String,
    /// Path and query, as sent on the request line.
    pub target: String,
    pub headers: Vec<(String, String)>,
}

impl Req {
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub enum Reply {
    /// Status, extra headers, body (with Content-Length).
    Full(u16, Vec<(String, String)>, Vec<u8>),
    /// Chunked: these bytes as one chunk, then nothing, the connection held open.
    Stall(Vec<u8>),
    /// Chunked chunks of 64 KiB forever.
    Endless,
    /// No answer at all; the connection held open.
    Hang,
}

pub fn json(status: u16, body: &str) -> Reply {
    Reply::Full(status, vec![], body.as_bytes().to_vec())
}

pub fn redirect(status: u16, to: &str) -> Reply {
    Reply::Full(status, vec![("location".into(), to.into())], vec![])
}

type Handler = dyn Fn(&Req) -> Reply + Send + Sync;

#[derive(Clone)]
pub struct Server {
    pub port: u16,
    log: Arc<Mutex<Vec<Req>>>,
}

impl Server {
    pub async fn start(handler: impl Fn(&Req) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let l = log.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let (l, h) = (l.clone(), handler.clone());
                tokio::spawn(async move {
                    let _ = serve(sock, &l, &*h).await;
                });
            }
        });
        Self { port, log }
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn requests(&self) -> Vec<Req> {
        self.log.lock().unwrap().clone()
    }
}

async fn serve(
    mut sock: TcpStream,
    log: &Mutex<Vec<Req>>,
    handler: &Handler,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let head_end = loop {
        let mut chunk = [0u8; 4096];
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_owned();
    let target = first.next().unwrap_or("").to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let req = Req {
        at: Instant::now(),
        method,
        target,
        headers,
    };
    log.lock().unwrap().push(req.clone());
    match handler(&req) {
        Reply::Full(status, extra, body) => {
            let mut out = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                body.len()
            );
            for (k, v) in extra {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
            out.push_str("\r\n");
            sock.write_all(out.as_bytes()).await?;
            sock.write_all(&body).await?;
        }
        Reply::Stall(first) => {
            sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ntransfer-encoding: chunked\r\n\r\n")
                .await?;
            sock.write_all(format!("{:x}\r\n", first.len()).as_bytes())
                .await?;
            sock.write_all(&first).await?;
            sock.write_all(b"\r\n").await?;
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Reply::Endless => {
            sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
                .await?;
            let chunk = vec![b' '; 64 * 1024];
            loop {
                sock.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                    .await?;
                sock.write_all(&chunk).await?;
                sock.write_all(b"\r\n").await?;
            }
        }
        Reply::Hang => tokio::time::sleep(Duration::from_secs(3600)).await,
    }
    sock.shutdown().await
}
