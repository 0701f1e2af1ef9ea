//! Kafka: what the `kafka` source and sink share. The checks of their
//! settings and the rule that deals partitions to instances are plain
//! code, in every build; talking to brokers ([`client`]) needs the `kafka`
//! feature, which builds librdkafka.

mod assign;
#[cfg(feature = "kafka")]
pub mod client;
#[cfg(feature = "kafka")]
pub mod recovery;
pub mod transactions;

pub use assign::owner;

use indexmap::IndexMap;

use crate::diag::Diagnostic;
use crate::plan::NodeCx;

/// Refuses a Kafka node (`noun`: source or sink) in a build without Kafka.
pub fn check_built(cx: &mut NodeCx<'_, '_>, noun: &str) {
    if cfg!(feature = "kafka") {
        return;
    }
    let name = cx.name();
    let d = Diagnostic::error(
        "kafka-not-built",
        format!("{noun} `{name}` uses Kafka, but this dataflow was built without Kafka"),
    )
    .at(cx.span("type"), "not in this build")
    .help("build with the `kafka` feature (on by default): `cargo build --release`");
    cx.error(d);
}

/// Checks `bootstrap_servers`: one or more `host:port`, comma-separated.
pub fn check_servers(cx: &mut NodeCx<'_, '_>, servers: &str) {
    let valid = !servers.trim().is_empty()
        && servers.split(',').all(|server| {
            server.trim().rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
            })
        });
    if !valid {
        let name = cx.name();
        let d = Diagnostic::error(
            "invalid-address",
            format!("invalid `bootstrap_servers` `{servers}` for `{name}`"),
        )
        .at(
            cx.span("bootstrap_servers"),
            "expected host:port[,host:port…]",
        )
        .help("e.g. `bootstrap_servers: 127.0.0.1:9092`");
        cx.error(d);
    }
}

/// Checks a topic name as Kafka does: 1 to 249 of `a-z A-Z 0-9 . _ -`,
/// and not `.` or `..`.
pub fn check_topic(cx: &mut NodeCx<'_, '_>, path: &[&str], topic: &str) {
    let valid = !topic.is_empty()
        && topic.len() <= 249
        && topic != "."
        && topic != ".."
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !valid {
        let name = cx.name();
        let d = Diagnostic::error(
            "invalid-topic",
            format!("`{topic}` of `{name}` is not a Kafka topic name"),
        )
        .at(cx.span_in(path), "invalid topic")
        .help("a topic name is 1 to 249 letters, digits, `.`, `_` and `-`");
        cx.error(d);
    }
}

/// Checks `librdkafka_options`: none of those the node sets from its own
/// settings (`own`: the property and the setting to use instead).
pub fn check_properties(
    cx: &mut NodeCx<'_, '_>,
    properties: &IndexMap<String, String>,
    own: &[(&str, &str)],
) {
    for key in properties.keys() {
        if let Some((_, instead)) = own.iter().find(|(p, _)| p == key) {
            let name = cx.name();
            let d = Diagnostic::error(
                "invalid-property",
                format!("`{name}` sets the property `{key}` itself"),
            )
            .at(cx.span_in(&["librdkafka_options", key]), "set by dataflow")
            .help(format!("use {instead}"));
            cx.error(d);
        }
    }
}

/// Whether a client property holds a secret: its value is masked
/// wherever the spec is shown.
pub fn is_secret_property(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "password",
        "passphrase",
        "oauthbearer.config",
        "secret",
        "jaas",
        "token",
        "key.pem",
        "credentials",
    ]
    .iter()
    .any(|s| key.contains(s))
}

/// The values of the secret properties.
pub fn secret_values(properties: &IndexMap<String, String>) -> Vec<&str> {
    properties
        .iter()
        .filter(|(k, v)| is_secret_property(k) && !v.is_empty())
        .map(|(_, v)| v.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_properties_are_known_by_name() {
        for secret in [
            "sasl.password",
            "ssl.key.password",
            "ssl.keystore.password",
            "sasl.oauthbearer.client.secret",
            "sasl.jaas.config",
            "ssl.key.pem",
            "sasl.oauthbearer.config",
            "sasl.oauthbearer.assertion.private.key.passphrase",
        ] {
            assert!(is_secret_property(secret), "{secret}");
        }
        for plain in [
            "sasl.username",
            "security.protocol",
            "sasl.mechanism",
            "client.id",
        ] {
            assert!(!is_secret_property(plain), "{plain}");
        }
    }
}
