//! `type: socket`: text lines from a TCP server.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{check_max_record_bytes, default_max_record_bytes};
use crate::diag::Diagnostic;
use crate::nodes::{Instance, PlannedSource, SourceType};
use crate::operators::sources::socket::SocketSource;
use crate::operators::{OpError, Source};
use crate::plan::NodeCx;
use crate::runtime::cancel::Cancel;

/// Text lines from a TCP server, like Flink's socketTextStream.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Socket {
    /// `host:port` of the server to connect to.
    pub address: String,
    /// Reconnect, with backoff, when the connection closes or fails.
    #[serde(default)]
    pub reconnect: bool,
    /// The longest line kept, in bytes, its line ending aside; a longer
    /// one is a bad record for `on_error`, read past without being kept.
    #[serde(default = "default_max_record_bytes")]
    pub max_record_bytes: u32,
}

impl SourceType for Socket {
    fn plan(&self, cx: &mut NodeCx<'_, '_>) -> Box<dyn PlannedSource> {
        cx.single_instance("socket");
        check_max_record_bytes(cx, self.max_record_bytes);
        let address = &self.address;
        let valid = address.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        if !valid {
            let name = cx.name();
            let d = Diagnostic::error(
                "invalid-address",
                format!("invalid address `{address}` for source `{name}`"),
            )
            .at(cx.span("address"), "expected host:port")
            .help("e.g. `address: 127.0.0.1:8888`");
            cx.error(d);
        }
        Box::new(self.clone())
    }
}

impl PlannedSource for Socket {
    /// What was read from a connection cannot be asked for again.
    fn replayable(&self) -> bool {
        false
    }

    fn build(&self, _: Instance, cancel: &Cancel) -> Result<Box<dyn Source>, OpError> {
        Ok(Box::new(SocketSource::new(self, cancel.clone())))
    }
}
