//! The record model: every record flowing through a pipeline is a [`Value`].
//!
//! Values are cheap to clone on purpose: strings are slices of a shared
//! buffer ([`Str`]), so splitting a line into words or copying a field into a
//! key never copies bytes, and field names ([`Name`]) are interned
//! when an expression is compiled.

use std::fmt;
use std::sync::Arc;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// A structured record value: null, bool, int, float, string, list or map.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Str),
    List(Vec<Value>),
    Map(Fields),
}

/// The fields of a map value, in insertion order.
///
/// Records have few fields, so a vector scanned linearly beats a hash map
/// and keeps the order a user wrote in an expression.
pub type Fields = Vec<(Name, Value)>;

/// A field name. Names written in a spec are [`intern`]ed once, when the
/// plan is compiled, into a `&'static str`: cloning and dropping one costs
/// nothing, and a record built by one operator and read by another holds
/// the very same name, so a lookup is one pointer comparison. Names that
/// come with data (keys of JSON input) are shared `Arc<str>`s instead, so
/// data never grows the interned set.
#[derive(Clone)]
pub struct Name(NameRepr);

#[derive(Clone)]
enum NameRepr {
    Interned(&'static str),
    Shared(Arc<str>),
}

impl std::ops::Deref for Name {
    type Target = str;

    #[inline]
    fn deref(&self) -> &str {
        match &self.0 {
            NameRepr::Interned(s) => s,
            NameRepr::Shared(s) => s,
        }
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Name {
        Name(NameRepr::Shared(Arc::from(s)))
    }
}

impl From<String> for Name {
    fn from(s: String) -> Name {
        Name(NameRepr::Shared(Arc::from(s)))
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        same_name(self, other)
    }
}

impl Eq for Name {}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Name) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Name {
    fn cmp(&self, other: &Name) -> std::cmp::Ordering {
        (**self).cmp(&**other)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

/// Whether a field is called `name`: by pointer first, by text otherwise.
#[inline]
fn same_name(field: &str, name: &str) -> bool {
    std::ptr::eq(field.as_ptr(), name.as_ptr()) && field.len() == name.len() || field == name
}

type Interned = std::sync::Mutex<std::collections::HashSet<&'static str>>;

fn interned_names() -> std::sync::MutexGuard<'static, std::collections::HashSet<&'static str>> {
    static NAMES: std::sync::OnceLock<Interned> = std::sync::OnceLock::new();
    NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The one shared copy of a field name written in a spec. Called when
/// expressions and operators are compiled, never per record; each distinct
/// name is kept for the life of the process.
pub fn intern(name: &str) -> Name {
    let mut names = interned_names();
    let name = match names.get(name) {
        Some(known) => *known,
        None => {
            let leaked: &'static str = Box::leak(name.into());
            names.insert(leaked);
            leaked
        }
    };
    Name(NameRepr::Interned(name))
}

/// Field names a thread has read from data, so that records of one shape
/// share their names instead of allocating them per record.
const DATA_NAMES: usize = 256;

/// The name of a field read from data: the interned one when a spec uses
/// it (so lookups compare pointers), else a shared copy. A thread keeps
/// the first [`DATA_NAMES`] names it sees; data with more distinct field
/// names gets fresh copies of the rest, so it cannot grow memory.
fn data_name(text: &str) -> Name {
    thread_local! {
        static SEEN: std::cell::RefCell<std::collections::HashMap<Box<str>, Name>> =
            Default::default();
    }
    SEEN.with_borrow_mut(|seen| {
        if let Some(name) = seen.get(text) {
            return name.clone();
        }
        if seen.len() >= DATA_NAMES {
            return Name::from(text);
        }
        let name = match interned_names().get(text) {
            Some(known) => Name(NameRepr::Interned(known)),
            None => Name::from(text),
        };
        seen.insert(text.into(), name.clone());
        name
    })
}

/// Reads a map key as a [`data_name`], without an allocation when known.
struct NameSeed;

impl<'de> de::DeserializeSeed<'de> for NameSeed {
    type Value = Name;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Name, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for NameSeed {
    type Value = Name;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Name, E> {
        Ok(data_name(s))
    }
}

impl Value {
    /// The name of this value's type, as shown in error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Map(_) => "map",
        }
    }

    /// The value of field `name`, if this is a map that has it.
    pub fn get(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Map(fields) => fields
                .iter()
                .find(|(k, _)| same_name(k, name))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// A mutable reference to field `name`, if this is a map that has it.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Value> {
        match self {
            Value::Map(fields) => fields
                .iter_mut()
                .find(|(k, _)| same_name(k, name))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Follows a field path (`a.b.c`) from this value.
    pub fn path<'a>(&'a self, path: &[Name]) -> Option<&'a Value> {
        path.iter().try_fold(self, |v, name| v.get(name))
    }

    /// A number as a float; NaN for anything else.
    pub fn as_f64(&self) -> f64 {
        match self {
            Value::Int(n) => *n as f64,
            Value::Float(x) => *x,
            _ => f64::NAN,
        }
    }

    /// The string inside, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s.as_str()),
            _ => None,
        }
    }

    /// Renders the value as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "null".to_owned())
    }

    /// Appends the value as JSON, with no string of its own in between.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let start = out.len();
        if serde_json::to_writer(&mut *out, self).is_err() {
            out.truncate(start);
            out.extend_from_slice(self.to_json().as_bytes());
        }
    }

    /// Appends the value's text form for the `text` and `csv` formats: a
    /// string as itself, anything else as JSON.
    pub fn write_text(&self, out: &mut Vec<u8>) {
        match self {
            Value::Str(s) => out.extend_from_slice(s.as_str().as_bytes()),
            other => other.write_json(out),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(Str::from(s))
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Int(n)
    }
}

/// An immutable UTF-8 string: short ones inline, longer ones a slice of a
/// shared buffer.
///
/// Neither cloning nor slicing copies a long string: a line read from a
/// file is one buffer, and long pieces split out of it are ranges into it.
/// Short strings (most words and keys) are copied into the value instead,
/// so creating, cloning and dropping one never touches a reference count:
/// on the seed job those atomic counts were four per word.
#[derive(Clone)]
pub struct Str(Repr);

/// The longest string kept inline: with its length, 16 bytes, which keeps
/// a `Str` (and so a [`Value`]) as small as a shared slice alone.
const INLINE: usize = 15;

#[derive(Clone)]
enum Repr {
    Inline { len: u8, bytes: [u8; INLINE] },
    Shared { buf: Arc<str>, start: u32, end: u32 },
}

impl Str {
    /// The string's text.
    #[inline]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Only ever filled from a `&str` cut at character boundaries,
            // so this never fails; re-checking a few bytes is the price of
            // forbidding unsafe code.
            Repr::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            Repr::Shared { buf, start, end } => &buf[*start as usize..*end as usize],
        }
    }

    /// The string's UTF-8 bytes, without the check [`Str::as_str`] makes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Repr::Shared { buf, start, end } => &buf.as_bytes()[*start as usize..*end as usize],
        }
    }

    /// A sub-slice of this string, sharing its buffer when long; `range` is
    /// in bytes relative to this string and must lie on character boundaries.
    #[inline]
    pub fn slice(&self, range: std::ops::Range<usize>) -> Str {
        match &self.0 {
            Repr::Shared { buf, start, .. } if range.len() > INLINE => {
                let from = *start as usize + range.start;
                let to = *start as usize + range.end;
                debug_assert!(buf.is_char_boundary(from) && buf.is_char_boundary(to));
                Str(Repr::Shared {
                    buf: Arc::clone(buf),
                    start: from as u32,
                    end: to as u32,
                })
            }
            Repr::Shared { buf, start, .. } => {
                let from = *start as usize + range.start;
                let text = &buf[from..*start as usize + range.end];
                // Copy a whole inline width when the buffer has it: a fixed
                // size copies in two moves, a variable one calls `memcpy`.
                // The bytes past `len` are never read.
                match buf.as_bytes().get(from..from + INLINE) {
                    Some(wide) => {
                        let mut bytes = [0; INLINE];
                        bytes.copy_from_slice(wide);
                        Str(Repr::Inline {
                            len: text.len() as u8,
                            bytes,
                        })
                    }
                    None => Str::inline(text.as_bytes()),
                }
            }
            Repr::Inline { .. } => Str::inline(self.as_str()[range].as_bytes()),
        }
    }

    /// A copy of `bytes` (at most [`INLINE`] of them, valid UTF-8) held inline.
    #[inline]
    fn inline(bytes: &[u8]) -> Str {
        debug_assert!(bytes.len() <= INLINE && std::str::from_utf8(bytes).is_ok());
        let mut inline = [0; INLINE];
        inline[..bytes.len()].copy_from_slice(bytes);
        Str(Repr::Inline {
            len: bytes.len() as u8,
            bytes: inline,
        })
    }
}

impl From<&str> for Str {
    fn from(s: &str) -> Self {
        if s.len() <= INLINE {
            return Str::inline(s.as_bytes());
        }
        Str::from(Arc::<str>::from(s))
    }
}

impl From<String> for Str {
    fn from(s: String) -> Self {
        if s.len() <= INLINE {
            return Str::inline(s.as_bytes());
        }
        Str::from(Arc::<str>::from(s))
    }
}

impl From<Arc<str>> for Str {
    /// Strings longer than 4 GiB are cut at the last character boundary
    /// below that size; no record is that large in practice.
    fn from(buf: Arc<str>) -> Self {
        if buf.len() <= INLINE {
            return Str::inline(buf.as_bytes());
        }
        let mut end = buf.len().min(u32::MAX as usize);
        while !buf.is_char_boundary(end) {
            end -= 1;
        }
        Str(Repr::Shared {
            buf,
            start: 0,
            end: end as u32,
        })
    }
}

impl PartialEq for Str {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Str {}

impl std::hash::Hash for Str {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state)
    }
}

impl fmt::Debug for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json())
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(n) => s.serialize_i64(*n),
            Value::Float(x) => s.serialize_f64(*x),
            Value::Str(v) => s.serialize_str(v.as_str()),
            Value::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Map(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    map.serialize_entry(&**k, v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Int(n))
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Value, E> {
        Ok(i64::try_from(n).map_or(Value::Float(n as f64), Value::Int))
    }
    fn visit_f64<E: de::Error>(self, x: f64) -> Result<Value, E> {
        Ok(Value::Float(x))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        Ok(Value::from(s))
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
        Ok(Value::Str(Str::from(s)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut fields: Fields = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(k) = map.next_key_seed(NameSeed)? {
            let v = map.next_value::<Value>()?;
            match fields.iter_mut().find(|(name, _)| *name == k) {
                Some(slot) => slot.1 = v,
                None => fields.push((k, v)),
            }
        }
        Ok(Value::Map(fields))
    }
}

#[cfg(test)]
mod tests {

    /// `write_json` appends exactly what `to_json` returns, for values
    /// with escapes, non-ASCII text and nesting.
    #[test]
    fn write_json_appends_what_to_json_returns() {
        let values: Vec<Value> = [
            r#"{"word": "naïve \"quoted\"\n", "n": -3, "x": 1.5, "ok": true, "none": null}"#,
            r#"[1, "二", {"a": ["\u0001", "€"]}]"#,
            r#""plain""#,
        ]
        .iter()
        .map(|text| serde_json::from_str(text).unwrap())
        .collect();
        for value in values {
            let mut out = b"before:".to_vec();
            value.write_json(&mut out);
            assert_eq!(out, format!("before:{}", value.to_json()).into_bytes());
        }
    }
    use super::*;

    /// JSON field names a spec uses come back as the interned name (a
    /// lookup compares pointers); data with more distinct names than the
    /// cache holds still reads every one.
    #[test]
    fn field_names_from_data_share_the_interned_ones() {
        let spec_name = intern("a_name_a_spec_uses");
        let record: Value = serde_json::from_str(r#"{"a_name_a_spec_uses": 1}"#).unwrap();
        let Value::Map(fields) = &record else {
            panic!()
        };
        assert!(std::ptr::eq(fields[0].0.as_ptr(), spec_name.as_ptr()));
        for i in 0..DATA_NAMES * 2 {
            let text = format!(r#"{{"f{i}": {i}, "f{i}": {}}}"#, i + 1);
            let record: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(record.to_json(), format!(r#"{{"f{i}":{}}}"#, i + 1));
        }
    }

    #[test]
    fn a_value_is_no_larger_than_a_shared_slice_and_its_tag() {
        assert_eq!(std::mem::size_of::<Str>(), 24);
        assert_eq!(std::mem::size_of::<Value>(), 32);
    }

    #[test]
    fn long_slices_share_the_buffer_and_short_ones_are_inline() {
        let line = Str::from("a line longer than fifteen bytes,with two parts");
        let long = line.slice(0..32);
        let short = line.slice(33..47);
        let shares = |s: &Str| match (&s.0, &line.0) {
            (Repr::Shared { buf: a, .. }, Repr::Shared { buf: b, .. }) => Arc::ptr_eq(a, b),
            _ => false,
        };
        assert!(shares(&long));
        assert!(matches!(short.0, Repr::Inline { .. }));
        assert_eq!(long.as_str(), "a line longer than fifteen bytes");
        assert_eq!(short.as_str(), "with two parts");
        assert_eq!(short.slice(5..8).as_str(), "two");
        // Copied a whole inline width from the middle of the line: what
        // follows the word in that copy does not make it differ.
        let word = line.slice(2..6);
        assert_eq!((word.as_str(), &word), ("line", &Str::from("line")));
        let hash = |s: &Str| {
            use std::hash::{BuildHasher, BuildHasherDefault};
            BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(s)
        };
        assert_eq!(hash(&word), hash(&Str::from("line")));
        assert_eq!(
            Str::from("é".repeat(8)).slice(2..16).as_str(),
            "é".repeat(7)
        );
    }

    #[test]
    fn slices_compare_by_text() {
        let line = Str::from("a,bb,ccc");
        let word = line.slice(2..4);
        assert_eq!(word.as_str(), "bb");
        assert_eq!(word, Str::from("bb"));
        assert_eq!(word.slice(1..2).as_str(), "b");
    }

    #[test]
    fn json_round_trip_keeps_field_order() {
        let v: Value = serde_json::from_str(r#"{"b":1,"a":[true,null,2.5,"x"]}"#).unwrap();
        assert_eq!(v.to_json(), r#"{"b":1,"a":[true,null,2.5,"x"]}"#);
    }
}
