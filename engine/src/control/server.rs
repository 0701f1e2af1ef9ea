//! The control endpoint: HTTP/1.1 on 127.0.0.1 (or an address given with
//! a token), served by hyper on a thread of its own with a single-threaded
//! tokio runtime, so the job's threads never wait on it. What it shows of
//! the job is read from [`Live`], which the supervisor and the checkpoint
//! coordinator keep up to date; nothing it does touches the records' path.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel::Sender;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use super::{ErrorAnswer, RunInfo, SavepointAnswer, SavepointBody};
use crate::checkpoint::{AfterSavepoint, SavepointRequest};
use crate::error::Class;
use crate::runtime::live::Live;

/// The largest request body read: the bodies are a location or nothing.
const MAX_BODY: usize = 64 * 1024;

/// A running endpoint; dropping it stops the server.
pub struct Endpoint {
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Where the endpoint listens, and who may use it.
#[derive(Clone, Debug)]
pub struct Access {
    pub address: IpAddr,
    /// 0: any free port.
    pub port: u16,
    /// When set, a request must carry `Authorization: Bearer <token>`:
    /// every request when the address is not loopback, else those that
    /// change the job (savepoint, stop).
    pub token: Option<String>,
}

struct Context {
    info: RunInfo,
    requests: Sender<SavepointRequest>,
    /// How long an answer to a savepoint may take.
    wait: Duration,
    live: Arc<Live>,
    token: Option<String>,
    /// Reading needs the token too (the endpoint is reachable from elsewhere).
    guard_reads: bool,
    /// The address listened on.
    bound: IpAddr,
}

/// Binds as `access` says and serves the endpoint; `info` describes the
/// run given the port bound. Savepoint and stop requests go to
/// `requests`; an answer is awaited up to `wait`.
pub fn start(
    access: &Access,
    info: impl FnOnce(u16) -> RunInfo,
    requests: Sender<SavepointRequest>,
    wait: Duration,
    live: Arc<Live>,
) -> std::io::Result<(Endpoint, RunInfo)> {
    let listener = TcpListener::bind(SocketAddr::from((access.address, access.port)))?;
    listener.set_nonblocking(true)?;
    let port = listener.local_addr()?.port();
    let info = info(port);
    let context = Arc::new(Context {
        info: info.clone(),
        requests,
        wait,
        live,
        token: access.token.clone(),
        guard_reads: !access.address.is_loopback(),
        bound: access.address,
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            runtime.block_on(serve(listener, context, stopping));
            // A request still waiting for an answer the ended job will
            // never give must not hold the process.
            runtime.shutdown_timeout(Duration::from_millis(100));
        })?;
    Ok((
        Endpoint {
            port,
            stop,
            thread: Some(thread),
        },
        info,
    ))
}

async fn serve(listener: TcpListener, context: Arc<Context>, stop: Arc<AtomicBool>) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    while !stop.load(Ordering::Relaxed) {
        let Ok(Ok((stream, _))) =
            tokio::time::timeout(Duration::from_millis(200), listener.accept()).await
        else {
            continue;
        };
        let context = Arc::clone(&context);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let context = Arc::clone(&context);
                async move { Ok::<_, Infallible>(handle(request, &context).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

fn json<T: serde::Serialize>(status: StatusCode, body: &T) -> Response<Full<Bytes>> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

/// The status of a refused request, by whose failure it is; the client
/// reads the class back from it ([`super::client::class_of`]).
fn status_of(class: Class) -> StatusCode {
    match class {
        Class::User => StatusCode::CONFLICT,
        Class::External => StatusCode::SERVICE_UNAVAILABLE,
        Class::Bug => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response<Full<Bytes>> {
    json(
        status,
        &ErrorAnswer {
            error: message.into(),
        },
    )
}

/// Whether `request` carries the endpoint's token, when it has one. The
/// comparison takes the same time wherever the first difference is.
fn authorized(parts: &hyper::http::request::Parts, token: Option<&str>) -> bool {
    let Some(token) = token else {
        return true;
    };
    let given = parts
        .headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0, |diff, (a, b)| diff | (a ^ b))
            == 0
}

fn text(content_type: &'static str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}

/// The web view: one page, built into the binary, that reads the API.
const WEB_VIEW: &str = include_str!("web/index.html");

/// The endpoints, for the answer to a path that is none of them.
const ENDPOINTS: &str = "GET /, /v1/job, /v1/plan, /v1/spec, /v1/metrics, /v1/checkpoints, /v1/tap/{node}, /metrics; POST /v1/savepoint, /v1/stop";

/// A path segment with its `%XX` escapes decoded.
fn percent_decoded(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut k = 0;
    while k < bytes.len() {
        if bytes[k] == b'%' {
            let hex = segment.get(k + 1..k + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            k += 3;
        } else {
            out.push(bytes[k]);
            k += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The longest a tap read waits for a first record.
const TAP_WAIT_MAX: Duration = Duration::from_secs(10);

/// `GET /v1/tap/{node}?max=N&wait_ms=M`: records sampled from `node`
/// since the last read, as soon as there is one (up to `wait_ms`).
async fn tap(node: &str, query: Option<&str>, live: &Arc<Live>) -> Response<Full<Bytes>> {
    let mut max = 100;
    let mut wait = Duration::from_secs(1);
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let parsed = match pair.split_once('=') {
            Some(("max", v)) => v.parse().map(|v: usize| max = v.clamp(1, 10_000)),
            Some(("wait_ms", v)) => v
                .parse()
                .map(|v: u64| wait = Duration::from_millis(v).min(TAP_WAIT_MAX)),
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("unknown query `{pair}`: there are max and wait_ms"),
                )
            }
        };
        if parsed.is_err() {
            return error(StatusCode::BAD_REQUEST, format!("`{pair}` is not a number"));
        }
    }
    let live = Arc::clone(live);
    let node = node.to_owned();
    let read = tokio::task::spawn_blocking(move || {
        live.taps
            .read(&node, max, wait)
            .map(|records| serde_json::json!({"node": node, "records": records}))
    })
    .await;
    match read {
        Ok(Ok(answer)) => json(StatusCode::OK, &answer),
        Ok(Err(unknown)) => error(StatusCode::NOT_FOUND, unknown.to_string()),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error: {e}"),
        ),
    }
}

/// Whether the request names this endpoint as its host: a page of another
/// site whose name was made to point at 127.0.0.1 (DNS rebinding) names
/// its own, and is refused. Listening on every address, any name goes (a
/// token is required there anyway).
fn our_host(parts: &hyper::http::request::Parts, bound: std::net::IpAddr) -> bool {
    if bound.is_unspecified() {
        return true;
    }
    let Some(host) = parts
        .headers
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
    else {
        return false;
    };
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip == bound)
}

async fn handle(request: Request<Incoming>, context: &Context) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    if !our_host(&parts, context.bound) {
        return error(
            StatusCode::FORBIDDEN,
            "the request names another host than this endpoint's",
        );
    }
    // The page itself holds no figures: it asks the API, with the token.
    if parts.method == Method::GET && parts.uri.path() == "/" {
        return text("text/html; charset=utf-8", WEB_VIEW);
    }
    let reading = parts.method == Method::GET;
    // A page of another site can post a form, not JSON (without asking
    // first, which this endpoint never allows).
    let json_body = parts
        .headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !reading && !json_body {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a request that changes the job must be `Content-Type: application/json`",
        );
    }
    if (!reading || context.guard_reads) && !authorized(&parts, context.token.as_deref()) {
        return error(
            StatusCode::UNAUTHORIZED,
            "this endpoint needs the run's token: `Authorization: Bearer <DATAFLOW_CONTROL_TOKEN>`",
        );
    }
    let live = &context.live;
    let stop = match (&parts.method, parts.uri.path()) {
        (&Method::GET, "/v1/job") => return json(StatusCode::OK, &context.info),
        (&Method::GET, "/v1/plan") => return json(StatusCode::OK, &live.plan),
        (&Method::GET, "/v1/spec") => {
            return json(
                StatusCode::OK,
                &serde_json::json!({"file": context.info.spec, "text": live.spec}),
            )
        }
        (&Method::GET, "/v1/metrics") => return json(StatusCode::OK, &live.metrics()),
        (&Method::GET, "/v1/checkpoints") => {
            let history = live
                .checkpoints
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            return json(StatusCode::OK, &history);
        }
        (&Method::GET, "/metrics") => {
            let history = live
                .checkpoints
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let body = super::prometheus::render(
                &context.info.job,
                &context.info.run,
                &live.metrics(),
                &history,
            );
            return text("text/plain; version=0.0.4; charset=utf-8", body);
        }
        (&Method::GET, path) if path.starts_with("/v1/tap/") => {
            let Some(node) = percent_decoded(&path["/v1/tap/".len()..]) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "the node's name is not valid UTF-8 once decoded",
                );
            };
            return tap(&node, parts.uri.query(), live).await;
        }
        (&Method::POST, "/v1/savepoint") => false,
        (&Method::POST, "/v1/stop") => true,
        (method, path) => {
            return error(
                StatusCode::NOT_FOUND,
                format!("no endpoint {method} {path}: there are {ENDPOINTS}"),
            )
        }
    };
    let bytes = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("cannot read the request: {e}"),
            )
        }
    };
    let body: SavepointBody = if bytes.iter().all(u8::is_ascii_whitespace) {
        SavepointBody::default()
    } else {
        match serde_json::from_slice(&bytes) {
            Ok(b) => b,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("the body is not valid: {e}"),
                )
            }
        }
    };
    if body.drain && !stop {
        return error(
            StatusCode::BAD_REQUEST,
            "`drain` is for /v1/stop: a savepoint that goes on cannot close the windows",
        );
    }
    let (to, then) = match (stop, body.drain) {
        (false, _) => (body.to, AfterSavepoint::Run),
        (true, false) => (body.savepoint_to, AfterSavepoint::Stop),
        (true, true) => (body.savepoint_to, AfterSavepoint::Drain),
    };
    let (reply, answer) = crossbeam_channel::bounded(1);
    let request = SavepointRequest { to, then, reply };
    if context.requests.try_send(request).is_err() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the job is ending, or busy with other savepoint requests",
        );
    }
    let wait = context.wait;
    let answer = tokio::task::spawn_blocking(move || answer.recv_timeout(wait)).await;
    match answer {
        Ok(Ok(Ok((checkpoint_id, location)))) => json(
            StatusCode::OK,
            &SavepointAnswer {
                checkpoint_id,
                location,
            },
        ),
        Ok(Ok(Err(failure))) => error(status_of(failure.class), failure.message),
        Ok(Err(crossbeam_channel::RecvTimeoutError::Timeout)) => error(
            StatusCode::GATEWAY_TIMEOUT,
            format!("no savepoint within {}", crate::plan::settings::human(wait)),
        ),
        _ => error(
            status_of(Class::User),
            "the job ended before the savepoint completed",
        ),
    }
}
