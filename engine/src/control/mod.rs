//! Reaching a running job from outside: its control endpoint and the run
//! files that let `dataflow list`, `savepoint` and `stop` find it.
//!
//! Each run serves a small HTTP API on 127.0.0.1 ([`server`], documented
//! for clients in docs/openapi.yaml) and writes a
//! run file naming its job, run id, process and port ([`registry`]); the
//! commands read the run files and call the endpoint ([`client`]).
//!
//! | Method and path | Does |
//! |---|---|
//! | `GET /v1/job` | the run's [`RunInfo`] |
//! | `GET /v1/plan` | the plan and the settings in force, as `check --format json` shows them |
//! | `GET /v1/spec` | the spec file's name and text, secrets redacted |
//! | `GET /v1/metrics` | each instance's counters, rates, backpressure, idle time and watermark |
//! | `GET /v1/checkpoints` | checkpoint counts and history, in progress and ended |
//! | `GET /metrics` | the same figures in Prometheus's text format ([`prometheus`]) |
//! | `POST /v1/savepoint` `{"to": "<location>"}` | takes a savepoint; answers with its location |
//! | `POST /v1/stop` `{"savepoint_to": "<location>", "drain": true}` | takes a savepoint, then stops the job; with `drain`, every window closes first |

pub mod client;
pub mod prometheus;
pub mod registry;
pub mod server;

use serde::{Deserialize, Serialize};

/// What a run file and `GET /v1/job` say about a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    pub job: String,
    pub run: String,
    pub pid: u32,
    /// The control endpoint's port.
    pub port: u16,
    /// The address it listens on: 127.0.0.1 unless the run was given another.
    #[serde(default = "loopback")]
    pub address: std::net::IpAddr,
    /// The spec file, as given to `dataflow run`.
    pub spec: String,
    /// Milliseconds since the Unix epoch.
    pub started_at_ms: u64,
}

fn loopback() -> std::net::IpAddr {
    std::net::Ipv4Addr::LOCALHOST.into()
}

/// The environment variable holding a run's control token: the run
/// requires it, and the commands that call a run send it.
pub const TOKEN_VARIABLE: &str = "DATAFLOW_CONTROL_TOKEN";

/// The body of `POST /v1/savepoint` and `POST /v1/stop`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavepointBody {
    /// Where the savepoint goes (`/v1/savepoint`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Where the savepoint goes (`/v1/stop`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub savepoint_to: Option<String>,
    /// Close every window before the savepoint (`/v1/stop`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drain: bool,
}

/// The answer to a savepoint or a stop.
#[derive(Debug, Serialize, Deserialize)]
pub struct SavepointAnswer {
    pub checkpoint_id: u64,
    pub location: String,
}

/// An error answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorAnswer {
    pub error: String,
}
