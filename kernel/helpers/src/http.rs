//! Real HTTP over real sockets, all on 127.0.0.1: a local server that answers after a delay
//! (a slow API, a page to scrape), and a blocking and an async client for it.
//!
//! The server runs on one thread with a one-thread tokio runtime, however many requests
//! wait at once: [`LocalServer::peak_concurrent`] shows how many connections that one
//! thread held open together. It stops when the `LocalServer` value is dropped (or the
//! kernel shuts down). The clients speak plain HTTP/1.1 to `http://127.0.0.1:PORT/...`.

use crate::spans::Kind;
use crate::task_run::TaskRun;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The longest request head the server reads.
const MAX_HEAD: usize = 16 * 1024;
/// The server holds at most this many connections at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 4096;
/// A client that has not sent its whole request within this long is let go.
const REQUEST_WITHIN: Duration = Duration::from_secs(10);

/// A web server on 127.0.0.1 that answers every request after `delay` seconds.
///
/// Paths ending in `.json` get JSON, others an HTML page with a title and links (to
/// scrape). `?delay=0.2` on a request overrides the server's delay for that request.
///
/// ```
/// use tandem_helpers::http::{http_get, LocalServer};
/// let server = LocalServer::start(0.1).unwrap();
/// let page = http_get(&server.url("/articles/7")).unwrap();
/// assert!(page.contains("<title>/articles/7</title>"));
/// let json = http_get(&server.url("/users/3.json?delay=0")).unwrap();
/// assert!(json.contains(r#""path":"/users/3.json""#));
/// assert_eq!(server.requests_served(), 2);
/// ```
pub struct LocalServer {
    address: SocketAddr,
    delay: Duration,
    stats: Arc<Stats>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct Stats {
    served: AtomicUsize,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
}

impl LocalServer {
    /// Starts the server on a free port of 127.0.0.1.
    pub fn start(delay_seconds: f64) -> io::Result<LocalServer> {
        let listener = StdListener::bind("127.0.0.1:0")?;
        // std listens with a backlog of 128: hundreds of clients connecting in the same
        // millisecond would see SYNs dropped and retried a second later. Ask for the
        // system's maximum instead (listen again only resizes the queue).
        // SAFETY: listen on a socket we own, already bound and listening.
        if unsafe { libc::listen(listener.as_raw_fd(), libc::SOMAXCONN.max(4096)) } != 0 {
            return Err(io::Error::last_os_error());
        }
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let delay = Duration::from_secs_f64(delay_seconds.max(0.0));
        let stats = Arc::new(Stats::default());
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let serving = stats.clone();
        // Built here, so that a server that cannot get its runtime (no file descriptor
        // left, say) fails to start instead of dying later on its thread. It is handed
        // over once the thread exists: a cell may run this inside its own runtime, where
        // a runtime must not be dropped, only shut down.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (hand_over, handed) = std::sync::mpsc::sync_channel(1);
        let spawned = std::thread::Builder::new()
            .name("local-server".into())
            .spawn(move || {
                if let Ok(runtime) = handed.recv() {
                    serve(runtime, listener, delay, serving, stopped);
                }
            });
        let thread = match spawned {
            Ok(thread) => thread,
            Err(error) => {
                runtime.shutdown_background();
                return Err(error);
            }
        };
        if let Err(std::sync::mpsc::SendError(runtime)) = hand_over.send(runtime) {
            runtime.shutdown_background();
        }
        Ok(LocalServer {
            address,
            delay,
            stats,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The delay every answer waits (unless a request asks for another).
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// Requests answered so far.
    pub fn requests_served(&self) -> usize {
        self.stats.served.load(Ordering::SeqCst)
    }

    /// The most requests the server's one thread had in progress at the same time.
    pub fn peak_concurrent(&self) -> usize {
        self.stats.peak.load(Ordering::SeqCst)
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for LocalServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "LocalServer at {} (delay {:.2} s, {} served, at most {} at once)",
            self.url("/"),
            self.delay.as_secs_f64(),
            self.requests_served(),
            self.peak_concurrent()
        )
    }
}

/// The server thread: one current-thread runtime accepting and answering connections.
fn serve(
    runtime: tokio::runtime::Runtime,
    listener: StdListener,
    delay: Duration,
    stats: Arc<Stats>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => listener,
            Err(error) => return eprintln!("local server: {error}"),
        };
        let room = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        loop {
            let Ok(place) = room.clone().acquire_owned().await else {
                return;
            };
            tokio::select! {
                _ = &mut stopped => return,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let stats = stats.clone();
                        tokio::spawn(async move {
                            answer(stream, delay, stats).await;
                            drop(place);
                        });
                    }
                    // Out of file descriptors, say: asking again at once would spin.
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        }
    });
}

async fn answer(mut stream: tokio::net::TcpStream, delay: Duration, stats: Arc<Stats>) {
    let now = stats.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    stats.peak.fetch_max(now, Ordering::SeqCst);
    let mut head = Vec::new();
    let read = tokio::time::timeout(REQUEST_WITHIN, async {
        let mut buffer = [0u8; 2048];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    if read.is_err() {
        stats.in_flight.fetch_sub(1, Ordering::SeqCst);
        return;
    }
    let response = match request_target(&head) {
        Some(target) => {
            let (path, wait) = path_and_delay(&target, delay);
            tokio::time::sleep(wait).await;
            let served = stats.served.fetch_add(1, Ordering::SeqCst) + 1;
            page(&path, wait, served)
        }
        None => response(400, "text/plain", "bad request\n"),
    };
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
    stats.in_flight.fetch_sub(1, Ordering::SeqCst);
}

/// `/path?query` from `GET /path?query HTTP/1.1`.
fn request_target(head: &[u8]) -> Option<String> {
    let head = std::str::from_utf8(head).ok()?;
    let mut words = head.lines().next()?.split_whitespace();
    let (_method, target) = (words.next()?, words.next()?);
    target.starts_with('/').then(|| target.to_owned())
}

/// The path and how long to wait: `?delay=SECONDS` overrides the server's delay.
fn path_and_delay(target: &str, default: Duration) -> (String, Duration) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let wait = query
        .split('&')
        .filter_map(|pair| pair.strip_prefix("delay="))
        .filter_map(|seconds| seconds.parse::<f64>().ok())
        .map(|seconds| Duration::from_secs_f64(seconds.clamp(0.0, 600.0)))
        .next()
        .unwrap_or(default);
    (path.to_owned(), wait)
}

fn page(path: &str, waited: Duration, served: usize) -> String {
    let waited = waited.as_secs_f64();
    if path.ends_with(".json") {
        let body = serde_json::json!({
            "path": path,
            "waited_seconds": waited,
            "request_number": served,
        });
        return response(200, "application/json", &body.to_string());
    }
    let escaped = path
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let base = escaped.trim_end_matches('/');
    let body = format!(
        "<!doctype html><html><head><title>{escaped}</title></head><body>\
         <h1>{escaped}</h1><p>Answered after {waited:.2} s (request {served}).</p>\
         <ul><li><a href=\"{base}/1\">{base}/1</a></li><li><a href=\"{base}/2\">{base}/2</a>\
         </li></ul></body></html>\n"
    );
    response(200, "text/html; charset=utf-8", &body)
}

fn response(status: u16, content_type: &str, body: &str) -> String {
    let reason = if status == 200 { "OK" } else { "Bad Request" };
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
}

/// (host:port, path) of a plain-HTTP URL.
fn split_url(url: &str) -> io::Result<(String, String)> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{url}: the helpers speak plain http:// (to local servers)"),
        )
    })?;
    let (host, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    Ok((host.to_owned(), path.to_owned()))
}

fn request_bytes(host: &str, path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
}

/// The body of an HTTP response, or an error for a status other than 200.
fn body_of(response: &[u8]) -> io::Result<String> {
    let text = String::from_utf8_lossy(response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no HTTP header"))?;
    let status = head.split_whitespace().nth(1).unwrap_or("?");
    if status != "200" {
        return Err(io::Error::other(format!("HTTP status {status}")));
    }
    Ok(body.to_owned())
}

/// GETs `url` and returns the body, blocking the thread until the answer comes (like
/// `reqwest::blocking::get`). Records a blocking span `GET <path>`; an interrupt stops it.
pub fn http_get(url: &str) -> io::Result<String> {
    let (host, path) = split_url(url)?;
    let run = TaskRun::start(&format!("GET {path}"), Kind::Blocking, false);
    let mut stream = StdStream::connect(&host)?;
    stream.write_all(request_bytes(&host, &path).as_bytes())?;
    // Short read timeouts, so an interrupt is noticed while the server takes its time.
    stream.set_read_timeout(Some(Duration::from_millis(10)))?;
    let mut response = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&buffer[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                crate::interrupt::stop_if_interrupted();
            }
            Err(e) => return Err(e),
        }
    }
    let body = body_of(&response);
    run.finish();
    body
}

/// GETs `url` without blocking the thread: while it waits for the answer, the runtime runs
/// other tasks. Records an async span `GET <path>`; an interrupt stops it. The future owns
/// the URL, so `urls.map(|u| http_get_async(format!(..)))` works.
///
/// ```
/// use tandem_helpers::prelude::*;
/// let server = LocalServer::start(0.3).unwrap();
/// let urls: Vec<String> = (1..=5).map(|n| server.url(&format!("/item/{n}.json"))).collect();
/// let (pages, took) = run_on_one_thread(timed_async(gather(urls.iter().map(http_get_async))));
/// assert!(pages.iter().all(|page| page.is_ok()));
/// // Five 0.3 s answers, awaited together on one thread: about 0.3 s, not 1.5 s.
/// assert!(took.as_secs_f64() < 1.0);
/// assert_eq!(server.peak_concurrent(), 5);
/// ```
pub async fn http_get_async(url: impl Into<String>) -> io::Result<String> {
    let (host, path) = split_url(&url.into())?;
    let run = TaskRun::start(&format!("GET {path}"), Kind::Async, false);
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(&host).await?;
        stream
            .write_all(request_bytes(&host, &path).as_bytes())
            .await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        body_of(&response)
    };
    let body = crate::interrupt::interruptible(exchange).await;
    run.finish();
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_host_and_path() {
        assert_eq!(
            split_url("http://127.0.0.1:8080/a/b?x=1").unwrap(),
            ("127.0.0.1:8080".into(), "/a/b?x=1".into())
        );
        assert_eq!(split_url("http://localhost:1").unwrap().1, "/");
        assert!(split_url("https://example.com/").is_err());
    }

    #[test]
    fn requests_may_ask_for_their_own_delay() {
        let default = Duration::from_secs(1);
        assert_eq!(path_and_delay("/a", default), ("/a".into(), default));
        assert_eq!(
            path_and_delay("/a?x=1&delay=0.25", default),
            ("/a".into(), Duration::from_millis(250))
        );
        assert_eq!(
            request_target(b"GET /x?y HTTP/1.1\r\n\r\n").as_deref(),
            Some("/x?y")
        );
        assert_eq!(request_target(b"garbage"), None);
    }

    #[test]
    fn bad_requests_get_400_and_the_server_keeps_serving() {
        let server = LocalServer::start(0.0).unwrap();
        let mut raw = StdStream::connect(server.address()).unwrap();
        raw.write_all(b"nonsense\r\n\r\n").unwrap();
        let mut answer = String::new();
        raw.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 400"));
        assert!(http_get(&server.url("/fine")).unwrap().contains("/fine"));
    }
}
