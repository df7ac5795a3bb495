//! One JSON object per line, with one field rewritten and every other field passed through
//! exactly as written, in its original order.

use std::fmt;

use serde::{
    de::{MapAccess, Visitor},
    Deserialize, Deserializer,
};
use serde_json::value::RawValue;

/// The fields of a JSON object in input order, values still as raw JSON text borrowed
/// from the line.
pub struct Fields<'a>(Vec<(String, &'a RawValue)>);

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;

        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = Fields<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(4));
                while let Some(entry) = map.next_entry::<String, &'de RawValue>()? {
                    fields.push(entry);
                }
                Ok(Fields(fields))
            }
        }

        deserializer.deserialize_map(ObjectVisitor)
    }
}

/// Why a line could not be rewritten.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FieldError {
    /// The line is not one JSON object.
    #[error("not a JSON object: {0}")]
    NotAnObject(String),
    /// The object lacks the selected field.
    #[error("no {0:?} field")]
    Missing(String),
    /// The object has the selected field more than once.
    #[error("the {0:?} field appears more than once")]
    Duplicate(String),
    /// The selected field is not a JSON string.
    #[error("the {0:?} field is not a string")]
    NotAString(String),
}

impl<'a> Fields<'a> {
    /// Parses a line holding one JSON object (surrounding whitespace allowed).
    pub fn parse(line: &'a str) -> Result<Self, FieldError> {
        serde_json::from_str(line).map_err(|e| {
            // The line number serde_json adds is always 1 here; the caller names the line.
            let message = e.to_string();
            let suffix = format!(" at line {} column {}", e.line(), e.column());
            let message = message.strip_suffix(&suffix).unwrap_or(&message);
            FieldError::NotAnObject(format!("{message} (column {})", e.column()))
        })
    }

    /// The string value of the field `name`.
    pub fn string(&self, name: &str) -> Result<String, FieldError> {
        let mut matching = self.0.iter().filter(|(key, _)| key == name);
        let (_, raw) = matching
            .next()
            .ok_or_else(|| FieldError::Missing(name.to_string()))?;
        if matching.next().is_some() {
            return Err(FieldError::Duplicate(name.to_string()));
        }
        serde_json::from_str(raw.get()).map_err(|_| FieldError::NotAString(name.to_string()))
    }

    /// Writes the object as one compact line, with `name`'s value replaced by the JSON
    /// string `value`, followed by a newline.
    pub fn write_with(&self, name: &str, value: &str, out: &mut Vec<u8>) {
        out.push(b'{');
        for (i, (key, raw)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_json_string(key, out);
            out.push(b':');
            if key == name {
                write_json_string(value, out);
            } else {
                out.extend_from_slice(raw.get().as_bytes());
            }
        }
        out.extend_from_slice(b"}\n");
    }
}

fn write_json_string(s: &str, out: &mut Vec<u8>) {
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(line: &str, name: &str, value: &str) -> Result<String, FieldError> {
        let fields = Fields::parse(line)?;
        fields.string(name)?;
        let mut out = Vec::new();
        fields.write_with(name, value, &mut out);
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn other_fields_keep_their_order_and_text() {
        assert_eq!(
            rewrite(
                r#" {"z": 1.50, "value": "AA==", "a": {"b" : [1, 2]}, "k\u00e9": null} "#,
                "value",
                "QkI="
            )
            .unwrap(),
            "{\"z\":1.50,\"value\":\"QkI=\",\"a\":{\"b\" : [1, 2]},\"k\u{e9}\":null}\n"
        );
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        assert!(matches!(
            rewrite("[1]", "value", ""),
            Err(FieldError::NotAnObject(_))
        ));
        assert!(matches!(
            rewrite(r#"{"value":"a"} x"#, "value", ""),
            Err(FieldError::NotAnObject(_))
        ));
        assert_eq!(
            rewrite(r#"{"other":"a"}"#, "value", ""),
            Err(FieldError::Missing("value".to_string()))
        );
        assert_eq!(
            rewrite(r#"{"value":1}"#, "value", ""),
            Err(FieldError::NotAString("value".to_string()))
        );
        assert_eq!(
            rewrite(r#"{"value":"a","value":"b"}"#, "value", ""),
            Err(FieldError::Duplicate("value".to_string()))
        );
    }

    #[test]
    fn escaped_strings_are_read_unescaped() {
        let fields = Fields::parse(r#"{"value":"a\/b\u0041"}"#).unwrap();
        assert_eq!(fields.string("value").unwrap(), "a/bA");
    }
}
