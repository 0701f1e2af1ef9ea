//! Checkpoint store locations: `file:///path`, `s3://bucket/prefix?endpoint=...`.
//!
//! Only the schemes whose OpenDAL service is compiled in (cargo features
//! `store-fs`, `store-s3`, `store-hdfs`) are accepted, so a spec that
//! `check` accepts never fails later for want of a service.

use std::collections::BTreeMap;
use std::fmt;

use url::Url;

/// A parsed checkpoint store location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreLocation {
    pub scheme: Scheme,
    /// The bucket (s3) or name node (hdfs); empty for `file`.
    pub authority: String,
    /// The root path inside the store, always starting with `/`.
    pub root: String,
    /// Service options from the query string (`endpoint`, `region`, ...).
    pub options: BTreeMap<String, String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    File,
    S3,
    Hdfs,
}

impl Scheme {
    const ALL: [Scheme; 3] = [Scheme::File, Scheme::S3, Scheme::Hdfs];

    pub fn name(self) -> &'static str {
        match self {
            Scheme::File => "file",
            Scheme::S3 => "s3",
            Scheme::Hdfs => "hdfs",
        }
    }

    pub fn compiled_in(self) -> bool {
        match self {
            Scheme::File => cfg!(feature = "store-fs"),
            Scheme::S3 => cfg!(feature = "store-s3"),
            Scheme::Hdfs => cfg!(feature = "store-hdfs"),
        }
    }

    /// The query options a location of this scheme may carry.
    fn options(self) -> &'static [&'static str] {
        match self {
            Scheme::File => &[],
            Scheme::S3 => &["endpoint", "region", "access_key_id", "secret_access_key"],
            Scheme::Hdfs => &["user"],
        }
    }
}

/// The schemes this build accepts, for messages.
pub fn compiled_schemes() -> Vec<&'static str> {
    Scheme::ALL
        .into_iter()
        .filter(|s| s.compiled_in())
        .map(Scheme::name)
        .collect()
}

/// Why a store location is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreLocationError {
    #[error("`{0}` is not a store location: {1}")]
    Malformed(String, String),
    #[error("store scheme `{scheme}` is not supported by this build")]
    NotCompiledIn { scheme: String },
    #[error("unknown option `{option}` for an `{scheme}` store")]
    UnknownOption {
        scheme: &'static str,
        option: String,
    },
}

impl StoreLocation {
    /// The local folder at the absolute path `root`.
    pub fn local(root: &str) -> Result<StoreLocation, StoreLocationError> {
        if root.split('/').any(|p| p == "..") {
            return Err(StoreLocationError::Malformed(
                root.to_owned(),
                "`..` is not allowed in a store location".to_owned(),
            ));
        }
        if !Scheme::File.compiled_in() {
            return Err(StoreLocationError::NotCompiledIn {
                scheme: Scheme::File.name().to_owned(),
            });
        }
        Ok(StoreLocation {
            scheme: Scheme::File,
            authority: String::new(),
            root: root.to_owned(),
            options: BTreeMap::new(),
        })
    }

    pub fn parse(text: &str) -> Result<StoreLocation, StoreLocationError> {
        let malformed = |why: &str| StoreLocationError::Malformed(redact(text), why.to_owned());
        let url = Url::parse(text).map_err(|e| malformed(&e.to_string()))?;
        let scheme = Scheme::ALL
            .into_iter()
            .find(|s| s.name() == url.scheme())
            .filter(|s| s.compiled_in())
            .ok_or_else(|| StoreLocationError::NotCompiledIn {
                scheme: url.scheme().to_owned(),
            })?;
        let authority = url.host_str().unwrap_or_default().to_owned();
        match scheme {
            // `file://localhost/x` and `file:x` mean other things to other
            // tools (`file:tmp/x` is read as `/tmp/x`): one spelling only.
            Scheme::File if !authority.is_empty() || !text.starts_with("file:///") => {
                return Err(malformed(
                    "a file location is `file:///absolute/path` (three slashes)",
                ))
            }
            Scheme::S3 | Scheme::Hdfs if authority.is_empty() => {
                return Err(malformed(
                    "the location needs a bucket or host: `s3://bucket/prefix`",
                ))
            }
            _ => {}
        }
        // The URL parser resolves `..` away, percent-encoded too (`%2e%2e`);
        // refuse it before it can escape.
        let raw_path = text.split('?').next().unwrap_or_default();
        let dot_dot = |p: &str| p.to_ascii_lowercase().replace("%2e", ".") == "..";
        if raw_path.split('/').any(dot_dot) {
            return Err(malformed("`..` is not allowed in a store location"));
        }
        let mut options = BTreeMap::new();
        for (k, v) in url.query_pairs() {
            if !scheme.options().contains(&k.as_ref()) {
                return Err(StoreLocationError::UnknownOption {
                    scheme: scheme.name(),
                    option: k.into_owned(),
                });
            }
            options.insert(k.into_owned(), v.into_owned());
        }
        let path = url.path();
        let root = if path.is_empty() {
            "/".to_owned()
        } else {
            path.to_owned()
        };
        Ok(StoreLocation {
            scheme,
            authority,
            root,
            options,
        })
    }
}

/// Query options whose values are secrets.
const SECRET_OPTIONS: [&str; 4] = ["secret_access_key", "session_token", "password", "token"];

/// Whether an option's name, as written in a query (percent-encoded or
/// not, as the parser reads it), names a secret.
fn is_secret(written: &str) -> bool {
    let decoded = url::form_urlencoded::parse(format!("{written}=").as_bytes())
        .next()
        .map(|(k, _)| k.into_owned())
        .unwrap_or_default();
    SECRET_OPTIONS
        .iter()
        .any(|s| decoded.eq_ignore_ascii_case(s) || written.eq_ignore_ascii_case(s))
}

/// The values of the secret options of `location`, as it was parsed.
pub fn secrets(location: &StoreLocation) -> Vec<&str> {
    location
        .options
        .iter()
        .filter(|(k, _)| is_secret(k))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// A location as typed, with the value of every secret option replaced by
/// `***`: what a message or `check` may show of it.
pub fn redact(text: &str) -> String {
    let Some((base, query)) = text.split_once('?') else {
        return text.to_owned();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if is_secret(key) => format!("{key}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{base}?{}", pairs.join("&"))
}

/// Any text holding store locations (a spec), with the value of every
/// secret option in a location's query replaced by `***`: an option is a
/// name of [`SECRET_OPTIONS`] after `?` or `&` and before `=`, and its
/// value runs to the next `&`, quote, bracket, comma or space.
pub fn redact_text(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut at = 0;
    while let Some(found) = lower[at..].find(['?', '&']) {
        let name_at = at + found + 1;
        at = name_at;
        let Some(name) = SECRET_OPTIONS
            .iter()
            .find(|s| lower[name_at..].starts_with(&format!("{s}=")))
        else {
            continue;
        };
        let value_at = name_at + name.len() + 1;
        let end = text[value_at..]
            .find(|c: char| "&\"'}],#".contains(c) || c.is_whitespace())
            .map_or(text.len(), |e| value_at + e);
        out.push_str(&text[copied..value_at]);
        out.push_str("***");
        copied = end;
        at = end;
    }
    out.push_str(&text[copied..]);
    out
}

impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme.name(),
            self.authority,
            self.root
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_from_what_is_shown() {
        let typed = "s3://b/p?region=x&secret_access_key=S3CR3T&session_token=T0K&access_key_id=AK";
        assert_eq!(
            redact(typed),
            "s3://b/p?region=x&secret_access_key=***&session_token=***&access_key_id=AK"
        );
        let err = StoreLocation::parse("s3://[bad/p?secret_access_key=S3CR3T")
            .unwrap_err()
            .to_string();
        assert!(
            !err.contains("S3CR3T") && err.contains("secret_access_key=***"),
            "{err}"
        );
    }

    #[test]
    fn secrets_are_redacted_from_a_whole_spec() {
        let spec = "checkpoint:\n  store: \"s3://b/p?region=x&secret_access_key=abc/+=&access_key_id=k\"\n  other: 's3://b?Token=t0k'\nx: s3://b?password=pw}\n";
        assert_eq!(
            redact_text(spec),
            "checkpoint:\n  store: \"s3://b/p?region=x&secret_access_key=***&access_key_id=k\"\n  other: 's3://b?Token=***'\nx: s3://b?password=***}\n"
        );
        assert_eq!(
            redact_text("no secrets here ? & ="),
            "no secrets here ? & ="
        );
        assert_eq!(
            redact_text("s3://b?session_token="),
            "s3://b?session_token=***"
        );
    }

    #[test]
    fn parses_file_and_s3() {
        let f = StoreLocation::parse("file:///tmp/dataflow/checkpoints").unwrap();
        assert_eq!(
            (f.scheme, f.root.as_str()),
            (Scheme::File, "/tmp/dataflow/checkpoints")
        );
        let s = StoreLocation::parse(
            "s3://bucket/prefix?endpoint=http://127.0.0.1:9000&region=us-east-1",
        )
        .unwrap();
        assert_eq!(s.authority, "bucket");
        assert_eq!(s.options["endpoint"], "http://127.0.0.1:9000");
    }

    #[test]
    fn rejects_bad_locations() {
        assert!(matches!(
            StoreLocation::parse("/tmp/x"),
            Err(StoreLocationError::Malformed(..))
        ));
        assert!(matches!(
            StoreLocation::parse("file://host/tmp"),
            Err(StoreLocationError::Malformed(..))
        ));
        assert!(matches!(
            StoreLocation::parse("gs://b/p"),
            Err(StoreLocationError::NotCompiledIn { .. })
        ));
        assert!(matches!(
            StoreLocation::parse("s3://b/p?colour=red"),
            Err(StoreLocationError::UnknownOption { .. })
        ));
        for bad in [
            "file:///a/../b",
            "file:///a/%2e%2e/b",
            "file:///a/%2E./b",
            "s3://b/p/.%2e/q",
            "file://localhost/tmp/x",
            "file:tmp/x",
            "file:/tmp/x",
        ] {
            assert!(
                matches!(
                    StoreLocation::parse(bad),
                    Err(StoreLocationError::Malformed(..))
                ),
                "{bad}"
            );
        }
        assert!(StoreLocation::local("/a/../b").is_err());
        assert!(StoreLocation::parse("file:///a/..b/c").is_ok());
    }
}
