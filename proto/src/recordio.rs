//! RecordIO framing as used by the Mesos HTTP APIs.
//!
//! A stream is a sequence of records, each written as
//! `<record-size> LF <record-data>`: the payload length in bytes as ASCII
//! decimal digits, one `\n` (0x0A), then exactly that many payload bytes. There
//! is no separator after the payload. Payloads may contain `\n` (protobuf
//! bytes), so only the length tells where a record ends.
//!
//! HTTP chunk and TCP segment boundaries are unrelated to record boundaries:
//! feed whatever bytes arrive to [`RecordIoDecoder::push`] and drain complete
//! records with [`RecordIoDecoder::next_record`].

use thiserror::Error;

/// Default upper bound for a single record, in bytes (64 MiB).
pub const DEFAULT_MAX_RECORD_LEN: usize = 64 * 1024 * 1024;

/// A length prefix longer than this many digits is rejected even if its value
/// is small (e.g. endless leading zeros); `u64::MAX` has 20 digits.
const MAX_PREFIX_DIGITS: usize = 20;

/// Frames one record: decimal length, `\n`, then the bytes.
pub fn encode_frame(record: &[u8]) -> Vec<u8> {
    let prefix = record.len().to_string();
    let mut frame = Vec::with_capacity(prefix.len() + 1 + record.len());
    frame.extend_from_slice(prefix.as_bytes());
    frame.push(b'\n');
    frame.extend_from_slice(record);
    frame
}

/// Errors from [`RecordIoDecoder`]. After an error the stream is corrupt and
/// the decoder keeps returning the same error; start a new stream instead.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecordIoError {
    /// A byte other than an ASCII digit or the terminating `\n` appeared in a
    /// length prefix.
    #[error("invalid byte {byte:#04x} in RecordIO length prefix")]
    InvalidPrefixByte {
        /// The offending byte.
        byte: u8,
    },
    /// A `\n` with no digits before it.
    #[error("empty RecordIO length prefix")]
    EmptyPrefix,
    /// The length prefix has more digits than any valid length.
    #[error("RecordIO length prefix longer than {MAX_PREFIX_DIGITS} digits")]
    PrefixTooLong,
    /// The announced record length is above the decoder's limit.
    #[error("RecordIO record length exceeds the limit of {max} bytes")]
    RecordTooLarge {
        /// The configured limit.
        max: usize,
    },
    /// The stream ended inside a record (see [`RecordIoDecoder::finish`]).
    #[error("RecordIO stream ended inside a record ({buffered} bytes pending)")]
    Truncated {
        /// Unconsumed bytes left in the decoder (a partial prefix or payload).
        buffered: usize,
    },
}

/// Incremental RecordIO decoder.
///
/// ```
/// use proto::recordio::{encode_frame, RecordIoDecoder};
///
/// let frame = encode_frame(b"hello");
/// let mut decoder = RecordIoDecoder::new();
/// decoder.push(&frame[..3]);
/// assert_eq!(decoder.next_record().unwrap(), None);
/// decoder.push(&frame[3..]);
/// assert_eq!(decoder.next_record().unwrap(), Some(b"hello".to_vec()));
/// ```
#[derive(Debug, Clone)]
pub struct RecordIoDecoder {
    /// Received bytes; `buf[start..]` is not consumed yet.
    buf: Vec<u8>,
    start: usize,
    /// Length of the current record once its prefix has been read.
    record_len: Option<usize>,
    max_record_len: usize,
}

impl Default for RecordIoDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl RecordIoDecoder {
    /// A decoder that accepts records up to [`DEFAULT_MAX_RECORD_LEN`] bytes.
    pub fn new() -> Self {
        Self::with_max_record_len(DEFAULT_MAX_RECORD_LEN)
    }

    /// A decoder that rejects records longer than `max_record_len` bytes.
    pub fn with_max_record_len(max_record_len: usize) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            record_len: None,
            max_record_len,
        }
    }

    /// Appends received bytes; a chunk may hold any part of any number of
    /// records.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// Returns the next complete record, `Ok(None)` if more bytes are needed.
    pub fn next_record(&mut self) -> Result<Option<Vec<u8>>, RecordIoError> {
        let len = match self.record_len {
            Some(len) => len,
            None => match self.read_prefix()? {
                Some(len) => {
                    self.record_len = Some(len);
                    len
                }
                None => return Ok(None),
            },
        };
        let pending = &self.buf[self.start..];
        if pending.len() < len {
            return Ok(None);
        }
        let record = pending[..len].to_vec();
        self.start += len;
        self.record_len = None;
        self.compact();
        Ok(Some(record))
    }

    /// Call at end of stream: fails if a partial record (or prefix) is left.
    pub fn finish(&self) -> Result<(), RecordIoError> {
        let buffered = self.buf.len() - self.start;
        if buffered == 0 && self.record_len.is_none() {
            Ok(())
        } else {
            Err(RecordIoError::Truncated { buffered })
        }
    }

    /// Parses a complete length prefix at `start` and consumes it, or returns
    /// `Ok(None)` if its `\n` has not arrived yet.
    fn read_prefix(&mut self) -> Result<Option<usize>, RecordIoError> {
        let mut len: usize = 0;
        for (i, &byte) in self.buf[self.start..].iter().enumerate() {
            match byte {
                b'\n' if i == 0 => return Err(RecordIoError::EmptyPrefix),
                b'\n' => {
                    self.start += i + 1;
                    return Ok(Some(len));
                }
                b'0'..=b'9' => {
                    if i >= MAX_PREFIX_DIGITS {
                        return Err(RecordIoError::PrefixTooLong);
                    }
                    len = len
                        .checked_mul(10)
                        .and_then(|l| l.checked_add(usize::from(byte - b'0')))
                        .filter(|&l| l <= self.max_record_len)
                        .ok_or(RecordIoError::RecordTooLarge {
                            max: self.max_record_len,
                        })?;
                }
                _ => return Err(RecordIoError::InvalidPrefixByte { byte }),
            }
        }
        Ok(None)
    }

    /// Drops consumed bytes once they make up at least half of the buffer, so
    /// the buffer stays bounded without shifting bytes on every record.
    fn compact(&mut self) {
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(decoder: &mut RecordIoDecoder) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(record) = decoder.next_record().unwrap() {
            out.push(record);
        }
        out
    }

    #[test]
    fn encode_frame_writes_decimal_length_and_lf() {
        assert_eq!(encode_frame(&[0x08, 0x08]), b"2\n\x08\x08".to_vec());
        assert_eq!(
            encode_frame(br#"{"type":"HEARTBEAT"}"#),
            b"20\n{\"type\":\"HEARTBEAT\"}".to_vec()
        );
        assert_eq!(encode_frame(b""), b"0\n".to_vec());
    }

    #[test]
    fn several_records_in_one_chunk() {
        let records: [&[u8]; 4] = [b"a", b"\n\n\n", b"", b"0123456789abc"];
        let stream: Vec<u8> = records.iter().flat_map(|r| encode_frame(r)).collect();
        let mut decoder = RecordIoDecoder::new();
        decoder.push(&stream);
        assert_eq!(drain(&mut decoder), records.map(<[u8]>::to_vec).to_vec());
        assert_eq!(decoder.next_record(), Ok(None));
        assert_eq!(decoder.finish(), Ok(()));
    }

    #[test]
    fn records_split_at_every_possible_boundary() {
        let records: Vec<Vec<u8>> = vec![
            b"first\nrecord".to_vec(),
            vec![0x0a; 12],
            (0u8..=255).collect(),
        ];
        let stream: Vec<u8> = records.iter().flat_map(|r| encode_frame(r)).collect();
        for a in 0..=stream.len() {
            for b in (a..=stream.len()).step_by(7) {
                let mut decoder = RecordIoDecoder::new();
                let mut got = Vec::new();
                for chunk in [&stream[..a], &stream[a..b], &stream[b..]] {
                    decoder.push(chunk);
                    got.extend(drain(&mut decoder));
                }
                assert_eq!(got, records, "split at {a}/{b}");
                assert_eq!(decoder.finish(), Ok(()));
            }
        }
    }

    #[test]
    fn one_byte_at_a_time() {
        let stream = [encode_frame(b"xyz"), encode_frame(b"12345678901")].concat();
        let mut decoder = RecordIoDecoder::new();
        let mut got = Vec::new();
        for byte in &stream {
            decoder.push(std::slice::from_ref(byte));
            got.extend(drain(&mut decoder));
        }
        assert_eq!(got, vec![b"xyz".to_vec(), b"12345678901".to_vec()]);
    }

    #[test]
    fn rejects_non_digit_prefix() {
        for (input, byte) in [
            (&b"1a\nx"[..], b'a'),
            (b"-1\nx", b'-'),
            (b" 5\nhello", b' '),
            (b"5\r\nhello", b'\r'),
            (b"{\"type\"", b'{'),
        ] {
            let mut decoder = RecordIoDecoder::new();
            decoder.push(input);
            let err = RecordIoError::InvalidPrefixByte { byte };
            assert_eq!(decoder.next_record(), Err(err.clone()), "{input:?}");
            // The error is sticky.
            assert_eq!(decoder.next_record(), Err(err));
        }
    }

    #[test]
    fn rejects_bad_prefix_after_a_good_record() {
        let mut decoder = RecordIoDecoder::new();
        decoder.push(b"2\nokx\n");
        assert_eq!(decoder.next_record(), Ok(Some(b"ok".to_vec())));
        assert_eq!(
            decoder.next_record(),
            Err(RecordIoError::InvalidPrefixByte { byte: b'x' })
        );
    }

    #[test]
    fn rejects_empty_prefix() {
        let mut decoder = RecordIoDecoder::new();
        decoder.push(b"\nabc");
        assert_eq!(decoder.next_record(), Err(RecordIoError::EmptyPrefix));
    }

    #[test]
    fn rejects_oversized_length_before_the_payload_arrives() {
        let mut decoder = RecordIoDecoder::with_max_record_len(10);
        decoder.push(b"10\n");
        assert_eq!(decoder.next_record(), Ok(None));
        decoder.push(b"0123456789");
        assert_eq!(decoder.next_record(), Ok(Some(b"0123456789".to_vec())));

        // Rejected as soon as the digits exceed the limit, even without LF.
        decoder.push(b"11");
        assert_eq!(
            decoder.next_record(),
            Err(RecordIoError::RecordTooLarge { max: 10 })
        );

        let mut decoder = RecordIoDecoder::new();
        decoder.push(format!("{}\n", DEFAULT_MAX_RECORD_LEN + 1).as_bytes());
        assert_eq!(
            decoder.next_record(),
            Err(RecordIoError::RecordTooLarge {
                max: DEFAULT_MAX_RECORD_LEN
            })
        );
        // Far beyond u64: no overflow, same error.
        let mut decoder = RecordIoDecoder::new();
        decoder.push(b"99999999999999999999999999\n");
        assert!(matches!(
            decoder.next_record(),
            Err(RecordIoError::RecordTooLarge { .. })
        ));
    }

    #[test]
    fn rejects_endless_leading_zeros() {
        let mut decoder = RecordIoDecoder::new();
        decoder.push(&[b'0'; 21]);
        assert_eq!(decoder.next_record(), Err(RecordIoError::PrefixTooLong));
        // Leading zeros within the digit budget are fine.
        let mut decoder = RecordIoDecoder::new();
        decoder.push(b"003\nabc");
        assert_eq!(decoder.next_record(), Ok(Some(b"abc".to_vec())));
    }

    #[test]
    fn finish_reports_truncated_stream() {
        let mut decoder = RecordIoDecoder::new();
        decoder.push(b"5\nab");
        assert_eq!(decoder.next_record(), Ok(None));
        assert_eq!(
            decoder.finish(),
            Err(RecordIoError::Truncated { buffered: 2 })
        );
        let mut decoder = RecordIoDecoder::new();
        decoder.push(b"12");
        assert_eq!(decoder.next_record(), Ok(None));
        assert_eq!(
            decoder.finish(),
            Err(RecordIoError::Truncated { buffered: 2 })
        );
    }
}
