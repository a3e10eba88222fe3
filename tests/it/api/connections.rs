//! Refused requests leave keep-alive connections usable: a body the API
//! did not read (413, 415, 401 before the body) is drained when it is small,
//! so the next request on the same connection gets its answer; a large one
//! is answered with `Connection: close`. Raw TCP, so that nothing hides what
//! the server does with the connection.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::support::api::TestApi;

/// One response read off a connection: status, lowercase headers, body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

async fn read_answer(reader: &mut BufReader<TcpStream>) -> std::io::Result<Answer> {
    let mut line = String::new();
    if reader.read_line(&mut line).await? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).await?;
        let Some((name, value)) = line.trim_end().split_once(':') else {
            break;
        };
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await?;
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// Sends `head` (request line and headers, without the blank line) with
/// `body`, then `GET /healthz` on the same connection; both answers.
async fn refused_then_healthz(api: &TestApi, head: &str, body: &[u8]) -> (Answer, Answer) {
    let addr = api.url.trim_start_matches("http://");
    let mut reader = BufReader::new(TcpStream::connect(addr).await.expect("connect"));
    let request = format!(
        "{head}\r\nHost: {addr}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    reader
        .get_mut()
        .write_all(request.as_bytes())
        .await
        .unwrap();
    reader.get_mut().write_all(body).await.unwrap();
    let refused = read_answer(&mut reader).await.expect("the refusal");
    let next = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    reader.get_mut().write_all(next.as_bytes()).await.unwrap();
    let healthz = read_answer(&mut reader)
        .await
        .expect("the next request on the same connection is answered");
    (refused, healthz)
}

#[tokio::test]
async fn a_refused_body_is_drained_and_the_keep_alive_connection_stays_usable() {
    let api = TestApi::start().await;
    let token = api.token("alice", &[]);
    let bearer = format!("Authorization: Bearer {token}");
    let json = "Content-Type: application/json";
    let cases = [
        (
            format!("POST /tenants HTTP/1.1\r\n{bearer}\r\n{json}"),
            100 * 1024,
            413,
        ),
        (
            format!("POST /tenants HTTP/1.1\r\n{bearer}\r\nContent-Type: text/plain"),
            20 * 1024,
            415,
        ),
        (format!("POST /tenants HTTP/1.1\r\n{json}"), 100 * 1024, 401),
        (
            format!("PATCH /nowhere HTTP/1.1\r\n{bearer}\r\n{json}"),
            30 * 1024,
            404,
        ),
    ];
    for (head, size, status) in cases {
        let (refused, healthz) = refused_then_healthz(&api, &head, &vec![b' '; size]).await;
        assert_eq!(refused.status, status, "{head}");
        let error: serde_json::Value = serde_json::from_slice(&refused.body).unwrap();
        assert!(error["error"]["code"].is_string(), "{error}");
        assert_eq!(refused.header("connection"), None, "{head}: kept open");
        assert_eq!(healthz.status, 200, "{head}: the next request works");
    }
}

#[tokio::test]
async fn a_large_refused_body_is_answered_with_connection_close() {
    let api = TestApi::start().await;
    let token = api.token("alice", &[]);
    let addr = api.url.trim_start_matches("http://");
    let mut reader = BufReader::new(TcpStream::connect(addr).await.expect("connect"));
    // 10 MiB declared, 1 KiB sent: the answer must not wait for the rest.
    let head = format!(
        "POST /tenants HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        10 * 1024 * 1024
    );
    reader.get_mut().write_all(head.as_bytes()).await.unwrap();
    reader.get_mut().write_all(&[b' '; 1024]).await.unwrap();
    let refused = tokio::time::timeout(Duration::from_secs(10), read_answer(&mut reader))
        .await
        .expect("answered without the rest of the body")
        .expect("the refusal");
    assert_eq!(refused.status, 413);
    assert_eq!(refused.header("connection"), Some("close"));
}
