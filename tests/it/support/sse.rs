//! A Server-Sent Events reader for tests of `GET /tenants?watch=true`:
//! parses the stream as a browser's `EventSource` does (fields, comments,
//! blank line ends an event) and hands out events with a deadline.

use std::collections::VecDeque;
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

/// One dispatched event, or a comment line.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    /// `event:`, or `"comment"` for a comment line (its text in `data`).
    pub event: String,
    /// `id:` as sent (`Some("")` for an empty `id:`), `None` without one.
    pub id: Option<String>,
    pub data: String,
}

impl SseEvent {
    /// The data as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("{e}: {}", self.data))
    }

    /// The tenant's slug in the data.
    pub fn slug(&self) -> String {
        self.json()["slug"].as_str().unwrap_or_default().to_string()
    }
}

/// An open stream.
pub struct SseStream {
    body: futures::stream::BoxStream<'static, reqwest::Result<axum::body::Bytes>>,
    buffer: String,
    ready: VecDeque<SseEvent>,
    current: SseEvent,
    pub ended: bool,
}

impl SseStream {
    pub fn new(response: reqwest::Response) -> Self {
        SseStream {
            body: response.bytes_stream().boxed(),
            buffer: String::new(),
            ready: VecDeque::new(),
            current: empty(),
            ended: false,
        }
    }

    /// The next event or comment; `None` when the stream ended. Panics
    /// after `limit`.
    pub async fn next_within(&mut self, limit: Duration) -> Option<SseEvent> {
        tokio::time::timeout(limit, self.next())
            .await
            .unwrap_or_else(|_| panic!("no event within {limit:?}"))
    }

    /// The next event (comments skipped), within 10 s.
    pub async fn event(&mut self) -> SseEvent {
        loop {
            let event = self
                .next_within(Duration::from_secs(10))
                .await
                .expect("the stream goes on");
            if event.event != "comment" {
                return event;
            }
        }
    }

    /// Events up to and including the next `synced`.
    pub async fn until_synced(&mut self) -> Vec<SseEvent> {
        let mut events = Vec::new();
        loop {
            let event = self.event().await;
            let done = event.event == "synced";
            events.push(event);
            if done {
                return events;
            }
        }
    }

    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(event);
            }
            if self.ended {
                return None;
            }
            match self.body.next().await {
                Some(Ok(chunk)) => {
                    self.buffer.push_str(&String::from_utf8_lossy(&chunk));
                    self.parse();
                }
                Some(Err(_)) | None => self.ended = true,
            }
        }
    }

    fn parse(&mut self) {
        while let Some(end) = self.buffer.find('\n') {
            let line: String = self.buffer.drain(..=end).collect();
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                let event = std::mem::replace(&mut self.current, empty());
                if !event.event.is_empty() || !event.data.is_empty() {
                    self.ready.push_back(event);
                }
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "" => self.ready.push_back(SseEvent {
                    event: "comment".into(),
                    id: None,
                    data: value.to_string(),
                }),
                "event" => self.current.event = value.to_string(),
                "id" => self.current.id = Some(value.to_string()),
                "data" => {
                    if !self.current.data.is_empty() {
                        self.current.data.push('\n');
                    }
                    self.current.data.push_str(value);
                }
                _ => {}
            }
        }
    }
}

fn empty() -> SseEvent {
    SseEvent {
        event: String::new(),
        id: None,
        data: String::new(),
    }
}
