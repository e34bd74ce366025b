//! Black-box tests of Listen and Write over WebChannel on the real `counterbook-server` binary,
//! over real HTTP as the Firebase JS SDK speaks it (`webchannel-capture.md` beside DESIGN.md):
//! opening POSTs, the streaming back channel read with deadlines (never a sleep), forward POSTs,
//! commits through REST seen on the stream, resume tokens, unknown sessions and malformed
//! requests; the Write stream's handshake, write responses, errors, authorization and bounds.
//!
//! The HTTP client is a few lines over `TcpStream`, so that a test controls exactly when it
//! reads a streaming response and how long it waits.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::binary::{run_admin, RunningServer};

const PROJECT: &str = "wc-test";
const DATABASE: &str = "projects/wc-test/databases/(default)";
const SHOP: &str = "projects/wc-test/databases/(default)/documents/shops/s1";
const CHANNEL: &str = "/google.firestore.v1.Firestore/Listen/channel";
const WRITE_CHANNEL: &str = "/google.firestore.v1.Firestore/Write/channel";
/// How long any expected message may take to arrive.
const PATIENCE: Duration = Duration::from_secs(10);

fn start_server(data_directory: &Path, mode: &[&str]) -> RunningServer {
    RunningServer::start(data_directory, mode)
}

fn dev_server() -> (tempfile::TempDir, RunningServer) {
    let data_directory = tempfile::tempdir().unwrap();
    let server = start_server(data_directory.path(), &["--dev"]);
    (data_directory, server)
}

/// A response's status line, headers (names lower-cased) and the raw connection after them.
struct ResponseHead {
    status: u16,
    headers: Vec<(String, String)>,
    chunked: bool,
}

impl ResponseHead {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Sends one request on a new connection and reads the response head.
fn send(
    address: &str,
    method: &str,
    target: &str,
    body: Option<&str>,
    extra_headers: &[(&str, &str)],
) -> (ResponseHead, BufReader<TcpStream>) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut request =
        format!("{method} {target} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    for (name, value) in extra_headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        request.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body.unwrap_or(""));
    stream.write_all(request.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).unwrap();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap();
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let chunked = headers
        .iter()
        .any(|(name, value)| name == "transfer-encoding" && value.contains("chunked"));
    (
        ResponseHead {
            status,
            headers,
            chunked,
        },
        reader,
    )
}

/// Sends a request and reads the whole (short) response body.
fn fetch(address: &str, method: &str, target: &str, body: Option<&str>) -> (ResponseHead, String) {
    fetch_with_headers(address, method, target, body, &[])
}

fn fetch_with_headers(
    address: &str,
    method: &str,
    target: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> (ResponseHead, String) {
    let (head, mut reader) = send(address, method, target, body, headers);
    let mut raw = Vec::new();
    reader.read_to_end(&mut raw).unwrap();
    let body = if head.chunked {
        let mut chunks = ChunkedDecoder::default();
        chunks.feed(&raw);
        chunks.body
    } else {
        raw
    };
    (head, String::from_utf8(body).unwrap())
}

/// Decodes a chunked body as it arrives.
#[derive(Default)]
struct ChunkedDecoder {
    raw: Vec<u8>,
    body: Vec<u8>,
    ended: bool,
}

impl ChunkedDecoder {
    fn feed(&mut self, bytes: &[u8]) {
        self.raw.extend_from_slice(bytes);
        loop {
            let Some(line_end) = self.raw.windows(2).position(|pair| pair == b"\r\n") else {
                return;
            };
            let size_text = std::str::from_utf8(&self.raw[..line_end]).unwrap();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
                .unwrap_or_else(|_| panic!("bad chunk size {size_text:?}"));
            if self.raw.len() < line_end + 2 + size + 2 {
                return;
            }
            if size == 0 {
                self.ended = true;
            }
            self.body
                .extend_from_slice(&self.raw[line_end + 2..line_end + 2 + size]);
            self.raw.drain(..line_end + 2 + size + 2);
        }
    }
}

/// Splits `<length>\n<json>` frames off the front of `text`.
fn take_frames(text: &mut String) -> Vec<Value> {
    let mut frames = Vec::new();
    loop {
        let Some(newline) = text.find('\n') else {
            return frames;
        };
        let length: usize = text[..newline]
            .parse()
            .unwrap_or_else(|_| panic!("bad frame length in {text:?}"));
        if text.len() < newline + 1 + length {
            return frames;
        }
        let frame = text[newline + 1..newline + 1 + length].to_owned();
        text.drain(..newline + 1 + length);
        frames.push(serde_json::from_str(&frame).unwrap_or_else(|_| panic!("bad frame {frame:?}")));
    }
}

fn form(requests: &[Value], offset: u64, headers: Option<&str>) -> String {
    let encode = |text: &str| percent_encode(text);
    let mut parts = Vec::new();
    if let Some(headers) = headers {
        parts.push(format!("headers={}", encode(headers)));
    }
    parts.push(format!("count={}", requests.len()));
    parts.push(format!("ofs={offset}"));
    for (index, request) in requests.iter().enumerate() {
        parts.push(format!(
            "req{index}___data__={}",
            encode(&request.to_string())
        ));
    }
    parts.join("&")
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

fn channel_url(parameters: &str) -> String {
    stream_url(CHANNEL, parameters)
}

fn stream_url(path: &str, parameters: &str) -> String {
    format!(
        "{path}?VER=8&database={}&{parameters}&zx=abc&t=1",
        percent_encode(DATABASE)
    )
}

const SDK_HEADERS: &str = "X-Goog-Api-Client:gl-js/ fire/12.19.0\r\nContent-Type:text/plain\r\n";

/// A Listen (or Write) channel as the SDK drives it.
struct Channel {
    address: String,
    path: &'static str,
    session_id: String,
    next_map: u64,
    next_request_id: u64,
    /// The last array id received.
    last_array_id: u64,
}

impl Channel {
    fn open(address: &str, requests: &[Value]) -> Channel {
        Channel::open_on(address, CHANNEL, requests, SDK_HEADERS)
    }

    /// Opens a channel at `path` with the opening request's `headers` field.
    fn open_on(address: &str, path: &'static str, requests: &[Value], headers: &str) -> Channel {
        let (head, body) = fetch(
            address,
            "POST",
            &stream_url(path, "RID=1000&CVER=22&X-HTTP-Session-Id=gsessionid"),
            Some(&form(requests, 0, Some(headers))),
        );
        assert_eq!(head.status, 200, "{body}");
        let mut text = body;
        let frames = take_frames(&mut text);
        assert!(text.is_empty(), "one frame: {text:?}");
        let handshake = &frames[0][0];
        assert_eq!(handshake[0], 0);
        let payload = handshake[1].as_array().unwrap();
        assert_eq!(payload[0], "c");
        assert_eq!(
            &payload[2..],
            &[json!(""), json!(8), json!(12), json!(30000)]
        );
        Channel {
            address: address.to_owned(),
            path,
            session_id: payload[1].as_str().unwrap().to_owned(),
            next_map: requests.len() as u64,
            next_request_id: 1001,
            last_array_id: 0,
        }
    }

    fn sid(&self) -> String {
        percent_encode(&self.session_id)
    }

    fn back_channel(&self) -> BackChannel {
        BackChannel::open_on(&self.address, self.path, &self.sid(), self.last_array_id)
    }

    /// Sends later requests; returns the ack `[open, last array id, unsent bytes]`.
    fn send(&mut self, requests: &[Value]) -> Value {
        let (status, body) = self.try_send(requests);
        assert_eq!(status, 200, "{body}");
        let mut text = body;
        take_frames(&mut text).remove(0)
    }

    /// Sends later requests; returns the status and the body as they are.
    fn try_send(&mut self, requests: &[Value]) -> (u16, String) {
        let url = stream_url(
            self.path,
            &format!(
                "SID={}&RID={}&AID={}",
                self.sid(),
                self.next_request_id,
                self.last_array_id
            ),
        );
        self.next_request_id += 1;
        let (head, body) = fetch(
            &self.address,
            "POST",
            &url,
            Some(&form(requests, self.next_map, None)),
        );
        self.next_map += requests.len() as u64;
        (head.status, body)
    }
}

/// One streaming back channel response.
struct BackChannel {
    head: ResponseHead,
    reader: BufReader<TcpStream>,
    chunks: ChunkedDecoder,
    text: String,
    /// Messages received, with their array ids.
    received: Vec<(u64, Value)>,
    ended: bool,
}

impl BackChannel {
    fn open(address: &str, sid: &str, acknowledged: u64) -> BackChannel {
        BackChannel::open_on(address, CHANNEL, sid, acknowledged)
    }

    fn open_on(address: &str, path: &str, sid: &str, acknowledged: u64) -> BackChannel {
        let url = stream_url(
            path,
            &format!("RID=rpc&SID={sid}&AID={acknowledged}&CI=0&TYPE=xmlhttp"),
        );
        let (head, reader) = send(address, "GET", &url, None, &[("Origin", "http://app.test")]);
        BackChannel {
            head,
            reader,
            chunks: ChunkedDecoder::default(),
            text: String::new(),
            received: Vec::new(),
            ended: false,
        }
    }

    /// Reads until `wanted` holds for a received message (not a noop) or the deadline passes;
    /// returns the messages received meanwhile, `noop`s left out.
    fn read_until(&mut self, wanted: impl FnMut(&Value) -> bool) -> Vec<Value> {
        self.read_messages(wanted, false)
    }

    /// Like `read_until`, `noop`s included.
    fn read_until_any(&mut self, wanted: impl FnMut(&Value) -> bool) -> Vec<Value> {
        self.read_messages(wanted, true)
    }

    fn read_messages(
        &mut self,
        mut wanted: impl FnMut(&Value) -> bool,
        with_noops: bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + PATIENCE;
        let mut messages = Vec::new();
        loop {
            let mut found = false;
            for frame in take_frames(&mut self.text) {
                for entry in frame.as_array().unwrap() {
                    let id = entry[0].as_u64().unwrap();
                    let message = entry[1][0].clone();
                    self.received.push((id, message.clone()));
                    if with_noops || message != json!("noop") {
                        found |= wanted(&message);
                        messages.push(message);
                    }
                }
            }
            if found {
                return messages;
            }
            let now = Instant::now();
            assert!(
                now < deadline && !self.ended,
                "nothing wanted arrived (ended: {}); got {messages:#?}",
                self.ended
            );
            self.reader
                .get_ref()
                .set_read_timeout(Some(deadline - now))
                .unwrap();
            let mut buffer = [0u8; 8192];
            let count = self.reader.read(&mut buffer).unwrap_or_else(|error| {
                panic!("reading the back channel: {error}; got {messages:#?}")
            });
            if count == 0 {
                self.ended = true;
            }
            self.chunks.feed(&buffer[..count]);
            self.ended |= self.chunks.ended;
            let body = std::mem::take(&mut self.chunks.body);
            self.text.push_str(std::str::from_utf8(&body).unwrap());
        }
    }

    /// Reads until the response ends.
    fn read_to_end(&mut self) {
        let deadline = Instant::now() + PATIENCE;
        while !self.ended {
            assert!(Instant::now() < deadline, "the back channel did not end");
            let mut buffer = [0u8; 8192];
            let count = self.reader.read(&mut buffer).unwrap();
            if count == 0 {
                self.ended = true;
            }
            self.chunks.feed(&buffer[..count]);
            self.ended |= self.chunks.ended;
        }
    }

    fn last_array_id(&self) -> u64 {
        self.received.last().map_or(0, |(id, _)| *id)
    }
}

fn is_target_change(message: &Value, kind: &str) -> bool {
    message["targetChange"]["targetChangeType"] == kind
}

fn is_global_no_change(message: &Value) -> bool {
    message.get("targetChange").is_some_and(|change| {
        change.get("targetChangeType").is_none()
            && change.get("targetIds").is_none()
            && change["readTime"].is_string()
            && change["resumeToken"].is_string()
    })
}

fn commit(address: &str, writes: Value) -> Value {
    let body = json!({ "writes": writes }).to_string();
    let url = format!("http://{address}/v1/{DATABASE}/documents:commit");
    let mut response = ureq::post(&url)
        .header("Content-Type", "application/json")
        .send(body)
        .unwrap_or_else(|error| panic!("commit: {error}"));
    serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap()
}

fn product(id: &str, price: i64) -> Value {
    json!({"update": {
        "name": format!("{SHOP}/products/{id}"),
        "fields": {"price": {"integerValue": price.to_string()}}
    }})
}

fn delete(id: &str) -> Value {
    json!({"delete": format!("{SHOP}/products/{id}")})
}

fn price_query(target_id: i64, extra: Value) -> Value {
    let mut structured = json!({
        "from": [{"collectionId": "products"}],
        "where": {"fieldFilter": {
            "field": {"fieldPath": "price"},
            "op": "GREATER_THAN_OR_EQUAL",
            "value": {"integerValue": "100"}
        }},
        "orderBy": [
            {"field": {"fieldPath": "price"}, "direction": "ASCENDING"},
            {"field": {"fieldPath": "__name__"}, "direction": "ASCENDING"}
        ]
    });
    for (key, value) in extra.as_object().unwrap() {
        structured[key] = value.clone();
    }
    json!({
        "database": DATABASE,
        "addTarget": {
            "query": {"structuredQuery": structured, "parent": SHOP},
            "targetId": target_id
        }
    })
}

fn changed_names(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .filter_map(|message| message["documentChange"]["document"]["name"].as_str())
        .map(|name| name.rsplit('/').next().unwrap().to_owned())
        .collect()
}

#[test]
fn a_query_target_gets_its_documents_then_every_committed_change_incrementally() {
    let (_data, server) = dev_server();
    let address = server.address().to_owned();
    commit(&address, json!([product("a", 150), product("b", 50)]));

    let mut channel = Channel::open(&address, &[price_query(2, json!({}))]);
    let mut back = channel.back_channel();
    assert_eq!(back.head.status, 200);
    assert_eq!(
        back.head.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(
        back.head.header("access-control-allow-origin"),
        Some("http://app.test")
    );
    assert_eq!(
        back.head.header("access-control-allow-credentials"),
        Some("true")
    );

    let first = back.read_until(is_global_no_change);
    assert!(is_target_change(&first[0], "ADD"), "{first:#?}");
    assert_eq!(first[0]["targetChange"]["targetIds"], json!([2]));
    assert_eq!(changed_names(&first), ["a"]);
    assert_eq!(first[1]["documentChange"]["targetIds"], json!([2]));
    assert_eq!(
        first[1]["documentChange"]["document"]["fields"]["price"],
        json!({"integerValue": "150"})
    );
    assert!(is_target_change(&first[2], "CURRENT"));
    assert!(first[2]["targetChange"]["resumeToken"].is_string());
    assert_eq!(first.len(), 4, "{first:#?}");

    // A new matching document: only it, then a new snapshot marker.
    commit(&address, json!([product("c", 120)]));
    let added = back.read_until(is_global_no_change);
    assert_eq!(changed_names(&added), ["c"]);
    assert_eq!(added.len(), 2, "{added:#?}");

    // A document that stops matching comes with removedTargetIds.
    commit(&address, json!([product("a", 10)]));
    let left = back.read_until(is_global_no_change);
    assert_eq!(
        left[0]["documentChange"]["removedTargetIds"],
        json!([2]),
        "{left:#?}"
    );
    assert!(left[0]["documentChange"].get("targetIds").is_none());

    // A deleted document.
    commit(&address, json!([delete("c")]));
    let deleted = back.read_until(is_global_no_change);
    assert_eq!(
        deleted[0]["documentDelete"]["document"],
        format!("{SHOP}/products/c")
    );
    assert_eq!(deleted[0]["documentDelete"]["removedTargetIds"], json!([2]));

    // A write elsewhere says nothing; the next change of the target is the next message.
    commit(
        &address,
        json!([{"update": {"name": format!("{SHOP}/bills/x"), "fields": {}}}]),
    );
    commit(&address, json!([product("b", 500)]));
    let entered = back.read_until(is_global_no_change);
    assert_eq!(changed_names(&entered), ["b"], "{entered:#?}");

    // removeTarget: acknowledged on the forward channel, REMOVE on the back channel.
    channel.last_array_id = back.last_array_id();
    let ack = channel.send(&[json!({"database": DATABASE, "removeTarget": 2})]);
    assert_eq!(ack[0], 1, "the back channel is open: {ack}");
    assert!(ack[1].as_u64().unwrap() >= channel.last_array_id, "{ack}");
    let removed = back.read_until(|message| is_target_change(message, "REMOVE"));
    assert_eq!(
        removed.last().unwrap()["targetChange"]["targetIds"],
        json!([2])
    );

    // After the removal, a change of b is not sent: the next message is the new target's.
    commit(&address, json!([product("b", 600)]));
    channel.send(&[json!({
        "database": DATABASE,
        "addTarget": {"documents": {"documents": [format!("{SHOP}/products/b"), format!("{SHOP}/products/zz")]}, "targetId": 4}
    })]);
    let documents = back.read_until(is_global_no_change);
    assert!(is_target_change(&documents[0], "ADD"), "{documents:#?}");
    assert_eq!(documents[0]["targetChange"]["targetIds"], json!([4]));
    assert_eq!(
        documents[1]["documentChange"]["document"]["fields"]["price"],
        json!({"integerValue": "600"})
    );
    // A missing document is a documentDelete, as on the emulator.
    assert_eq!(
        documents[2]["documentDelete"]["document"],
        format!("{SHOP}/products/zz")
    );
    assert!(is_target_change(&documents[3], "CURRENT"));
}

#[test]
fn a_limit_query_runs_again_and_removes_what_is_pushed_out() {
    let (_data, server) = dev_server();
    let address = server.address().to_owned();
    commit(&address, json!([product("a", 300), product("b", 200)]));
    let channel = Channel::open(&address, &[price_query(7, json!({"limit": {"value": 1}}))]);
    let mut back = channel.back_channel();
    let first = back.read_until(is_global_no_change);
    assert_eq!(changed_names(&first), ["b"]);

    // A cheaper matching product takes the single place; b leaves unchanged.
    commit(&address, json!([product("c", 100)]));
    let changed = back.read_until(is_global_no_change);
    assert_eq!(changed_names(&changed), ["c"], "{changed:#?}");
    let removal = changed
        .iter()
        .find(|message| message.get("documentRemove").is_some())
        .unwrap_or_else(|| panic!("a documentRemove in {changed:#?}"));
    assert_eq!(
        removal["documentRemove"]["document"],
        format!("{SHOP}/products/b")
    );
}

#[test]
fn a_resumed_target_gets_only_what_changed_and_the_count() {
    let (_data, server) = dev_server();
    let address = server.address().to_owned();
    commit(&address, json!([product("a", 150), product("b", 250)]));
    let channel = Channel::open(&address, &[price_query(2, json!({}))]);
    let mut back = channel.back_channel();
    let first = back.read_until(|message| is_target_change(message, "CURRENT"));
    let token = first.last().unwrap()["targetChange"]["resumeToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let (head, _) = fetch(
        &address,
        "POST",
        &channel_url(&format!("SID={}&RID=1001&TYPE=terminate", channel.sid())),
        Some(""),
    );
    assert_eq!(head.status, 200);

    commit(&address, json!([product("b", 260), product("d", 400)]));
    let mut resumed_request = price_query(3, json!({}));
    resumed_request["addTarget"]["resumeToken"] = json!(token);
    let resumed = Channel::open(&address, &[resumed_request]);
    let messages = resumed.back_channel().read_until(is_global_no_change);
    assert!(is_target_change(&messages[0], "ADD"), "{messages:#?}");
    let mut names = changed_names(&messages);
    names.sort();
    assert_eq!(names, ["b", "d"], "only what changed since the token");
    let filter = messages
        .iter()
        .find(|message| message.get("filter").is_some())
        .unwrap_or_else(|| panic!("an existence filter in {messages:#?}"));
    assert_eq!(filter["filter"], json!({"targetId": 3, "count": 3}));
    assert!(is_target_change(&messages[messages.len() - 2], "CURRENT"));

    // A token that is not ours: RESET and the whole result set, as the emulator answers.
    let mut foreign = price_query(5, json!({}));
    foreign["addTarget"]["resumeToken"] = json!("CgkIwtXvs6OamAM=");
    let messages = Channel::open(&address, &[foreign])
        .back_channel()
        .read_until(is_global_no_change);
    assert!(is_target_change(&messages[1], "RESET"), "{messages:#?}");
    assert_eq!(changed_names(&messages).len(), 3);
}

#[test]
fn an_invalid_query_is_added_then_removed_with_its_cause() {
    let (_data, server) = dev_server();
    let values: Vec<Value> = (0..31)
        .map(|n| json!({"integerValue": n.to_string()}))
        .collect();
    let request = json!({
        "database": DATABASE,
        "addTarget": {"query": {"parent": SHOP, "structuredQuery": {
            "from": [{"collectionId": "products"}],
            "where": {"fieldFilter": {"field": {"fieldPath": "a"}, "op": "IN", "value": {"arrayValue": {"values": values}}}}
        }}, "targetId": 2}
    });
    let messages = Channel::open(server.address(), &[request])
        .back_channel()
        .read_until(|message| is_target_change(message, "REMOVE"));
    assert!(is_target_change(&messages[0], "ADD"));
    assert_eq!(
        messages[1]["targetChange"]["cause"]["code"], 3,
        "{messages:#?}"
    );
}

#[test]
fn a_new_back_channel_resends_what_was_not_acknowledged_and_replaces_the_old_one() {
    let (_data, server) = dev_server();
    let address = server.address().to_owned();
    commit(&address, json!([product("a", 150)]));
    let channel = Channel::open(&address, &[price_query(2, json!({}))]);
    let mut first = channel.back_channel();
    let seen = first.read_until(is_global_no_change);

    // The client says it saw nothing (AID=0): everything comes again, and the first back
    // channel ends.
    let mut second = BackChannel::open(&address, &channel.sid(), 0);
    let again = second.read_until(is_global_no_change);
    assert_eq!(again, seen);
    first.read_to_end();

    // With everything acknowledged, a third gets only new messages.
    let mut third = BackChannel::open(&address, &channel.sid(), second.last_array_id());
    commit(&address, json!([product("a", 170)]));
    let fresh = third.read_until(is_global_no_change);
    assert_eq!(changed_names(&fresh), ["a"], "{fresh:#?}");
    let first_id = third.received[0].0;
    assert!(first_id > second.last_array_id());
}

#[test]
fn unknown_and_terminated_sessions_answer_unknown_sid() {
    let (_data, server) = dev_server();
    let address = server.address().to_owned();
    for (method, url, body) in [
        (
            "GET",
            channel_url("RID=rpc&SID=nope&AID=0&CI=0&TYPE=xmlhttp"),
            None,
        ),
        (
            "POST",
            channel_url("SID=nope&RID=3&AID=0"),
            Some(form(&[], 1, None)),
        ),
        (
            "POST",
            channel_url("SID=nope&RID=3&TYPE=terminate"),
            Some(String::new()),
        ),
    ] {
        let (head, body) = fetch(&address, method, &url, body.as_deref());
        assert_eq!(
            (head.status, body.as_str()),
            (400, "Unknown SID"),
            "{method} {url}"
        );
    }
    let channel = Channel::open(&address, &[]);
    let (head, _) = fetch(
        &address,
        "GET",
        &channel_url(&format!("SID={}&RID=9&TYPE=terminate", channel.sid())),
        None,
    );
    assert_eq!(head.status, 200);
    let (head, body) = fetch(
        &address,
        "GET",
        &channel_url(&format!(
            "RID=rpc&SID={}&AID=0&CI=0&TYPE=xmlhttp",
            channel.sid()
        )),
        None,
    );
    assert_eq!((head.status, body.as_str()), (400, "Unknown SID"));
}

#[test]
fn malformed_requests_are_refused_and_the_server_keeps_serving() {
    let (_data, server) = dev_server();
    let address = server.address().to_owned();
    let open = channel_url("RID=1&CVER=22");
    let cases: Vec<(String, String, u16)> = vec![
        (open.clone(), "count=zz&ofs=0".into(), 400),
        (
            open.clone(),
            "count=2&ofs=0&req0___data__=%7B%7D".into(),
            400,
        ),
        (
            open.clone(),
            "count=1&ofs=0&req0___data__=notjson".into(),
            400,
        ),
        (
            open.clone(),
            "count=1&ofs=0&req0___data__=%5B1%5D".into(),
            400,
        ),
        (
            open.clone(),
            "count=1&ofs=0&req0___data__=%FF%FE".into(),
            400,
        ),
        (
            open.clone(),
            "headers=NoColonHere&count=0&ofs=0".into(),
            400,
        ),
        (open.replace("VER=8", "VER=7"), "count=0&ofs=0".into(), 400),
        (
            format!("{CHANNEL}?VER=8&RID=1"),
            "count=0&ofs=0".into(),
            400,
        ),
        (
            format!("{CHANNEL}?VER=8&database=nonsense&RID=1"),
            "count=0&ofs=0".into(),
            400,
        ),
    ];
    for (url, body, status) in cases {
        let (head, answer) = fetch(&address, "POST", &url, Some(&body));
        assert_eq!(head.status, status, "{url} {body}: {answer}");
    }
    let (head, _) = fetch(&address, "GET", &channel_url("RID=7&SID=x"), None);
    assert_eq!(head.status, 400);
    let (head, answer) = fetch(
        &address,
        "POST",
        &format!("{WRITE_CHANNEL}?VER=8&RID=1"),
        Some("count=0&ofs=0"),
    );
    assert_eq!(
        head.status, 400,
        "a Write channel needs its database too: {answer}"
    );

    // An empty opening request is a channel with nothing to listen to yet, as on the emulator.
    let channel = Channel::open(&address, &[]);
    let mut back = channel.back_channel();
    assert_eq!(back.read_until_any(|_| true), [json!("noop")]);
}

/// Regression test: an open without a token used to start a session (and parse the whole
/// form) before the token was checked. Now it is refused at once and no session exists.
#[test]
fn without_dev_a_channel_without_a_token_is_refused_with_unauthenticated() {
    let data_directory = tempfile::tempdir().unwrap();
    let server = start_server(data_directory.path(), &["--project", PROJECT]);
    let (head, body) = fetch(
        server.address(),
        "POST",
        &channel_url("RID=1000&CVER=22&X-HTTP-Session-Id=gsessionid"),
        Some(&form(&[price_query(2, json!({}))], 0, None)),
    );
    assert_eq!(head.status, 401, "{body}");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["status"], "UNAUTHENTICATED", "{body}");
}

// The Write stream.

fn write_request(writes: Value) -> Value {
    json!({"streamToken": "MA==", "writes": writes})
}

fn handshake() -> Value {
    json!({"database": DATABASE})
}

/// Opens a Write channel with the handshake and reads its answer; returns the channel, its back
/// channel and the handshake's response.
fn open_write_stream(address: &str, headers: &str) -> (Channel, BackChannel, Value) {
    let channel = Channel::open_on(address, WRITE_CHANNEL, &[handshake()], headers);
    let mut back = channel.back_channel();
    let messages = back.read_until(|message| message.get("streamToken").is_some());
    (channel, back, messages.last().unwrap().clone())
}

/// Sends one write request and reads what the stream answers to it (a response or an error).
fn write_over(channel: &mut Channel, back: &mut BackChannel, writes: Value) -> Value {
    channel.last_array_id = back.last_array_id();
    channel.send(&[write_request(writes)]);
    back.read_until(|message| {
        message.get("writeResults").is_some() || message.get("error").is_some()
    })
    .pop()
    .unwrap()
}

fn get_document(address: &str, path: &str) -> (u16, Value) {
    let url = format!("http://{address}/v1/{DATABASE}/documents/{path}");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent.get(&url).call().unwrap();
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[test]
fn the_write_stream_handshakes_then_commits_each_request_with_its_results() {
    let (_data, server) = dev_server();
    let address = server.address().to_owned();
    let (mut channel, mut back, handshake) = open_write_stream(&address, SDK_HEADERS);
    assert!(handshake["streamId"].is_string(), "{handshake}");
    assert_eq!(handshake["streamToken"], "MA==");
    assert!(handshake.get("writeResults").is_none());

    // A set with a server timestamp and an increment, as the SDK sends setDoc and updateDoc.
    let created = write_over(
        &mut channel,
        &mut back,
        json!([{
            "update": {"name": format!("{SHOP}/products/a"), "fields": {"price": {"integerValue": "150"}, "stock": {"integerValue": "3"}}},
            "updateTransforms": [
                {"fieldPath": "at", "setToServerValue": "REQUEST_TIME"},
                {"fieldPath": "stock", "increment": {"integerValue": "2"}}
            ]
        }]),
    );
    assert_eq!(created["streamToken"], "MQ==", "{created}");
    let commit_time = created["commitTime"].as_str().unwrap().to_owned();
    let result = &created["writeResults"][0];
    assert_eq!(result["updateTime"], commit_time.as_str());
    assert_eq!(
        result["transformResults"][0]["timestampValue"],
        commit_time.as_str()
    );
    assert_eq!(result["transformResults"][1], json!({"integerValue": "5"}));
    let (status, stored) = get_document(&address, "shops/s1/products/a");
    assert_eq!(status, 200);
    assert_eq!(stored["fields"]["stock"], json!({"integerValue": "5"}));
    assert_eq!(stored["updateTime"], commit_time.as_str());

    // Several writes in one request are one commit: one commit time, a result each; a delete's
    // result is empty, as on the emulator.
    let batch = write_over(
        &mut channel,
        &mut back,
        json!([
            {"update": {"name": format!("{SHOP}/products/b"), "fields": {"price": {"integerValue": "500"}}},
             "updateMask": {"fieldPaths": ["price"]}},
            {"delete": format!("{SHOP}/products/a")}
        ]),
    );
    assert_eq!(batch["streamToken"], "Mg==");
    assert_eq!(
        batch["writeResults"].as_array().unwrap().len(),
        2,
        "{batch}"
    );
    assert_eq!(batch["writeResults"][0]["updateTime"], batch["commitTime"]);
    assert_eq!(batch["writeResults"][1], json!({}));
    assert_eq!(get_document(&address, "shops/s1/products/a").0, 404);
    assert_eq!(get_document(&address, "shops/s1/products/b").0, 200);

    // A request without writes is the client closing: a token, then "close", and the end.
    channel.last_array_id = back.last_array_id();
    channel.send(&[json!({"streamToken": "Mg==", "writes": []})]);
    let closing = back.read_until(|message| *message == json!("close"));
    assert_eq!(closing, [json!({"streamToken": "Mw=="}), json!("close")]);
    back.read_to_end();
}

#[test]
fn a_failed_write_ends_the_stream_with_its_status_and_writes_nothing() {
    let (_data, server) = dev_server();
    let address = server.address().to_owned();

    // updateDoc of a missing document: NOT_FOUND, and the set before it in the batch is undone.
    let (mut channel, mut back, _) = open_write_stream(&address, SDK_HEADERS);
    let refused = write_over(
        &mut channel,
        &mut back,
        json!([
            product("kept-out", 100),
            {"update": {"name": format!("{SHOP}/products/missing"), "fields": {}},
             "updateMask": {"fieldPaths": []}, "currentDocument": {"exists": true}}
        ]),
    );
    assert_eq!(refused["error"]["status"], "NOT_FOUND", "{refused}");
    back.read_to_end();
    assert_eq!(get_document(&address, "shops/s1/products/kept-out").0, 404);
    // The session is gone once its back channel has carried the error.
    let (status, _) = channel.try_send(&[write_request(json!([product("late", 1)]))]);
    assert_eq!(status, 400);

    // An invalid write (a reserved field name) is refused as :commit refuses it.
    let (mut channel, mut back, _) = open_write_stream(&address, SDK_HEADERS);
    let invalid = write_over(
        &mut channel,
        &mut back,
        json!([{"update": {"name": format!("{SHOP}/products/x"), "fields": {"__bad__": {"integerValue": "1"}}}}]),
    );
    assert_eq!(invalid["error"]["status"], "INVALID_ARGUMENT", "{invalid}");

    // A stale updateTime precondition: FAILED_PRECONDITION.
    let (mut channel, mut back, _) = open_write_stream(&address, SDK_HEADERS);
    write_over(&mut channel, &mut back, json!([product("p", 1)]));
    let stale = write_over(
        &mut channel,
        &mut back,
        json!([{"update": {"name": format!("{SHOP}/products/p"), "fields": {}},
                "currentDocument": {"updateTime": "2001-01-01T00:00:00Z"}}]),
    );
    assert_eq!(stale["error"]["status"], "FAILED_PRECONDITION", "{stale}");

    // Writes in the handshake, as on the emulator.
    let channel = Channel::open_on(
        &address,
        WRITE_CHANNEL,
        &[json!({"database": DATABASE, "writes": [product("h", 1)]})],
        SDK_HEADERS,
    );
    let messages = channel
        .back_channel()
        .read_until(|message| message.get("error").is_some());
    assert_eq!(
        messages.last().unwrap()["error"]["status"],
        "INVALID_ARGUMENT"
    );
    assert_eq!(get_document(&address, "shops/s1/products/h").0, 404);
}

#[test]
fn write_requests_are_parsed_like_commit_bodies_and_sessions_keep_to_their_stream() {
    let (_data, server) = dev_server();
    let address = server.address().to_owned();
    let (mut channel, _back, _) = open_write_stream(&address, SDK_HEADERS);
    // An unknown field is refused on the forward channel, as :commit refuses it; the stream
    // goes on.
    let (status, body) =
        channel.try_send(&[json!({"streamToken": "MA==", "writes": [], "nonsense": 1})]);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("nonsense"), "{body}");
    let (status, body) = channel.try_send(&[json!({"streamToken": "MA==", "writes": [{"update": {"name": format!("{SHOP}/products/a"), "fields": {}, "extra": 1}}]})]);
    assert_eq!(status, 400, "{body}");
    // A write request as large as the largest commit is refused with the commit's limit.
    let huge = "x".repeat(11 * 1024 * 1024);
    let (status, _) = channel.try_send(&[json!({"streamToken": "MA==", "writes": [{"update": {"name": format!("{SHOP}/products/big"), "fields": {"note": {"stringValue": huge}}}}]})]);
    assert_eq!(status, 413);
    // A Write session is unknown on the Listen path, and the other way round.
    let (head, body) = fetch(
        &address,
        "GET",
        &channel_url(&format!(
            "RID=rpc&SID={}&AID=0&CI=0&TYPE=xmlhttp",
            channel.sid()
        )),
        None,
    );
    assert_eq!((head.status, body.as_str()), (400, "Unknown SID"));
    let listen = Channel::open(&address, &[]);
    let (head, body) = fetch(
        &address,
        "GET",
        &stream_url(
            WRITE_CHANNEL,
            &format!("RID=rpc&SID={}&AID=0&CI=0&TYPE=xmlhttp", listen.sid()),
        ),
        None,
    );
    assert_eq!((head.status, body.as_str()), (400, "Unknown SID"));
    // The stream still serves the next good request.
    let mut back = channel.back_channel();
    back.read_until(|message| message.get("streamToken").is_some());
    let written = write_over(&mut channel, &mut back, json!([product("after", 120)]));
    assert!(written["commitTime"].is_string(), "{written}");
}

#[test]
fn write_sessions_share_the_bound_of_every_channel() {
    let (_data, server) = dev_server();
    let address = server.address().to_owned();
    // The default bound is 1024 sessions, Listen and Write together.
    let mut channels = Vec::new();
    for index in 0..1024 {
        let path = if index % 2 == 0 {
            CHANNEL
        } else {
            WRITE_CHANNEL
        };
        let requests = if path == WRITE_CHANNEL {
            vec![handshake()]
        } else {
            Vec::new()
        };
        channels.push(Channel::open_on(&address, path, &requests, SDK_HEADERS));
    }
    for path in [WRITE_CHANNEL, CHANNEL] {
        let (head, body) = fetch(
            &address,
            "POST",
            &stream_url(path, "RID=1&CVER=22"),
            Some(&form(&[handshake()], 0, Some(SDK_HEADERS))),
        );
        assert_eq!(head.status, 503, "{path}: {body}");
    }
    // Ending one makes room for one.
    let (head, _) = fetch(
        &address,
        "POST",
        &stream_url(
            WRITE_CHANNEL,
            &format!("SID={}&RID=9&TYPE=terminate", channels[1].sid()),
        ),
        Some(""),
    );
    assert_eq!(head.status, 200);
    let (mut channel, mut back, _) = open_write_stream(&address, SDK_HEADERS);
    let written = write_over(&mut channel, &mut back, json!([product("room", 1)]));
    assert!(written["commitTime"].is_string(), "{written}");
}

const PASSWORD: &str = "correct horse battery";

/// A server without `--dev` with shops s1 and s2 and an owner each; returns their ID tokens.
fn authenticated_server() -> (tempfile::TempDir, RunningServer, String, String) {
    let data = tempfile::tempdir().unwrap();
    for shop in ["s1", "s2"] {
        run_admin(data.path(), &["shop", "create", "--shop", shop], None);
        let email = format!("owner@{shop}.test");
        run_admin(
            data.path(),
            &[
                "user",
                "add",
                "--shop",
                shop,
                "--email",
                &email,
                "--role",
                "owner",
                "--password-stdin",
            ],
            Some(&format!("{PASSWORD}\n")),
        );
    }
    let server = start_server(data.path(), &["--project", PROJECT]);
    let sign_in = |email: &str| {
        let url = format!(
            "http://{}/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword?key=fake",
            server.address()
        );
        let mut response = ureq::post(&url)
            .header("Content-Type", "application/json")
            .send(
                json!({"email": email, "password": PASSWORD, "returnSecureToken": true})
                    .to_string(),
            )
            .unwrap();
        let body: Value =
            serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
        body["idToken"].as_str().unwrap().to_owned()
    };
    let first = sign_in("owner@s1.test");
    let second = sign_in("owner@s2.test");
    (data, server, first, second)
}

fn bearer_headers(token: &str) -> String {
    format!("Authorization:Bearer {token}\r\n{SDK_HEADERS}")
}

#[test]
fn without_dev_the_write_stream_is_authorized_as_commit_is() {
    let (_data, server, owner_of_s1, owner_of_s2) = authenticated_server();
    let address = server.address().to_owned();
    let other_shop = "projects/wc-test/databases/(default)/documents/shops/s2";

    // Without a token the opening request is refused and nothing is opened, as on Listen.
    let (head, body) = fetch(
        &address,
        "POST",
        &stream_url(WRITE_CHANNEL, "RID=1000&CVER=22"),
        Some(&form(&[handshake()], 0, Some(SDK_HEADERS))),
    );
    assert_eq!(head.status, 401, "{body}");

    // Its own shop: written.
    let (mut channel, mut back, _) = open_write_stream(&address, &bearer_headers(&owner_of_s1));
    let own = write_over(&mut channel, &mut back, json!([product("mine", 100)]));
    assert!(own["commitTime"].is_string(), "{own}");

    // Another shop, alone or behind a write of its own: PERMISSION_DENIED, nothing written.
    for writes in [
        json!([{"update": {"name": format!("{other_shop}/products/theirs"), "fields": {}}}]),
        json!([product("mine-too", 1), {"update": {"name": format!("{other_shop}/products/theirs"), "fields": {}}}]),
        json!([{"delete": format!("{other_shop}/products/seeded")}]),
    ] {
        let (mut channel, mut back, _) = open_write_stream(&address, &bearer_headers(&owner_of_s1));
        let refused = write_over(&mut channel, &mut back, writes.clone());
        assert_eq!(
            refused["error"]["status"], "PERMISSION_DENIED",
            "{writes}: {refused}"
        );
    }
    // What the owner of s2 sees of their shop: nothing was written there.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let status = agent
        .get(&format!("http://{address}/v1/{other_shop}/products/theirs"))
        .header("Authorization", &format!("Bearer {owner_of_s2}"))
        .call()
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(status, 404);
    let status = agent
        .get(&format!("http://{address}/v1/{SHOP}/products/mine-too"))
        .header("Authorization", &format!("Bearer {owner_of_s1}"))
        .call()
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(status, 404);
}

#[test]
fn many_write_requests_in_one_post_are_committed_in_order_past_the_short_queue() {
    let (_data, server) = dev_server();
    let address = server.address().to_owned();
    let (mut channel, mut back, _) = open_write_stream(&address, SDK_HEADERS);
    channel.last_array_id = back.last_array_id();
    // More requests than a Write session queues: the POST waits for room, none is lost.
    let requests: Vec<Value> = (0..6)
        .map(|index| write_request(json!([product(&format!("q{index}"), index)])))
        .collect();
    let ack = channel.send(&requests);
    assert_eq!(ack[0], 1, "{ack}");
    let mut responses = Vec::new();
    while responses.len() < 6 {
        responses.extend(
            back.read_until(|message| message.get("writeResults").is_some())
                .into_iter()
                .filter(|message| message.get("writeResults").is_some()),
        );
    }
    let tokens: Vec<&str> = responses
        .iter()
        .map(|response| response["streamToken"].as_str().unwrap())
        .collect();
    assert_eq!(tokens, ["MQ==", "Mg==", "Mw==", "NA==", "NQ==", "Ng=="]);
    for index in 0..6 {
        assert_eq!(
            get_document(&address, &format!("shops/s1/products/q{index}")).0,
            200
        );
    }
}
