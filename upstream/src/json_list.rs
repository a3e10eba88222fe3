//! Collection bodies (`{"value": [...]}`) parsed element by element as they
//! arrive. A list of 10,000 oCIS spaces is about 11 MB of JSON; buffering it
//! and then parsing it into a `Vec` held the body twice and every element
//! whole at once. Here the body is read in chunks on a blocking thread
//! (`tokio_util`'s `SyncIoBridge` under `serde_json`'s reader), each element
//! of `value` goes to `keep` as soon as it is parsed, and only what `keep`
//! returns is retained.

use std::fmt;
use std::io::{self, BufRead, BufReader};
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use futures::TryStreamExt;
use serde::de::{DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use tokio_util::io::{StreamReader, SyncIoBridge};

/// Why a streamed list failed.
#[derive(Debug)]
pub(crate) enum ListError {
    /// Reading the body failed (connection, timeout).
    Transport(reqwest::Error),
    /// The body is not a collection of `T`.
    Invalid(String),
}

/// Parses `response`'s body as a collection of `T`, handing each element to
/// `keep`. An empty or `null` body is an empty collection; keys other than
/// `value` are skipped unparsed.
pub(crate) async fn collect<T, U, F>(
    response: reqwest::Response,
    keep: F,
) -> Result<Vec<U>, ListError>
where
    T: DeserializeOwned + 'static,
    U: Send + 'static,
    F: FnMut(T) -> U + Send + 'static,
{
    let failure: Arc<Mutex<Option<reqwest::Error>>> = Arc::default();
    let record = failure.clone();
    let body = response.bytes_stream().map_err(move |error| {
        let text = error.to_string();
        *record.lock().unwrap_or_else(|p| p.into_inner()) = Some(error);
        io::Error::other(text)
    });
    let reader = BufReader::with_capacity(64 * 1024, SyncIoBridge::new(StreamReader::new(body)));
    let parsed = tokio::task::spawn_blocking(move || parse(reader, keep))
        .await
        .map_err(|e| ListError::Invalid(format!("parsing stopped: {e}")))?;
    parsed.map_err(
        |error| match failure.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(transport) => ListError::Transport(transport),
            None => ListError::Invalid(error.to_string()),
        },
    )
}

fn parse<T: DeserializeOwned, U>(
    mut reader: impl BufRead,
    keep: impl FnMut(T) -> U,
) -> serde_json::Result<Vec<U>> {
    if !skip_whitespace(&mut reader).map_err(serde_json::Error::io)? {
        return Ok(Vec::new());
    }
    let mut de = serde_json::Deserializer::from_reader(reader);
    let list = Body(keep, PhantomData).deserialize(&mut de)?;
    de.end()?;
    Ok(list)
}

/// Skips leading whitespace; whether anything follows.
fn skip_whitespace(reader: &mut impl BufRead) -> io::Result<bool> {
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            return Ok(false);
        }
        match buffer.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(at) => {
                reader.consume(at);
                return Ok(true);
            }
            None => {
                let all = buffer.len();
                reader.consume(all);
            }
        }
    }
}

/// The whole body: `null` or a collection object.
struct Body<T, F>(F, PhantomData<fn() -> T>);

impl<'de, T: DeserializeOwned, U, F: FnMut(T) -> U> DeserializeSeed<'de> for Body<T, F> {
    type Value = Vec<U>;

    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<Vec<U>, D::Error> {
        de.deserialize_option(self)
    }
}

impl<'de, T: DeserializeOwned, U, F: FnMut(T) -> U> Visitor<'de> for Body<T, F> {
    type Value = Vec<U>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a collection object with a `value` array, or null")
    }

    fn visit_none<E>(self) -> Result<Vec<U>, E> {
        Ok(Vec::new())
    }

    fn visit_unit<E>(self) -> Result<Vec<U>, E> {
        Ok(Vec::new())
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, de: D) -> Result<Vec<U>, D::Error> {
        de.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Vec<U>, A::Error> {
        let mut list = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == "value" {
                list = map.next_value_seed(Elements(&mut self.0, PhantomData))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(list)
    }
}

/// The `value` array: each element parsed and kept at once.
struct Elements<'k, T, F>(&'k mut F, PhantomData<fn() -> T>);

impl<'de, T: DeserializeOwned, U, F: FnMut(T) -> U> DeserializeSeed<'de> for Elements<'_, T, F> {
    type Value = Vec<U>;

    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<Vec<U>, D::Error> {
        de.deserialize_seq(self)
    }
}

impl<'de, T: DeserializeOwned, U, F: FnMut(T) -> U> Visitor<'de> for Elements<'_, T, F> {
    type Value = Vec<U>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<U>, A::Error> {
        let mut list = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(element) = seq.next_element::<T>()? {
            list.push((self.0)(element));
        }
        Ok(list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lengths(body: &str) -> serde_json::Result<Vec<usize>> {
        parse(body.as_bytes(), |name: String| name.len())
    }

    #[test]
    fn each_element_of_value_is_kept_in_order_and_other_keys_are_skipped() {
        let body = r#"{"@odata.context": "x", "value": ["a", "bbb"], "next": {"deep": [1, 2]}}"#;
        assert_eq!(lengths(body).expect("parses"), vec![1, 3]);
    }

    #[test]
    fn an_empty_or_null_body_or_a_missing_value_is_an_empty_list() {
        for body in ["", " \n ", "null", "{}", " {\"other\": 1} "] {
            assert_eq!(
                lengths(body).expect("parses"),
                Vec::<usize>::new(),
                "{body:?}"
            );
        }
    }

    #[test]
    fn a_malformed_or_truncated_body_is_an_error() {
        for body in [
            r#"{"value": ["a", 1]}"#,
            r#"{"value": ["a""#,
            "[]",
            r#"{"value": []} x"#,
        ] {
            assert!(lengths(body).is_err(), "{body:?}");
        }
    }
}
