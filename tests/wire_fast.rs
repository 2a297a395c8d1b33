//! The fast decode path (`wire::fast`) against dxr, the codec of record:
//! whenever the fast path answers, its answer is exactly what the dxr path
//! gives for the same bytes; it declines (`None`) everything else. Checked
//! on every golden capture, on the bodies the nodes send, and on more than
//! 10,000 generated calls and replies (extreme ints, nils, whitespace
//! variants, `<i4>`, strings, stamps, faults) and their truncated and
//! corrupted copies.

use std::path::{Path, PathBuf};

use dxr::{MethodCall, MethodResponse, Value};
use raftian::raft::{AppendEntries, Command, Rpc, Stamp, WireEntry};
use raftian::wire::{self, fast};

// ------------------------------------------------------------ the oracle

/// What the fast path said about a body.
#[derive(Default, Debug)]
struct Took {
    append: bool,
    scalar: bool,
    response: bool,
}

/// Run every fast decoder on `body`; any answer must equal dxr's.
fn check(body: &str) -> Took {
    let mut took = Took::default();
    let dxr_call = || {
        MethodCall::from_xml(body)
            .unwrap_or_else(|e| panic!("fast path took what dxr refuses ({e}): {body:?}"))
    };
    if let Some(a) = fast::append_call(body) {
        let call = dxr_call();
        assert_eq!(call.name, "append_entries_rpc", "{body:?}");
        let want = wire::append_from_params(&call.params)
            .unwrap_or_else(|f| panic!("fast path took an append dxr refuses ({f:?}): {body:?}"));
        assert_eq!(a, want, "{body:?}");
        took.append = true;
    }
    if let Some((name, params)) = fast::scalar_call(body) {
        let call = dxr_call();
        assert_eq!(name, call.name, "{body:?}");
        assert_eq!(params, call.params, "{body:?}");
        took.scalar = true;
    }
    if let Some(v) = fast::response(body) {
        match wire::parse_response_dxr(body) {
            Ok(Ok(want)) => assert_eq!(v, want, "{body:?}"),
            other => panic!("fast path took a response dxr reads as {other:?}: {body:?}"),
        }
        // And the public entry point gives the same.
        assert_eq!(wire::parse_response(body), Ok(Ok(v)));
        took.response = true;
    }
    took
}

// --------------------------------------------------------------- captures

fn wire_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/wire")
}

fn capture_body(path: &Path) -> String {
    let text = String::from_utf8(std::fs::read(path).unwrap()).unwrap();
    match text.split_once("\r\n\r\n") {
        Some((_, body)) => body.to_owned(),
        None => text,
    }
}

#[test]
fn golden_captures_decode_as_dxr_decodes_them() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(wire_dir())
        .expect("the golden captures")
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 14, "{files:?}");
    let mut appends = 0;
    for path in &files {
        let name = path.file_name().unwrap().to_str().unwrap();
        let body = capture_body(path);
        let took = check(&body);
        if name.contains("request") && name.contains("append_entries") {
            assert!(took.append, "{name}: the fast path should take it");
            appends += 1;
        }
        if name.contains("heartbeat") && name.contains("request") {
            // A nil-entries append (the capture the Python node faulted on).
            assert!(took.append, "{name}");
        }
        if name.starts_with("is_log_empty") && name.contains("request") {
            assert!(took.scalar, "{name}");
        }
        if name.contains("response") && !name.contains("fault") {
            assert!(took.response, "{name}: the fast path should take it");
        }
        if name.contains("fault") && name.contains("response") {
            assert!(!took.response, "{name}: faults take the dxr path");
        }
        // Python's layout with every newline doubled or made \r\n: same.
        for ws in ["\n\n", "\r\n", " \t\n"] {
            check(&body.replace('\n', ws));
        }
        for n in 0..body.len() {
            if body.is_char_boundary(n) && body[..n].trim_end() != body.trim_end() {
                let t = check(&body[..n]);
                assert!(!t.append && !t.response, "{name} cut at {n} was taken");
            }
        }
    }
    assert!(appends >= 4);
}

// ----------------------------------------------------- the nodes' bodies

fn entry(term: u64, index: Option<u64>, command: Command, sig: bool) -> WireEntry {
    WireEntry {
        term,
        index,
        command,
        client: None,
        sig: sig.then(|| std::sync::Arc::new([7u8; 64])),
    }
}

#[test]
fn what_nodes_send_takes_the_fast_path_unless_it_holds_text_or_stamps() {
    let max = i32::MAX as u64;
    let mut rng = Rng(7);
    for n in 0..2000 {
        let len = rng.below(6) as usize;
        let mut plain = true;
        let entries = (0..len)
            .map(|_| {
                let command = match rng.below(10) {
                    0 => {
                        plain = false;
                        Command::Text(["", "x", "<&>"][rng.below(3) as usize].into())
                    }
                    1 => {
                        plain = false;
                        Command::Stamp(Stamp {
                            ms: 1_800_000_000_000 + rng.below(1000),
                            limit: rng.below(50) as u32,
                        })
                    }
                    _ => Command::Int(rng.int()),
                };
                let term = [0, 1, max, rng.below(max + 1)][rng.below(4) as usize];
                let index = [None, Some(0), Some(max), Some(rng.below(max + 1))];
                entry(
                    term,
                    index[rng.below(4) as usize],
                    command,
                    rng.below(3) == 0,
                )
            })
            .collect();
        let heartbeat = n % 7 == 0;
        plain |= heartbeat;
        let a = AppendEntries {
            entries: (!heartbeat).then_some(entries),
            term: rng.below(max + 1),
            commit_index: [None, Some(0), Some(max)][rng.below(3) as usize],
            all_log: rng.below(2) == 0,
            proof: None,
        };
        let body = wire::rpc_body(&Rpc::AppendEntries(a.clone())).unwrap();
        let took = check(&body);
        assert_eq!(took.append, plain, "{body}");
        if plain {
            assert_eq!(fast::append_call(&body), Some(a));
        }
        // Replies as the server writes them, and dxr writes them.
        let reply = Value::Array(vec![
            Value::Boolean(rng.below(2) == 0),
            Value::Integer(rng.int()),
        ]);
        let dxr_body = dxr_response_body(&reply);
        assert_eq!(fast::response_body(&reply).as_deref(), Some(&*dxr_body));
        assert!(check(&dxr_body).response);
    }
}

fn dxr_response_body(v: &Value) -> String {
    let r = MethodResponse { value: v.clone() };
    wire::int_tags(r.to_xml().unwrap())
}

#[test]
fn response_bodies_are_what_dxr_writes() {
    let mut rng = Rng(11);
    for _ in 0..3000 {
        let v = if rng.below(3) == 0 {
            rng.scalar_value()
        } else {
            Value::Array((0..rng.below(4)).map(|_| rng.scalar_value()).collect())
        };
        assert_eq!(
            fast::response_body(&v),
            Some(dxr_response_body(&v)),
            "{v:?}"
        );
    }
    // Anything else is dxr's.
    assert_eq!(fast::response_body(&Value::String("x".into())), None);
    let nested = Value::Array(vec![Value::Array(vec![])]);
    assert_eq!(fast::response_body(&nested), None);
    let signed_vote = Value::Array(vec![Value::Integer(1), Value::Base64(vec![1; 64])]);
    assert_eq!(fast::response_body(&signed_vote), None);
}

// -------------------------------------------------------------- generated

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }

    fn int(&mut self) -> i32 {
        match self.below(6) {
            0 => [0, 1, -1, i32::MAX, i32::MIN, i32::MAX - 1, i32::MIN + 1][self.below(7) as usize],
            1 => self.below(10) as i32,
            _ => self.next() as i32,
        }
    }

    fn scalar_value(&mut self) -> Value {
        match self.below(3) {
            0 => Value::Integer(self.int()),
            1 => Value::Boolean(self.below(2) == 0),
            _ => Value::Nil,
        }
    }

    /// Mostly nothing, else whitespace the way Python or a person might.
    fn sep(&mut self) -> &'static str {
        if self.below(3) == 0 {
            if self.below(30) == 0 {
                // Not XML whitespace.
                self.pick(&["\u{a0}", "\u{b}"])
            } else {
                self.pick(&["\n", " ", "\t", "\r\n", "\n\n  "])
            }
        } else {
            ""
        }
    }

    /// The text of an `<int>`: usually an int, sometimes what dxr may or
    /// may not read as one.
    fn int_text(&mut self) -> String {
        if self.below(40) == 0 {
            self.pick(&[
                "",
                "-",
                "+5",
                " 5",
                "5 ",
                "007",
                "-0",
                "00",
                "2147483648",
                "-2147483649",
                "99999999999",
                "1&#48;",
                "&#49;",
                "1.0",
                "0x10",
                "--1",
                "1-",
                "١",
            ])
            .to_owned()
        } else {
            self.int().to_string()
        }
    }

    fn int_value(&mut self) -> String {
        let t = self.int_text();
        self.int_value_of(t)
    }

    /// A term or an index: mostly not negative.
    fn uint_value(&mut self) -> String {
        let t = self.int_text();
        let t = match t.strip_prefix('-') {
            Some(u) if self.below(10) != 0 => u.to_owned(),
            _ => t,
        };
        self.int_value_of(t)
    }

    fn int_value_of(&mut self, text: String) -> String {
        let tag = if self.below(20) == 0 { "i4" } else { "int" };
        self.wrap(format!("<{tag}>{text}</{tag}>"))
    }

    fn nil_value(&mut self) -> String {
        let inner = if self.below(8) == 0 {
            self.pick(&["<nil />", "<nil>x</nil>", "<nil>"])
        } else {
            self.pick(&["<nil/>", "<nil></nil>"])
        };
        self.wrap(inner.to_owned())
    }

    fn bool_value(&mut self) -> String {
        let b = if self.below(10) == 0 {
            self.pick(&["2", "true", "", " 1", "01", "-1"])
        } else {
            self.pick(&["0", "1"])
        };
        self.wrap(format!("<boolean>{b}</boolean>"))
    }

    /// `<value>` around `inner`, rarely with whitespace inside.
    fn wrap(&mut self, inner: String) -> String {
        if self.below(50) == 0 {
            let (a, b) = (self.sep(), self.sep());
            format!("<value>{a}{inner}{b}</value>")
        } else {
            format!("<value>{inner}</value>")
        }
    }

    fn string_value(&mut self) -> String {
        let s = self.pick(&["", "x", "a&amp;b", "12"]);
        if self.below(3) == 0 {
            format!("<value>{s}</value>")
        } else {
            format!("<value><string>{s}</string></value>")
        }
    }

    fn scalar(&mut self) -> String {
        match self.below(20) {
            0 => self.string_value(),
            1 => "<value><double>1.5</double></value>".into(),
            2..=8 => self.int_value(),
            9..=13 => self.bool_value(),
            _ => self.nil_value(),
        }
    }

    fn sig_value(&mut self) -> String {
        use base64::Engine;
        let n = [64, 64, 64, 64, 64, 64, 64, 64, 64, 63, 65, 0][self.below(12) as usize];
        let bytes: Vec<u8> = (0..n).map(|_| self.next() as u8).collect();
        let mut b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        if self.below(10) == 0 && b64.len() > 40 {
            b64.insert(40, '\n');
        }
        if self.below(20) == 0 {
            b64.pop();
        }
        format!("<value><base64>{b64}</base64></value>")
    }

    fn command_value(&mut self) -> String {
        match self.below(40) {
            0 => self.string_value(),
            1 => {
                let s = self.sep();
                format!(
                    "<value><struct><member><name>limit</name><value><int>20</int></value></member>{s}<member><name>stamp</name><value><string>1800000000123</string></value></member></struct></value>"
                )
            }
            2 => self.nil_value(),
            _ => self.int_value(),
        }
    }

    fn entry(&mut self) -> String {
        let mut members: Vec<(String, String)> = vec![
            ("term".into(), self.uint_value()),
            (
                "index".into(),
                if self.below(3) == 0 {
                    self.nil_value()
                } else {
                    self.uint_value()
                },
            ),
            ("command".into(), self.command_value()),
        ];
        if self.below(4) == 0 {
            members.push(("sig".into(), self.sig_value()));
        }
        match self.below(60) {
            0 => {
                members.remove(self.below(members.len() as u64) as usize);
            }
            1 => members.push(("term".into(), self.int_value())),
            2 => members.push(("extra".into(), self.int_value())),
            3 => members[0].0 = "Term".into(),
            _ => {}
        }
        // Python writes term, index, command; dxr sorts by name.
        if self.below(2) == 0 {
            for i in (1..members.len()).rev() {
                members.swap(i, self.below(i as u64 + 1) as usize);
            }
        }
        let mut o = String::from("<value><struct>");
        for (name, value) in members {
            let s = [self.sep(), self.sep(), self.sep(), self.sep()];
            o += &format!(
                "{}<member>{}<name>{name}</name>{}{value}{}</member>",
                s[0], s[1], s[2], s[3]
            );
        }
        o += self.sep();
        o += "</struct></value>";
        o
    }

    fn decl(&mut self) -> &'static str {
        [
            "<?xml version='1.0'?>\n",
            "<?xml version='1.0'?>",
            "<?xml version=\"1.0\"?>\n",
            "",
            "<?xml version='1.0' encoding='utf-8'?>\n",
            " <?xml version='1.0'?>",
            "\u{feff}<?xml version='1.0'?>",
        ][[0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 5, 6][self.below(18) as usize]]
    }

    fn param(&mut self, value: String) -> String {
        let s = [self.sep(), self.sep(), self.sep()];
        format!("<param>{}{value}{}</param>{}", s[0], s[1], s[2])
    }

    fn call(&mut self, name: &str, params: Vec<String>) -> String {
        let d = self.decl();
        let s = [self.sep(), self.sep(), self.sep(), self.sep(), self.sep()];
        let params = if params.is_empty() && self.below(2) == 0 {
            String::new()
        } else {
            let ps: String = params.into_iter().map(|p| self.param(p)).collect();
            format!("<params>{}{ps}</params>{}", s[2], s[3])
        };
        format!(
            "{d}<methodCall>{}<methodName>{name}</methodName>{}{params}</methodCall>{}",
            s[0], s[1], s[4]
        )
    }

    fn append(&mut self) -> String {
        let entries = if self.below(6) == 0 {
            self.nil_value()
        } else {
            let n = self.below(5);
            let es: String = (0..n)
                .map(|_| {
                    let s = self.sep();
                    format!("{}{s}", self.entry())
                })
                .collect();
            let s = self.sep();
            format!("<value><array>{s}<data>{s}{es}</data>{s}</array></value>")
        };
        let mut params = vec![
            entries,
            self.uint_value(),
            if self.below(2) == 0 {
                self.nil_value()
            } else {
                self.uint_value()
            },
            self.bool_value(),
        ];
        match self.below(60) {
            0 => {
                params.pop();
            }
            1 => params.push(self.scalar()),
            2 => params.swap(1, 3),
            _ => {}
        }
        let name = if self.below(40) == 0 {
            "append_entries"
        } else {
            "append_entries_rpc"
        };
        self.call(name, params)
    }

    fn scalar_call(&mut self) -> String {
        let name = self.pick(&[
            "bench_click",
            "click",
            "request_vote_rpc",
            "pre_vote_rpc",
            "is_log_empty",
            "status",
            "timeout_now_rpc",
            "system.listMethods",
            "a-b",
            "",
        ]);
        let n = self.below(5);
        let params = (0..n).map(|_| self.scalar()).collect();
        self.call(name, params)
    }

    fn response(&mut self) -> String {
        let d = self.decl();
        let s = [self.sep(), self.sep(), self.sep(), self.sep(), self.sep()];
        let value = match self.below(10) {
            0 => {
                let code = self.int_text();
                return format!(
                    "{d}<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>{code}</int></value></member><member><name>faultString</name><value><string>no</string></value></member></struct></value></fault></methodResponse>"
                );
            }
            1..=3 => self.scalar(),
            4 => "<value><array><data><value><array><data></data></array></value></data></array></value>".into(),
            5 => self.sig_value(),
            _ => {
                let n = [2, 2, 2, 0, 1, 3][self.below(6) as usize];
                let items: String = (0..n)
                    .map(|_| {
                        let s = self.sep();
                        format!("{}{s}", self.scalar())
                    })
                    .collect();
                format!("<value><array>{}<data>{}{items}</data>{}</array></value>", s[0], s[1], s[2])
            }
        };
        let params = if self.below(30) == 0 {
            format!("<param>{value}</param><param>{value}</param>")
        } else {
            self.param(value)
        };
        format!(
            "{d}<methodResponse>{}<params>{params}</params>{}</methodResponse>\n",
            s[3], s[4]
        )
    }

    /// A damaged copy: cut short, a byte changed, a range dropped or doubled.
    fn mutate(&mut self, body: &str) -> String {
        let b = body.as_bytes();
        let at = self.below(b.len() as u64 + 1) as usize;
        let mut out: Vec<u8> = match self.below(5) {
            0 => b[..at].to_vec(),
            1 => {
                let mut v = b.to_vec();
                if at < v.len() {
                    v[at] = b"<>/ &;-1x0\n=\"'!?"[self.below(16) as usize];
                }
                v
            }
            2 => {
                let end = (at + 1 + self.below(12) as usize).min(b.len());
                [&b[..at], &b[end..]].concat()
            }
            3 => {
                let end = (at + 1 + self.below(12) as usize).min(b.len());
                [&b[..end], &b[at..]].concat()
            }
            _ => {
                let ins = self.pick(&["<!-- c -->", "<![CDATA[1]]>", "&amp;", " ", "<x/>", "-"]);
                [&b[..at], ins.as_bytes(), &b[at..]].concat()
            }
        };
        // Keep it text (the server only sees UTF-8 bodies).
        while std::str::from_utf8(&out).is_err() {
            out.pop();
        }
        String::from_utf8(out).unwrap()
    }
}

#[test]
fn generated_inputs_decode_as_dxr_decodes_them_or_are_declined() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let (mut inputs, mut appends, mut scalars, mut responses) = (0, 0, 0, 0);
    for i in 0..6000 {
        let body = match i % 3 {
            0 => rng.append(),
            1 => rng.scalar_call(),
            _ => rng.response(),
        };
        for variant in 0..3 {
            let b = if variant == 0 {
                body.clone()
            } else {
                rng.mutate(&body)
            };
            let t = check(&b);
            inputs += 1;
            appends += t.append as u32;
            scalars += t.scalar as u32;
            responses += t.response as u32;
        }
    }
    eprintln!(
        "{inputs} inputs: fast path took {appends} appends, {scalars} scalar calls, {responses} responses"
    );
    assert!(inputs > 10_000);
    // The generator is not vacuous: the fast path takes a good share.
    assert!(appends > 300, "{appends}");
    assert!(scalars > 300, "{scalars}");
    assert!(responses > 300, "{responses}");
}
