//! Encrypting or decrypting the selected field of a stream of JSON lines.
//!
//! The selected field holds standard base64. Encryption replaces it with the base64 of a
//! fresh random salt followed by the AES-CTR ciphertext; decryption reverses that. Lines
//! are processed one at a time with bounded memory, and output is flushed whenever the
//! input has nothing more buffered, so a slow producer's records come out promptly and a
//! failure leaves every earlier record written.

use std::io::{self, BufRead, BufReader, Read, Write};

use base64::{engine::general_purpose::STANDARD, Engine};
use streambed::{crypto::SALT_SIZE, seal::Key};

use crate::json_line::{FieldError, Fields};

/// Which way values go.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Direction {
    /// Plain base64 in, salt ‖ ciphertext base64 out.
    Encrypt,
    /// Salt ‖ ciphertext base64 in, plain base64 out.
    Decrypt,
}

/// Why one line could not be processed.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    /// The line is not valid UTF-8.
    #[error("not valid UTF-8")]
    NotUtf8,
    /// The line is longer than allowed.
    #[error("longer than the {0}-byte limit (see --max-line-len)")]
    TooLong(u64),
    /// The JSON or its selected field is unusable.
    #[error(transparent)]
    Field(#[from] FieldError),
    /// The selected field is not standard base64.
    #[error("the {field:?} field is not base64: {reason}")]
    NotBase64 {
        /// The selected field.
        field: String,
        /// The decoder's complaint.
        reason: base64::DecodeError,
    },
    /// An encrypted value too short to hold its salt.
    #[error("the {field:?} field holds {len} bytes, fewer than the {SALT_SIZE}-byte salt of an encrypted value")]
    TooShort {
        /// The selected field.
        field: String,
        /// Its decoded length.
        len: usize,
    },
}

/// Why a stream stopped.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// A line was malformed; lines before it were written.
    #[error("line {line}: {reason}")]
    Line {
        /// The 1-based line number.
        line: u64,
        /// What is wrong with it.
        reason: LineError,
    },
    /// Reading the input failed.
    #[error("cannot read line {line}: {source}")]
    Read {
        /// The 1-based number of the line being read.
        line: u64,
        /// The operating system's error.
        source: io::Error,
    },
    /// Writing the output failed.
    #[error("cannot write the output: {0}")]
    Write(#[source] io::Error),
}

/// Rewrites one field of each JSON line with one key.
pub struct Cryptor {
    key: Key,
    direction: Direction,
    select: String,
}

impl Cryptor {
    /// A cryptor for the field `select`, using `key`.
    pub fn new(key: Key, direction: Direction, select: impl Into<String>) -> Self {
        Self {
            key,
            direction,
            select: select.into(),
        }
    }

    /// Appends the rewritten line, with its newline, to `out`.
    pub fn process_line(&self, line: &str, out: &mut Vec<u8>) -> Result<(), LineError> {
        let fields = Fields::parse(line)?;
        let encoded = fields.string(&self.select)?;
        let mut bytes =
            STANDARD
                .decode(encoded.as_bytes())
                .map_err(|reason| LineError::NotBase64 {
                    field: self.select.clone(),
                    reason,
                })?;
        let processed = match self.direction {
            Direction::Encrypt => STANDARD.encode(self.key.seal(&bytes, &mut rand::thread_rng())),
            Direction::Decrypt => {
                let plain = self.key.open(&mut bytes).map_err(|e| LineError::TooShort {
                    field: self.select.clone(),
                    len: e.len,
                })?;
                STANDARD.encode(plain)
            }
        };
        fields.write_with(&self.select, &processed, out);
        Ok(())
    }

    /// Processes every line of `input` into `output`, answering the number of records
    /// written. Blank lines are skipped. On a malformed line, the records before it are
    /// written and flushed, and the error names the line.
    pub fn process_stream<R: Read, W: Write>(
        &self,
        input: R,
        output: W,
        max_line_len: u64,
    ) -> Result<u64, StreamError> {
        let mut reader = BufReader::new(input);
        let mut writer = io::BufWriter::new(output);
        let mut line = Vec::new();
        let mut out = Vec::new();
        let mut line_no = 0u64;
        let mut records = 0u64;
        let result = loop {
            // About to wait for input: hand over everything done so far.
            if reader.buffer().is_empty() {
                if let Err(e) = writer.flush() {
                    break Err(StreamError::Write(e));
                }
            }
            line.clear();
            line_no += 1;
            // Room for the content, "\r\n", and one byte to detect an overlong line.
            let limit = max_line_len.saturating_add(2);
            match (&mut reader).take(limit).read_until(b'\n', &mut line) {
                Ok(0) => break Ok(records),
                Ok(_) => {}
                Err(e) => {
                    break Err(StreamError::Read {
                        line: line_no,
                        source: e,
                    })
                }
            }
            let content = strip_newline(&line);
            let fail = |reason| StreamError::Line {
                line: line_no,
                reason,
            };
            if content.len() as u64 > max_line_len {
                break Err(fail(LineError::TooLong(max_line_len)));
            }
            let Ok(text) = std::str::from_utf8(content) else {
                break Err(fail(LineError::NotUtf8));
            };
            if text.trim().is_empty() {
                continue;
            }
            out.clear();
            if let Err(reason) = self.process_line(text, &mut out) {
                break Err(fail(reason));
            }
            if let Err(e) = writer.write_all(&out) {
                break Err(StreamError::Write(e));
            }
            records += 1;
        };
        // Whatever happened, the records already processed reach the output.
        match (result, writer.flush()) {
            (Ok(records), Ok(())) => Ok(records),
            (Ok(_), Err(e)) => Err(StreamError::Write(e)),
            (Err(e), _) => Err(e),
        }
    }
}

fn strip_newline(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    use streambed::crypto::{self, KEY_SIZE};

    const KEY_BYTES: [u8; KEY_SIZE] = [4; KEY_SIZE];
    const KEY: Key = Key::new(KEY_BYTES);

    fn run(direction: Direction, input: &str, max: u64) -> (String, Result<u64, StreamError>) {
        let mut output = Vec::new();
        let result = Cryptor::new(KEY, direction, "value").process_stream(
            input.as_bytes(),
            &mut output,
            max,
        );
        (String::from_utf8(output).unwrap(), result)
    }

    #[test]
    fn encrypting_then_decrypting_gives_back_each_record() {
        let input = "{\"id\":1,\"value\":\"SGkgdGhlcmU=\"}\n\n{\"value\":\"\",\"id\":2}\r\n";
        let (encrypted, result) = run(Direction::Encrypt, input, 1024);
        assert_eq!(result.unwrap(), 2);
        assert!(!encrypted.contains("SGkgdGhlcmU="));
        let (decrypted, result) = run(Direction::Decrypt, &encrypted, 1024);
        assert_eq!(result.unwrap(), 2);
        assert_eq!(
            decrypted,
            "{\"id\":1,\"value\":\"SGkgdGhlcmU=\"}\n{\"value\":\"\",\"id\":2}\n"
        );
    }

    #[test]
    fn each_encryption_uses_a_fresh_salt() {
        let line = "{\"value\":\"SGkgdGhlcmU=\"}\n";
        let (a, _) = run(Direction::Encrypt, line, 1024);
        let (b, _) = run(Direction::Encrypt, line, 1024);
        assert_ne!(a, b);
    }

    #[test]
    fn decryption_matches_the_spec_layout() {
        let salt = [9u8; SALT_SIZE];
        let mut body = b"hello".to_vec();
        crypto::encrypt(&mut body, &KEY_BYTES, &salt);
        let sealed = [salt.to_vec(), body].concat();
        let input = format!("{{\"value\":\"{}\"}}", STANDARD.encode(sealed));
        let (out, result) = run(Direction::Decrypt, &input, 1024);
        result.unwrap();
        assert_eq!(
            out,
            format!("{{\"value\":\"{}\"}}\n", STANDARD.encode("hello"))
        );
    }

    #[test]
    fn a_bad_line_stops_the_stream_after_writing_the_good_lines_before_it() {
        let input = "{\"value\":\"AA==\"}\n{\"value\":\"AA==\"}\n{\"value\":\"not base64!\"}\n{\"value\":\"AA==\"}\n";
        let (out, result) = run(Direction::Encrypt, input, 1024);
        assert_eq!(out.lines().count(), 2);
        match result {
            Err(StreamError::Line {
                line: 3,
                reason: LineError::NotBase64 { .. },
            }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_kind_of_bad_line_is_named() {
        type IsExpected = fn(&LineError) -> bool;
        let cases: [(&str, IsExpected); 5] = [
            ("not json", |e| {
                matches!(e, LineError::Field(FieldError::NotAnObject(_)))
            }),
            ("{\"other\":\"AA==\"}", |e| {
                matches!(e, LineError::Field(FieldError::Missing(_)))
            }),
            ("{\"value\":3}", |e| {
                matches!(e, LineError::Field(FieldError::NotAString(_)))
            }),
            ("{\"value\":\"AAAA\"}", |e| {
                matches!(e, LineError::TooShort { len: 3, .. })
            }),
            ("{\"value\":\"\u{e9}\"}", |e| {
                matches!(e, LineError::NotBase64 { .. })
            }),
        ];
        for (line, expected) in cases {
            match run(Direction::Decrypt, line, 1024).1 {
                Err(StreamError::Line { line: 1, reason }) => {
                    assert!(expected(&reason), "{line}: {reason}")
                }
                other => panic!("{line}: {other:?}"),
            }
        }
        let invalid_utf8 = [b'{', 0xff, b'}', b'\n'];
        let result = Cryptor::new(KEY, Direction::Decrypt, "value").process_stream(
            &invalid_utf8[..],
            Vec::new(),
            1024,
        );
        assert!(matches!(
            result,
            Err(StreamError::Line {
                line: 1,
                reason: LineError::NotUtf8
            })
        ));
    }

    #[test]
    fn lines_longer_than_the_limit_are_refused_and_ones_at_it_pass() {
        let line = "{\"value\":\"AA==\"}"; // 16 bytes
        assert_eq!(run(Direction::Encrypt, line, 16).1.unwrap(), 1);
        assert_eq!(
            run(Direction::Encrypt, &format!("{line}\r\n"), 16)
                .1
                .unwrap(),
            1
        );
        assert!(matches!(
            run(Direction::Encrypt, &format!("{line}\n{line} \n"), 16).1,
            Err(StreamError::Line {
                line: 2,
                reason: LineError::TooLong(16)
            })
        ));
    }
}
