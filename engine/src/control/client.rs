//! Calling a run's control endpoint, for `dataflow list`, `savepoint` and
//! `stop`.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};

use super::{ErrorAnswer, RunInfo};

/// Sends one request to the endpoint of `run`; returns the status and the
/// body, or why there is no answer within `limit`.
pub fn call(
    run: &RunInfo,
    method: Method,
    path: &str,
    body: Option<String>,
    limit: Duration,
) -> Result<(u16, Vec<u8>), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| e.to_string())?;
    let address = format!("127.0.0.1:{}", run.port);
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(&address)
            .await
            .map_err(|e| format!("cannot reach run {} at {address}: {e}", run.run))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, &address)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("run {} did not answer: {e}", run.run))?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, bytes.to_vec()))
    };
    runtime.block_on(async {
        tokio::time::timeout(limit, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "run {} did not answer within {}",
                    run.run,
                    crate::plan::settings::human(limit)
                ))
            })
    })
}

/// The body of a successful answer parsed as `T`, or the error the
/// endpoint gave.
pub fn answer<T: serde::de::DeserializeOwned>(status: u16, body: &[u8]) -> Result<T, String> {
    if status == 200 {
        serde_json::from_slice(body).map_err(|e| format!("an answer that cannot be read: {e}"))
    } else {
        Err(serde_json::from_slice::<ErrorAnswer>(body)
            .map(|e| e.error)
            .unwrap_or_else(|_| format!("HTTP status {status}")))
    }
}
