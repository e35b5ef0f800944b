//! A small blocking HTTP/1.1 client, so tests can send exactly the bytes and headers a
//! recorded scenario specifies (no client library rewriting them).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub code: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&self.body).trim().to_owned())
        })
    }
}

pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn query_string(q: &[(String, String)]) -> String {
    if q.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = q
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    format!("?{}", parts.join("&"))
}

fn write_request(
    stream: &mut TcpStream,
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(String, String)],
    body: Option<&[u8]>,
) {
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).unwrap();
    if let Some(b) = body {
        stream.write_all(b).unwrap();
    }
}

fn read_head(r: &mut BufReader<TcpStream>) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let code = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    (code, headers)
}

fn chunked(headers: &[(String, String)]) -> bool {
    headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"))
}

/// One chunk of a chunked body; `None` at the end.
fn read_chunk(r: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut size = String::new();
    if r.read_line(&mut size).ok()? == 0 {
        return None;
    }
    let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
    if n == 0 {
        return None;
    }
    let mut buf = vec![0; n];
    r.read_exact(&mut buf).ok()?;
    let mut crlf = [0; 2];
    r.read_exact(&mut crlf).ok()?;
    Some(buf)
}

/// Sends a request and reads the whole answer.
pub fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(String, String)],
    body: Option<&[u8]>,
) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write_request(&mut stream, addr, method, target, headers, body);
    let mut r = BufReader::new(stream);
    let (code, headers) = read_head(&mut r);
    let mut body = Vec::new();
    if chunked(&headers) {
        while let Some(c) = read_chunk(&mut r) {
            body.extend(c);
        }
    } else {
        r.read_to_end(&mut body).unwrap();
    }
    Reply {
        code,
        headers,
        body,
    }
}

/// Opens a watch and collects up to `want` non-bookmark events for at most `seconds`.
pub fn watch(
    addr: SocketAddr,
    target: &str,
    headers: &[(String, String)],
    want: usize,
    seconds: f64,
) -> (u16, serde_json::Value) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs_f64(seconds + 5.0)))
        .unwrap();
    write_request(&mut stream, addr, "GET", target, headers, None);
    let mut r = BufReader::new(stream);
    let (code, headers) = read_head(&mut r);
    if code != 200 {
        let mut body = Vec::new();
        let _ = r.read_to_end(&mut body);
        return (
            code,
            serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        );
    }
    let deadline = Instant::now() + Duration::from_secs_f64(seconds + 5.0);
    let mut events = Vec::new();
    let mut pending = Vec::new();
    let is_chunked = chunked(&headers);
    while events.len() < want && Instant::now() < deadline {
        let data = if is_chunked {
            match read_chunk(&mut r) {
                Some(d) => d,
                None => break,
            }
        } else {
            let mut buf = [0; 4096];
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => buf[..n].to_vec(),
            }
        };
        pending.extend(data);
        while let Some(pos) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=pos).collect();
            let ev: serde_json::Value = match serde_json::from_slice(&line) {
                Ok(v) => v,
                Err(_) => continue,
            };
            if ev["type"] != "BOOKMARK" {
                events.push(ev);
            }
            if events.len() >= want {
                break;
            }
        }
    }
    (200, serde_json::Value::Array(events))
}
