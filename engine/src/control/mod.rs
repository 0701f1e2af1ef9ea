//! Reaching a running job from outside: its control endpoint and the run
//! files that let `dataflow list`, `savepoint` and `stop` find it.
//!
//! Each run serves a small HTTP API on 127.0.0.1 ([`server`]) and writes a
//! run file naming its job, run id, process and port ([`registry`]); the
//! commands read the run files and call the endpoint ([`client`]).
//!
//! | Method and path | Does |
//! |---|---|
//! | `GET /v1/job` | the run's [`RunInfo`] |
//! | `POST /v1/savepoint` `{"to": "<location>"}` | takes a savepoint; answers with its location |
//! | `POST /v1/stop` `{"savepoint_to": "<location>", "drain": true}` | takes a savepoint, then stops the job; with `drain`, every window closes first |

pub mod client;
pub mod registry;
pub mod server;

use serde::{Deserialize, Serialize};

/// What a run file and `GET /v1/job` say about a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    pub job: String,
    pub run: String,
    pub pid: u32,
    /// The control endpoint's port on 127.0.0.1.
    pub port: u16,
    /// The spec file, as given to `dataflow run`.
    pub spec: String,
    /// Milliseconds since the Unix epoch.
    pub started_at_ms: u64,
}

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
