//! Pretty JSON as serde_json writes it, with fewer writes.

/// `value` as `serde_json::to_string_pretty` writes it, and a newline: the
/// same bytes, but each line break and its indentation go out in one write
/// (serde's `PrettyFormatter` writes the two spaces of every level apart,
/// and a report's devices sit six levels deep).
pub fn pretty_json<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(128);
    value.serialize(&mut serde_json::Serializer::with_formatter(&mut bytes, Pretty::default()))?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// `,` then a line break then [`Pretty::SPACES`] spaces: the separators and
/// indentations [`Pretty`] writes are slices of it.
const BREAKS: [u8; 2 + Pretty::SPACES] = {
    let mut b = [b' '; 2 + Pretty::SPACES];
    b[0] = b',';
    b[1] = b'\n';
    b
};

/// serde_json's `PrettyFormatter` with its two-space indent, writing a
/// line break and its indentation as one slice of [`BREAKS`].
#[derive(Default)]
struct Pretty {
    depth: usize,
    has_value: bool,
}

impl Pretty {
    /// Indentation written in one piece (deeper is written in pieces).
    const SPACES: usize = 128;

    /// A line break (after a comma unless `first`) and the indentation of `depth`.
    #[inline]
    fn line<W: ?Sized + std::io::Write>(writer: &mut W, first: bool, depth: usize) -> std::io::Result<()> {
        let start = usize::from(first);
        let spaces = 2 * depth;
        if spaces <= Self::SPACES {
            return writer.write_all(&BREAKS[start..2 + spaces]);
        }
        writer.write_all(&BREAKS[start..2])?;
        for _ in 0..depth {
            writer.write_all(b"  ")?;
        }
        Ok(())
    }

    #[inline]
    fn open<W: ?Sized + std::io::Write>(&mut self, writer: &mut W, bracket: &[u8]) -> std::io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        writer.write_all(bracket)
    }

    #[inline]
    fn close<W: ?Sized + std::io::Write>(&mut self, writer: &mut W, bracket: &[u8]) -> std::io::Result<()> {
        self.depth -= 1;
        if self.has_value {
            Self::line(writer, true, self.depth)?;
        }
        writer.write_all(bracket)
    }
}

impl serde_json::ser::Formatter for Pretty {
    #[inline]
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.open(writer, b"[")
    }

    #[inline]
    fn end_array<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.close(writer, b"]")
    }

    #[inline]
    fn begin_array_value<W: ?Sized + std::io::Write>(&mut self, writer: &mut W, first: bool) -> std::io::Result<()> {
        Self::line(writer, first, self.depth)
    }

    #[inline]
    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, _writer: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    #[inline]
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.open(writer, b"{")
    }

    #[inline]
    fn end_object<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.close(writer, b"}")
    }

    #[inline]
    fn begin_object_key<W: ?Sized + std::io::Write>(&mut self, writer: &mut W, first: bool) -> std::io::Result<()> {
        Self::line(writer, first, self.depth)
    }

    #[inline]
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        writer.write_all(b": ")
    }

    #[inline]
    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, _writer: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::pretty_json;
    use serde_json::json;

    fn same_as_serde(value: &serde_json::Value) {
        let ours = String::from_utf8(pretty_json(value).unwrap()).unwrap();
        assert_eq!(ours, serde_json::to_string_pretty(value).unwrap() + "\n");
    }

    #[test]
    fn pretty_json_writes_serde_pretty_bytes() {
        same_as_serde(&json!({
            "a": [], "b": {}, "c": [1, [2, {}], {"d": null, "e": "x\ny"}], "f": [[]], "g": {"h": {"i": [true]}}
        }));
        same_as_serde(&json!([]));
        same_as_serde(&json!("text"));
        // Deeper than the indentation written in one piece (64 levels).
        let mut deep = json!(1);
        for i in 0..80 {
            deep = if i % 2 == 0 { json!([deep, 2]) } else { json!({"k": deep, "l": []}) };
        }
        same_as_serde(&deep);
    }
}
