//! A narrow fast path for the hot messages, beside dxr (the codec of record).
//!
//! Not an XML parser: a recogniser of exactly the shapes this project and
//! the original Python nodes put on the hot path, written as the two of them
//! write them (no whitespace, or Python's newlines between tags):
//!
//! - `append_entries_rpc` calls whose entries have int commands (with or
//!   without a `sig`), the whole call valid for [`super::append_from_params`];
//! - calls whose arguments are all `<int>`, `<boolean>` or nil (`bench_click`,
//!   `click`, votes, `status()`...);
//! - method responses holding one such scalar or an array of them.
//!
//! Everything else — strings, stamps and configurations, faults, `<i4>`,
//! entities, comments, whitespace inside a value, anything truncated or
//! unexpected, and every call the typed check would refuse — gives `None`,
//! and the caller takes the dxr path. Whatever these functions return is
//! what the dxr path gives for the same bytes (`tests/wire_fast.rs` checks
//! it on the golden captures and on generated inputs).

use std::sync::Arc;

use dxr::Value;

use crate::raft::{AppendEntries, Command, WireEntry};

/// A cursor over the body's bytes. Every method returns `None` on the
/// first byte it does not expect.
struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    fn new(s: &'a str) -> Self {
        Scan {
            b: s.as_bytes(),
            i: 0,
        }
    }

    /// Skip XML whitespace (between tags only).
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn at(&self, lit: &[u8]) -> bool {
        self.b[self.i..].starts_with(lit)
    }

    /// Exactly `lit`, here.
    fn lit(&mut self, lit: &[u8]) -> Option<()> {
        if self.at(lit) {
            self.i += lit.len();
            Some(())
        } else {
            None
        }
    }

    /// Whitespace, then exactly `lit`.
    fn tag(&mut self, lit: &[u8]) -> Option<()> {
        self.ws();
        self.lit(lit)
    }

    /// Text up to the next `<`, made only of bytes `ok` accepts (so no
    /// entity, no whitespace), at least one byte.
    fn text(&mut self, ok: impl Fn(u8) -> bool) -> Option<&'a str> {
        let start = self.i;
        while let Some(&b) = self.b.get(self.i) {
            if b == b'<' {
                break;
            }
            if !ok(b) {
                return None;
            }
            self.i += 1;
        }
        if self.i == start || self.i == self.b.len() {
            return None;
        }
        // Only ASCII was accepted: a char boundary.
        std::str::from_utf8(&self.b[start..self.i]).ok()
    }

    /// An optional `-` and 1-10 digits that fit an `i32`.
    fn int_text(&mut self) -> Option<i32> {
        let t = self.text(|b| b == b'-' || b.is_ascii_digit())?;
        let digits = t.strip_prefix('-').unwrap_or(t);
        if digits.is_empty() || digits.len() > 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    }

    /// `<?xml version='1.0'?>` (or with double quotes), if there.
    fn decl(&mut self) -> Option<()> {
        if self.at(b"<?") && self.lit(b"<?xml version='1.0'?>").is_none() {
            self.lit(b"<?xml version=\"1.0\"?>")?;
        }
        Some(())
    }

    /// Only whitespace is left.
    fn end(&mut self) -> Option<()> {
        self.ws();
        (self.i == self.b.len()).then_some(())
    }

    /// After `<value>`: `<int>n</int>`, `<boolean>0|1</boolean>` or nil,
    /// then `</value>`.
    fn scalar(&mut self) -> Option<Value> {
        let v = if self.lit(b"<int>").is_some() {
            let n = self.int_text()?;
            self.lit(b"</int>")?;
            Value::Integer(n)
        } else if self.lit(b"<boolean>").is_some() {
            let b = match self.b.get(self.i) {
                Some(b'0') => false,
                Some(b'1') => true,
                _ => return None,
            };
            self.i += 1;
            self.lit(b"</boolean>")?;
            Value::Boolean(b)
        } else {
            self.nil()?;
            Value::Nil
        };
        self.lit(b"</value>")?;
        Some(v)
    }

    fn nil(&mut self) -> Option<()> {
        if self.lit(b"<nil/>").is_none() {
            self.lit(b"<nil></nil>")?;
        }
        Some(())
    }

    /// `<value><int>n</int></value>` with `n >= 0`, or nil (`allow_nil`).
    fn uint_value(&mut self, allow_nil: bool) -> Option<Option<u64>> {
        self.tag(b"<value>")?;
        match self.scalar()? {
            Value::Integer(n) if n >= 0 => Some(Some(n as u64)),
            Value::Nil if allow_nil => Some(None),
            _ => None,
        }
    }

    /// `<methodCall><methodName>`.
    /// The rest of an `<array>` (its opening tag already read) up to and
    /// including the `</value>` that closes it, each item read by `item`
    /// after its `<value>`.
    fn array_rest<T>(&mut self, mut item: impl FnMut(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        self.tag(b"<data>")?;
        let mut items = Vec::new();
        loop {
            self.ws();
            if self.lit(b"</data>").is_some() {
                break;
            }
            self.lit(b"<value>")?;
            items.push(item(self)?);
        }
        self.tag(b"</array>")?;
        self.lit(b"</value>")?;
        Some(items)
    }

    fn call_head(&mut self) -> Option<&'a str> {
        self.decl()?;
        self.tag(b"<methodCall>")?;
        self.tag(b"<methodName>")?;
        let name = self.text(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')?;
        self.lit(b"</methodName>")?;
        Some(name)
    }

    /// One entry struct: term, index, command (an int), maybe sig, once
    /// each, in any order.
    fn entry(&mut self) -> Option<WireEntry> {
        self.lit(b"<struct>")?;
        let (mut term, mut index, mut command, mut sig) = (None, None, None, None);
        loop {
            self.ws();
            if self.lit(b"</struct>").is_some() {
                break;
            }
            self.lit(b"<member>")?;
            self.tag(b"<name>")?;
            let name = self.text(|b| b.is_ascii_lowercase())?;
            self.lit(b"</name>")?;
            let fresh = match name {
                "term" => term.replace(self.uint_value(false)??).is_none(),
                "index" => index.replace(self.uint_value(true)?).is_none(),
                "command" => {
                    self.tag(b"<value>")?;
                    match self.scalar()? {
                        Value::Integer(c) => command.replace(c).is_none(),
                        _ => return None,
                    }
                }
                "sig" => {
                    self.tag(b"<value><base64>")?;
                    let b64 = self.text(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))?;
                    self.lit(b"</base64></value>")?;
                    use base64::Engine;
                    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
                    let bytes = <[u8; 64]>::try_from(bytes.as_slice()).ok()?;
                    sig.replace(Arc::new(bytes)).is_none()
                }
                _ => return None,
            };
            if !fresh {
                return None;
            }
            self.tag(b"</member>")?;
        }
        self.lit(b"</value>")?;
        Some(WireEntry {
            term: term?,
            index: index?,
            command: Command::Int(command?),
            client: None,
            sig,
        })
    }
}

/// An `append_entries_rpc` call as [`super::append_from_params`] reads it
/// from dxr's values, or `None` (take the dxr path).
pub fn append_call(body: &str) -> Option<AppendEntries> {
    let mut s = Scan::new(body);
    if s.call_head()? != "append_entries_rpc" {
        return None;
    }
    s.tag(b"<params>")?;
    s.tag(b"<param>")?;
    s.tag(b"<value>")?;
    let entries = if s.lit(b"<array>").is_some() {
        Some(s.array_rest(Scan::entry)?)
    } else {
        s.nil()?;
        s.lit(b"</value>")?;
        None
    };
    s.tag(b"</param>")?;
    s.tag(b"<param>")?;
    let term = s.uint_value(false)??;
    s.tag(b"</param>")?;
    s.tag(b"<param>")?;
    let commit_index = s.uint_value(true)?;
    s.tag(b"</param>")?;
    s.tag(b"<param>")?;
    s.tag(b"<value>")?;
    let Value::Boolean(all_log) = s.scalar()? else {
        return None;
    };
    s.tag(b"</param>")?;
    s.tag(b"</params>")?;
    s.tag(b"</methodCall>")?;
    s.end()?;
    Some(AppendEntries {
        entries,
        term,
        commit_index,
        all_log,
        proof: None,
    })
}

/// A call whose arguments are all ints, booleans or nil: its method name
/// and arguments, as `dxr::MethodCall::from_xml` gives them, or `None`.
pub fn scalar_call(body: &str) -> Option<(&str, Vec<Value>)> {
    let mut s = Scan::new(body);
    let name = s.call_head()?;
    let mut params = Vec::new();
    s.ws();
    if s.lit(b"<params>").is_some() {
        loop {
            s.ws();
            if s.lit(b"</params>").is_some() {
                break;
            }
            s.lit(b"<param>")?;
            s.tag(b"<value>")?;
            params.push(s.scalar()?);
            s.tag(b"</param>")?;
        }
    }
    s.tag(b"</methodCall>")?;
    s.end()?;
    Some((name, params))
}

/// A method response holding a scalar (int, boolean, nil) or an array of
/// them: its value, as [`super::parse_response`] gives it, or `None`
/// (faults, strings, structs, ...: the dxr path).
pub fn response(body: &str) -> Option<Value> {
    let mut s = Scan::new(body);
    s.decl()?;
    s.tag(b"<methodResponse>")?;
    s.tag(b"<params>")?;
    s.tag(b"<param>")?;
    s.tag(b"<value>")?;
    let v = if s.lit(b"<array>").is_some() {
        Value::Array(s.array_rest(Scan::scalar)?)
    } else {
        s.scalar()?
    };
    s.tag(b"</param>")?;
    s.tag(b"</params>")?;
    s.tag(b"</methodResponse>")?;
    s.end()?;
    Some(v)
}

fn push_scalar(o: &mut String, v: &Value) -> Option<()> {
    match v {
        Value::Integer(n) => {
            o.push_str("<value><int>");
            super::push_i32(o, *n);
            o.push_str("</int></value>");
        }
        Value::Boolean(true) => o.push_str("<value><boolean>1</boolean></value>"),
        Value::Boolean(false) => o.push_str("<value><boolean>0</boolean></value>"),
        Value::Nil => o.push_str("<value><nil></nil></value>"),
        _ => return None,
    }
    Some(())
}

/// The body the server sends for a successful call returning `v` — what
/// dxr writes, with Python's `<int>` — when `v` is a scalar or an array of
/// scalars; `None` for other values (the dxr path).
pub fn response_body(v: &Value) -> Option<String> {
    let mut o = String::with_capacity(160);
    o.push_str("<methodResponse><params><param>");
    match v {
        Value::Array(items) => {
            o.push_str("<value><array><data>");
            for item in items {
                push_scalar(&mut o, item)?;
            }
            o.push_str("</data></array></value>");
        }
        v => push_scalar(&mut o, v)?,
    }
    o.push_str("</param></params></methodResponse>");
    Some(o)
}
