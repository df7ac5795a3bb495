//! Secret files are read back from a disk that may hold anything (a crash, a foreign file,
//! the wrong root secret): opening arbitrary bytes must never panic. A sealed secret must
//! open to itself, also with a stale tail after it, and every truncation must be refused.
//!
//! Input: the whole input is opened as a file. It is also read (through `arbitrary`) as a
//! secret, a salt and a truncation length for the round trip.
#![no_main]

use std::collections::HashMap;

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use streambed::secret_store::SecretData;
use streambed_confidant::fuzzing::{open_secret_file, seal_secret_file};

const KEY: [u8; 16] = [3; 16];

fuzz_target!(|data: &[u8]| {
    let _ = open_secret_file(data.to_vec(), &KEY);

    let mut input = Unstructured::new(data);
    let Ok((fields, salt, cut)) = input.arbitrary::<(HashMap<String, String>, [u8; 12], usize)>()
    else {
        return;
    };
    let secret = SecretData { data: fields };
    let sealed = seal_secret_file(&secret, &KEY, &salt).expect("a secret always encodes");
    assert_eq!(
        open_secret_file(sealed.clone(), &KEY).ok().as_ref(),
        Some(&secret)
    );

    let mut with_tail = sealed.clone();
    with_tail.extend_from_slice(input.take_rest());
    assert_eq!(
        open_secret_file(with_tail, &KEY).ok().as_ref(),
        Some(&secret)
    );

    let cut = cut % sealed.len();
    assert!(
        open_secret_file(sealed[..cut].to_vec(), &KEY).is_err(),
        "a file cut to {cut} of {} bytes opened",
        sealed.len()
    );
});
