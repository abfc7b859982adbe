//! The records of one exported file, whatever PowerShell wrote: `Export-Csv`
//! (with or without its `#TYPE` line), `ConvertTo-Json` (an array, a single
//! object, or Windows PowerShell's `{"value": [...], "Count": n}`), or
//! `Export-Clixml`; UTF-8 with or without BOM, or UTF-16 with BOM. Every
//! record becomes a list of (property, JSON value); CSV cells are strings.

use serde_json::{Map, Value};

/// One exported object.
#[derive(Clone, Debug, Default)]
pub(crate) struct Record {
    /// 1-based line of the record in the file, when the format has lines.
    pub line: Option<usize>,
    pub fields: Vec<(String, Value)>,
}

impl Record {
    /// A property, by name in any case (PowerShell's are case-insensitive).
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// A file's records, and the .NET type names it states (`#TYPE`, CliXML).
#[derive(Debug, Default)]
pub(crate) struct Table {
    pub format: &'static str,
    pub types: Vec<String>,
    pub records: Vec<Record>,
}

impl Table {
    /// Every property name seen, for recognising the cmdlet.
    pub fn has_field(&self, name: &str) -> bool {
        self.records.iter().take(50).any(|r| r.has(name))
    }

    pub fn has_field_prefix(&self, prefix: &str) -> bool {
        self.records.iter().take(50).any(|r| {
            r.fields.iter().any(|(k, _)| k.len() >= prefix.len() && k[..prefix.len()].eq_ignore_ascii_case(prefix))
        })
    }
}

/// Text of a file: UTF-8 (a BOM is dropped) or UTF-16 with a BOM.
pub(crate) fn decode(bytes: &[u8]) -> Result<String, String> {
    let utf16 = |le: bool| {
        let units: Vec<u16> = bytes[2..]
            .chunks_exact(2)
            .map(|c| if le { u16::from_le_bytes([c[0], c[1]]) } else { u16::from_be_bytes([c[0], c[1]]) })
            .collect();
        String::from_utf16(&units).map_err(|_| "invalid UTF-16".to_string())
    };
    match bytes {
        [0xFF, 0xFE, ..] => utf16(true),
        [0xFE, 0xFF, ..] => utf16(false),
        [0xEF, 0xBB, 0xBF, rest @ ..] => String::from_utf8(rest.to_vec()).map_err(|e| e.to_string()),
        _ => String::from_utf8(bytes.to_vec()).map_err(|e| {
            format!("not UTF-8 ({e}); casguard reads UTF-8, or UTF-16 with a byte-order mark (Export-Csv -Encoding UTF8 or Unicode)")
        }),
    }
}

/// Records of a JSON export.
pub(crate) fn from_json(text: &str) -> Result<Table, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("line {}: {e}", e.line()))?;
    let items = match v {
        Value::Array(a) => a,
        Value::Object(mut o) if o.len() <= 2 && o.get("value").is_some_and(Value::is_array) => {
            match o.remove("value") {
                Some(Value::Array(a)) => a,
                _ => Vec::new(),
            }
        }
        Value::Object(o) => vec![Value::Object(o)],
        _ => return Err("a JSON export holds an object or an array of objects".into()),
    };
    let mut records = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let Value::Object(o) = item else {
            return Err(format!("item {} of the array is not an object", i + 1));
        };
        records.push(Record { line: None, fields: o.into_iter().collect() });
    }
    Ok(Table { format: "JSON", types: Vec::new(), records })
}

/// Records of an `Export-Csv` file.
pub(crate) fn from_csv(text: &str) -> Result<Table, String> {
    let mut types = Vec::new();
    let mut body = text;
    let mut first_line = 1;
    if let Some(rest) = text.strip_prefix("#TYPE ") {
        let (head, tail) = rest.split_once('\n').unwrap_or((rest, ""));
        types.push(head.trim().to_string());
        body = tail;
        first_line = 2;
    }
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(body.as_bytes());
    let headers: Vec<String> =
        reader.headers().map_err(|e| format!("line {first_line}: {e}"))?.iter().map(|h| h.trim().to_string()).collect();
    if headers.iter().all(String::is_empty) {
        return Err("no header row".into());
    }
    // Lines are counted here: the csv crate's own count differs with CRLF line ends.
    let bytes = body.as_bytes();
    let (mut at, mut line) = (0usize, first_line);
    let mut line_of = |byte: u64| {
        // With CRLF ends a record's position can fall on the `\n` before it.
        let mut byte = (byte as usize).min(bytes.len());
        while byte < bytes.len() && matches!(bytes[byte], b'\r' | b'\n') {
            byte += 1;
        }
        if byte >= at {
            line += newlines(&bytes[at..byte]);
            at = byte;
        }
        line
    };
    let mut records = Vec::new();
    for row in reader.records() {
        let row = row.map_err(|e| {
            let l = e.position().map_or(first_line, |p| line_of(p.byte()));
            format!("line {l}: {e}")
        })?;
        let line = row.position().map(|p| line_of(p.byte()));
        let fields = headers.iter().cloned().zip(row.iter().map(|c| Value::String(c.to_string()))).collect();
        records.push(Record { line, fields });
    }
    Ok(Table { format: "CSV", types, records })
}

fn newlines(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c == b'\n').count()
}

/// Records of an `Export-Clixml` file (PowerShell's serialization format).
pub(crate) fn from_clixml(doc: &roxmltree::Document) -> Result<Table, String> {
    let root = doc.root_element();
    let mut types = Vec::new();
    let mut records = Vec::new();
    for obj in root.children().filter(|n| n.has_tag_name("Obj")) {
        if let Some(tn) = obj.children().find(|n| n.has_tag_name("TN")) {
            for t in tn.children().filter(|n| n.has_tag_name("T")) {
                types.extend(t.text().map(str::to_string));
            }
        }
        let line = doc.text_pos_at(obj.range().start).row as usize;
        let mut fields = Vec::new();
        for props in obj.children().filter(|n| n.has_tag_name("Props") || n.has_tag_name("MS")) {
            for p in props.children().filter(|n| n.is_element()) {
                if let Some(name) = p.attribute("N") {
                    fields.push((name.to_string(), clixml_value(p, 0)));
                }
            }
        }
        records.push(Record { line: Some(line), fields });
    }
    Ok(Table { format: "CliXML", types, records })
}

/// Objects nested deeper than this are not read: Exchange's are a few levels deep.
const MAX_DEPTH: usize = 16;

fn clixml_value(n: roxmltree::Node, depth: usize) -> Value {
    let text = || n.text().unwrap_or("").to_string();
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    match n.tag_name().name() {
        "Nil" => Value::Null,
        "B" => Value::Bool(n.text().is_some_and(|t| t.trim().eq_ignore_ascii_case("true"))),
        "S" | "G" | "URI" | "Version" | "DT" | "TS" | "C" => Value::String(text()),
        "I32" | "I64" | "I16" | "U32" | "U64" | "By" | "SB" | "U16" | "Db" | "Sg" | "D" => {
            text().trim().parse::<f64>().ok().and_then(serde_json::Number::from_f64).map_or(Value::Null, Value::Number)
        }
        "Obj" => {
            // A collection, else the object's text (enums and Exchange ids write their name there).
            if let Some(list) = n.children().find(|c| c.has_tag_name("LST") || c.has_tag_name("IE")) {
                return Value::Array(
                    list.children().filter(|c| c.is_element()).map(|c| clixml_value(c, depth + 1)).collect(),
                );
            }
            let mut o = Map::new();
            if let Some(s) = n.children().find(|c| c.has_tag_name("ToString")).and_then(|c| c.text()) {
                o.insert("ToString".into(), Value::String(s.to_string()));
            }
            for props in n.children().filter(|c| c.has_tag_name("Props") || c.has_tag_name("MS")) {
                for p in props.children().filter(|c| c.is_element()) {
                    if let Some(name) = p.attribute("N") {
                        o.insert(name.to_string(), clixml_value(p, depth + 1));
                    }
                }
            }
            Value::Object(o)
        }
        _ => Value::String(text()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        assert_eq!(decode(b"\xEF\xBB\xBFa,b").unwrap(), "a,b");
        let utf16: Vec<u8> = [0xFF, 0xFE].into_iter().chain("a,é".encode_utf16().flat_map(u16::to_le_bytes)).collect();
        assert_eq!(decode(&utf16).unwrap(), "a,é");
        assert!(decode(b"caf\xE9").unwrap_err().contains("UTF-16 with a byte-order mark"));
    }

    #[test]
    fn csv_with_type_line_and_json_shapes() {
        let t =
            from_csv("#TYPE Deserialized.X.CASMailbox\r\n\"Name\",\"OWAEnabled\"\r\n\"a\",\"False\"\r\n\"b\",\"\"\r\n")
                .unwrap();
        assert_eq!(t.types, ["Deserialized.X.CASMailbox"]);
        assert_eq!(t.records.len(), 2);
        assert_eq!(t.records[1].line, Some(4));
        assert_eq!(t.records[0].get("owaenabled"), Some(&Value::String("False".into())));
        let one = from_json(r#"{"Name":"a","OWAEnabled":false}"#).unwrap();
        assert_eq!(one.records.len(), 1);
        let wrapped = from_json(r#"{"value":[{"Name":"a"},{"Name":"b"}],"Count":2}"#).unwrap();
        assert_eq!(wrapped.records.len(), 2);
        assert!(from_json("[1]").is_err());
    }
}
