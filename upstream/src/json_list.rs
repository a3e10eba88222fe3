//! Collection bodies (`{"value": [...]}`) parsed element by element as they
//! arrive. A list of 10,000 oCIS spaces is about 11 MB of JSON: buffering
//! it whole costs its size in memory, and `serde_json`'s reader parses a
//! stream byte by byte through `io::Read` (at 10,000 tenants that parse
//! was a tenth of all CPU of a create burst). Here each chunk of the body
//! goes through [`Splitter`], a small state machine that only finds where
//! each element of `value` begins and ends (strings, escapes and nesting);
//! each element's bytes go to `keep`, which parses them (with
//! `serde_json::from_slice`, borrowing strings where it can), and only what
//! `keep` returns is retained. At most one element's bytes are copied (when
//! it spans two chunks). String content, most of a list, is skipped with
//! one `memchr` search per string instead of a step per byte.
//!
//! Hand-written because no maintained crate splits a JSON array nested in
//! an object out of a chunked stream; it validates the outer shape, and
//! `serde_json` validates every element.

use std::fmt;

/// Why a streamed list failed.
#[derive(Debug)]
pub(crate) enum ListError {
    /// Reading the body failed (connection, timeout).
    Transport(reqwest::Error),
    /// The body is not a collection of `T`.
    Invalid(String),
}

/// Parses `response`'s body as a collection, handing the JSON of each
/// element to `keep` (which parses it, typically with
/// `serde_json::from_slice`); what `keep` returns, if anything, is kept. An
/// empty or `null` body is an empty collection; keys other than `value` are
/// skipped unparsed.
pub(crate) async fn collect<U>(
    mut response: reqwest::Response,
    mut keep: impl FnMut(&[u8]) -> serde_json::Result<Option<U>>,
) -> Result<Vec<U>, ListError> {
    let mut splitter = Splitter::default();
    let mut list = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(ListError::Transport)? {
        splitter
            .feed(&chunk, |element| {
                list.extend(keep(element)?);
                Ok(())
            })
            .map_err(|e| ListError::Invalid(e.to_string()))?;
    }
    splitter
        .finish()
        .map_err(|e| ListError::Invalid(e.to_string()))?;
    Ok(list)
}

/// A body that is not a collection.
#[derive(Debug)]
pub(crate) enum SplitError {
    /// A byte the collection's shape does not allow here.
    Unexpected {
        byte: u8,
        at: u64,
        wanted: &'static str,
    },
    /// The body ended inside the collection.
    Truncated,
    /// An element of `value` did not parse.
    Element(serde_json::Error),
}

impl fmt::Display for SplitError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            SplitError::Unexpected { byte, at, wanted } => write!(
                f,
                "unexpected {:?} at byte {at}: expected {wanted}",
                char::from(*byte)
            ),
            SplitError::Truncated => f.write_str("the body ended inside the collection"),
            SplitError::Element(e) => write!(f, "an element of `value`: {e}"),
        }
    }
}

impl From<serde_json::Error> for SplitError {
    fn from(e: serde_json::Error) -> Self {
        SplitError::Element(e)
    }
}

/// Where the splitter is in the body.
#[derive(Clone, Copy, Debug)]
enum At {
    /// Before the first non-blank byte.
    Start,
    /// Inside a `null` body, after this many of its bytes.
    Null(usize),
    /// In the outer object, before a key (`}` allowed when `first`).
    Key { first: bool },
    /// Inside a key's string.
    KeyString { escaped: bool },
    /// After a key, before its `:`.
    Colon,
    /// Before a member's value.
    MemberValue,
    /// Inside the value of a member other than `value`.
    Skip(Scan),
    /// After a member, before `,` or `}`.
    AfterMember,
    /// In the `value` array, before an element (`]` allowed when `first`).
    Element { first: bool },
    /// Inside an element.
    InElement(Scan),
    /// After an element, before `,` or `]`.
    AfterElement,
    /// After the outer object (or `null`): only blanks may follow.
    End,
}

/// Finds the elements of a collection body fed to it in chunks.
#[derive(Debug)]
pub(crate) struct Splitter {
    at: At,
    /// The current key while it can still be `value`.
    key: Vec<u8>,
    /// The start of an element that began in an earlier chunk.
    partial: Vec<u8>,
    /// Bytes fed before the current chunk (for error positions).
    offset: u64,
}

impl Default for Splitter {
    fn default() -> Self {
        Splitter {
            at: At::Start,
            key: Vec::with_capacity(8),
            partial: Vec::new(),
            offset: 0,
        }
    }
}

const VALUE_KEY: &[u8] = b"value";

impl Splitter {
    /// Scans `chunk`, calling `element` with the bytes of every element of
    /// `value` that ends in it.
    pub(crate) fn feed(
        &mut self,
        chunk: &[u8],
        mut element: impl FnMut(&[u8]) -> Result<(), serde_json::Error>,
    ) -> Result<(), SplitError> {
        let mut from = matches!(self.at, At::InElement(_)).then_some(0);
        let mut i = 0;
        while i < chunk.len() {
            // Most of a list is string content: skip it in one search.
            i += self.at.plain_string_bytes(&chunk[i..]);
            let Some(&b) = chunk.get(i) else { break };
            if b.is_ascii_whitespace() && self.at.skips_blanks() {
                i += 1;
                continue;
            }
            let position = self.offset + i as u64;
            let unexpected = move |wanted| SplitError::Unexpected {
                byte: b,
                at: position,
                wanted,
            };
            // Whether `b` is consumed by this state (else the next state sees it).
            let mut consumed = true;
            match &mut self.at {
                At::Start => {
                    self.at = match b {
                        b'{' => At::Key { first: true },
                        b'n' => At::Null(1),
                        _ => return Err(unexpected("`{` or `null`")),
                    }
                }
                At::Null(n) => {
                    if b != b"null"[*n] {
                        return Err(unexpected("`null`"));
                    }
                    *n += 1;
                    if *n == 4 {
                        self.at = At::End;
                    }
                }
                At::Key { first } => match b {
                    b'"' => {
                        self.key.clear();
                        self.at = At::KeyString { escaped: false };
                    }
                    b'}' if *first => self.at = At::End,
                    _ => return Err(unexpected("a key")),
                },
                At::KeyString { escaped } => {
                    if !*escaped && b == b'"' {
                        self.at = At::Colon;
                    } else {
                        *escaped = !*escaped && b == b'\\';
                        // Longer than `value`: it is not `value`, stop copying.
                        if self.key.len() <= VALUE_KEY.len() {
                            self.key.push(b);
                        }
                    }
                }
                At::Colon => match b {
                    b':' => self.at = At::MemberValue,
                    _ => return Err(unexpected("`:`")),
                },
                At::MemberValue => {
                    if self.key == VALUE_KEY {
                        if b != b'[' {
                            return Err(unexpected("the `value` array"));
                        }
                        self.at = At::Element { first: true };
                    } else {
                        self.at = At::Skip(Scan::start(b).ok_or_else(|| unexpected("a value"))?);
                    }
                }
                At::Skip(scan) => match scan.step(b) {
                    Step::More => {}
                    Step::EndedWith => self.at = At::AfterMember,
                    Step::EndedBefore => {
                        consumed = false;
                        self.at = At::AfterMember;
                    }
                },
                At::AfterMember => match b {
                    b',' => self.at = At::Key { first: false },
                    b'}' => self.at = At::End,
                    _ => return Err(unexpected("`,` or `}`")),
                },
                At::Element { first } => {
                    if b == b']' && *first {
                        self.at = At::AfterMember;
                    } else {
                        self.at =
                            At::InElement(Scan::start(b).ok_or_else(|| unexpected("an element"))?);
                        from = Some(i);
                    }
                }
                At::InElement(scan) => {
                    let end = match scan.step(b) {
                        Step::More => None,
                        Step::EndedWith => Some(i + 1),
                        Step::EndedBefore => {
                            consumed = false;
                            Some(i)
                        }
                    };
                    if let Some(end) = end {
                        let start = from.take().unwrap_or(0);
                        if self.partial.is_empty() {
                            element(&chunk[start..end])?;
                        } else {
                            self.partial.extend_from_slice(&chunk[start..end]);
                            element(&self.partial)?;
                            self.partial.clear();
                        }
                        self.at = At::AfterElement;
                    }
                }
                At::AfterElement => match b {
                    b',' => self.at = At::Element { first: false },
                    b']' => self.at = At::AfterMember,
                    _ => return Err(unexpected("`,` or `]`")),
                },
                At::End => return Err(unexpected("the end of the body")),
            }
            if consumed {
                i += 1;
            }
        }
        if let Some(start) = from {
            self.partial.extend_from_slice(&chunk[start..]);
        }
        self.offset += chunk.len() as u64;
        Ok(())
    }

    /// Checks that the body ended where a collection may end.
    pub(crate) fn finish(&self) -> Result<(), SplitError> {
        match self.at {
            At::Start | At::End => Ok(()),
            _ => Err(SplitError::Truncated),
        }
    }
}

impl At {
    /// Inside a string of a value, bytes other than `"` and `\` change
    /// nothing: how many such bytes `rest` starts with (0 elsewhere).
    fn plain_string_bytes(&self, rest: &[u8]) -> usize {
        match self {
            At::Skip(scan) | At::InElement(scan) if scan.in_string && !scan.escaped => {
                memchr::memchr2(b'"', b'\\', rest).unwrap_or(rest.len())
            }
            _ => 0,
        }
    }

    /// Whether blanks between tokens are skipped here (not inside a string
    /// or a value, where they belong to it or end it).
    fn skips_blanks(&self) -> bool {
        !matches!(
            self,
            At::Null(_) | At::KeyString { .. } | At::Skip(_) | At::InElement(_)
        )
    }
}

/// Follows one JSON value to its end: strings, escapes and nesting depth.
#[derive(Clone, Copy, Debug)]
struct Scan {
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// A number or literal: it ends at the first byte not its own.
    scalar: bool,
}

enum Step {
    More,
    /// The value ended with this byte.
    EndedWith,
    /// The value ended before this byte.
    EndedBefore,
}

impl Scan {
    /// The scan of a value whose first byte is `b`; `None` if no value starts so.
    fn start(b: u8) -> Option<Self> {
        let mut scan = Scan {
            depth: 0,
            in_string: false,
            escaped: false,
            scalar: false,
        };
        match b {
            b'{' | b'[' => scan.depth = 1,
            b'"' => scan.in_string = true,
            b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => scan.scalar = true,
            _ => return None,
        }
        Some(scan)
    }

    /// Feeds the byte after the ones seen so far.
    fn step(&mut self, b: u8) -> Step {
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == b'"' {
                self.in_string = false;
                if self.depth == 0 {
                    return Step::EndedWith;
                }
            }
            return Step::More;
        }
        if self.scalar {
            return if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.') {
                Step::More
            } else {
                Step::EndedBefore
            };
        }
        match b {
            b'"' => self.in_string = true,
            b'{' | b'[' => self.depth += 1,
            b'}' | b']' => {
                self.depth -= 1;
                if self.depth == 0 {
                    return Step::EndedWith;
                }
            }
            _ => {}
        }
        Step::More
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits `body` fed in chunks of `size` bytes; each element parsed as a
    /// string, kept as its length.
    fn lengths_in_chunks(body: &str, size: usize) -> Result<Vec<usize>, SplitError> {
        let mut splitter = Splitter::default();
        let mut list = Vec::new();
        for chunk in body.as_bytes().chunks(size.max(1)) {
            splitter.feed(chunk, |element| {
                list.push(serde_json::from_slice::<String>(element)?.len());
                Ok(())
            })?;
        }
        splitter.finish()?;
        Ok(list)
    }

    fn lengths(body: &str) -> Result<Vec<usize>, SplitError> {
        lengths_in_chunks(body, body.len())
    }

    #[test]
    fn each_element_of_value_is_kept_in_order_and_other_keys_are_skipped() {
        let body = r#"{"@odata.context": "x", "value": ["a", "bbb"], "next": {"deep": [1, 2, "]"]}, "n": -1.5e3, "t": true}"#;
        assert_eq!(lengths(body).expect("parses"), vec![1, 3]);
    }

    #[test]
    fn every_split_of_the_body_into_chunks_gives_the_same_elements() {
        let body = r#" { "a": {"value": ["x"]}, "value" : [ "q\"]}", "", "\\" , "é{[" ] , "valuex": [1] } "#;
        let whole = lengths(body).expect("parses");
        assert_eq!(whole, vec![4, 0, 1, 4]);
        for size in 1..body.len() {
            assert_eq!(
                lengths_in_chunks(body, size).expect("parses"),
                whole,
                "chunks of {size}"
            );
        }
    }

    #[test]
    fn objects_as_elements_parse_with_their_nested_members() {
        #[derive(serde::Deserialize)]
        struct Drive {
            id: String,
        }
        let body = r#"{"value": [{"id": "a", "root": {"x": [{}, []]}}, {"id": "b}"}]}"#;
        for size in [1, 3, 7, body.len()] {
            let mut splitter = Splitter::default();
            let mut ids = Vec::new();
            for chunk in body.as_bytes().chunks(size) {
                splitter
                    .feed(chunk, |e| {
                        ids.push(serde_json::from_slice::<Drive>(e)?.id);
                        Ok(())
                    })
                    .expect("feeds");
            }
            splitter.finish().expect("complete");
            assert_eq!(ids, ["a", "b}"], "chunks of {size}");
        }
    }

    #[test]
    fn an_empty_or_null_body_or_a_missing_value_is_an_empty_list() {
        for body in [
            "",
            " \n ",
            "null",
            " null ",
            "{}",
            " {\"other\": 1} ",
            r#"{"value": []}"#,
        ] {
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
            r#"{"value": ["a",]}"#,
            r#"{"value": null}"#,
            r#"{"value" ["a"]}"#,
            r#"{"other": , "value": []}"#,
            r#"{"value": []"#,
            "[]",
            "nul",
            "nulx",
            r#"{"value": []} x"#,
            r#"{,}"#,
        ] {
            assert!(lengths(body).is_err(), "{body:?}");
        }
    }
}
