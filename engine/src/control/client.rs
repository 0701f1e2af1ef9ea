//! Calling a run's control endpoint, for `dataflow list`, `savepoint` and
//! `stop`.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};

use super::{ErrorAnswer, RunInfo};
use crate::error::Class;

/// Why a run's endpoint gave no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("cannot start an HTTP client: {0}")]
    Client(std::io::Error),
    #[error("cannot reach run {run} at {address}: {source}")]
    Unreachable {
        run: String,
        address: String,
        source: std::io::Error,
    },
    #[error("run {run} did not answer: {source}")]
    NoAnswer { run: String, source: hyper::Error },
    #[error("cannot build the request: {0}")]
    Request(hyper::http::Error),
    #[error("run {run} did not answer within {limit}")]
    Timeout { run: String, limit: String },
    #[error("an answer that cannot be read: {0}")]
    Unreadable(serde_json::Error),
    /// The job refused, for the reason it gave.
    #[error("{message}")]
    Refused { status: u16, message: String },
}

impl crate::error::Classify for CallError {
    fn class(&self) -> Class {
        match self {
            CallError::Client(_)
            | CallError::Unreachable { .. }
            | CallError::NoAnswer { .. }
            | CallError::Timeout { .. } => Class::External,
            CallError::Request(_) | CallError::Unreadable(_) => Class::Bug,
            CallError::Refused { status, .. } => class_of(*status),
        }
    }
}

/// Whose failure a refusal with this HTTP status is: the server answers
/// 4xx for the user's, 500 for a bug, other 5xx for an outside failure.
pub fn class_of(status: u16) -> Class {
    match status {
        500 => Class::Bug,
        s if s >= 500 => Class::External,
        _ => Class::User,
    }
}

/// Sends one request to the endpoint of `run`; returns the status and the
/// body, or why there is no answer within `limit`.
pub fn call(
    run: &RunInfo,
    method: Method,
    path: &str,
    body: Option<String>,
    limit: Duration,
) -> Result<(u16, Vec<u8>), CallError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(CallError::Client)?;
    // A run listening on every address is reached on loopback.
    let host = if run.address.is_unspecified() {
        std::net::Ipv4Addr::LOCALHOST.into()
    } else {
        run.address
    };
    let address = std::net::SocketAddr::from((host, run.port)).to_string();
    let token = std::env::var(super::TOKEN_VARIABLE).ok();
    let no_answer = |source| CallError::NoAnswer {
        run: run.run.clone(),
        source,
    };
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(&address)
            .await
            .map_err(|source| CallError::Unreachable {
                run: run.run.clone(),
                address: address.clone(),
                source,
            })?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(no_answer)?;
        tokio::spawn(connection);
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, &address)
            .header(hyper::header::CONTENT_TYPE, "application/json");
        if let Some(token) = &token {
            request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(CallError::Request)?;
        let response = sender.send_request(request).await.map_err(no_answer)?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(no_answer)?
            .to_bytes();
        Ok((status, bytes.to_vec()))
    };
    runtime.block_on(async {
        tokio::time::timeout(limit, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(CallError::Timeout {
                    run: run.run.clone(),
                    limit: crate::plan::settings::human(limit),
                })
            })
    })
}

/// The body of a successful answer parsed as `T`, or the error the
/// endpoint gave.
pub fn answer<T: serde::de::DeserializeOwned>(status: u16, body: &[u8]) -> Result<T, CallError> {
    if status == 200 {
        serde_json::from_slice(body).map_err(CallError::Unreadable)
    } else {
        Err(CallError::Refused {
            status,
            message: serde_json::from_slice::<ErrorAnswer>(body)
                .map(|e| e.error)
                .unwrap_or_else(|_| format!("HTTP status {status}")),
        })
    }
}
