//! The Kafka client's consumer-stream decoder takes bytes straight from the network, cut
//! into chunks however the network pleases: it must never panic, and the records it
//! decodes must not depend on where the cuts fall.
//!
//! Input layout: one byte `n`, then `n` chunk lengths of one byte each, then the body. The
//! body is cut into chunks of those lengths (zero-length chunks included), the rest of it
//! forming a last chunk.
#![no_main]

use libfuzzer_sys::fuzz_target;
use streambed_kafka::fuzzing::decode_chunks;

/// Larger than any fuzz input, so that the size limit never differs between cuttings.
const NO_LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&count, rest)) = data.split_first() else {
        return;
    };
    let count = usize::from(count).min(rest.len());
    let (lengths, body) = rest.split_at(count);

    let mut chunks = Vec::with_capacity(lengths.len() + 1);
    let mut remaining = body;
    for &length in lengths {
        let (chunk, tail) = remaining.split_at(usize::from(length).min(remaining.len()));
        chunks.push(chunk);
        remaining = tail;
    }
    chunks.push(remaining);

    let (whole, _) = decode_chunks([body], NO_LIMIT);
    let (cut, _) = decode_chunks(chunks.iter().copied(), NO_LIMIT);
    assert_eq!(whole, cut, "records depend on the chunking {lengths:?}");

    // A tight limit on incomplete values must refuse, never panic.
    let _ = decode_chunks(chunks.iter().copied(), 16);
});
