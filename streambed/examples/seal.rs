//! Seals a device reading the way streambed services store values at rest: serialize,
//! encrypt with a key held as hex in a secret, prefix the salt; then signs the result with
//! a separate key and opens it again. Run with `cargo run -p streambed --example seal [NOTE]`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, Serialize)]
struct Reading {
    device: u64,
    temperature: f32,
    note: String,
}

fn main() {
    let note = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "all well".to_string());
    let reading = Reading {
        device: 1,
        temperature: 21.5,
        note,
    };

    // A secret store would hold this key as 32 hex characters in a secret's "value" field.
    let key = streambed::seal::Key::random(&mut rand::thread_rng());
    let secret_value = key.to_hex();

    let Some(mut sealed) = streambed::encrypt_struct_with_secret(
        secret_value.clone(),
        serde_json::to_vec,
        rand::thread_rng,
        &reading,
    ) else {
        eprintln!("could not seal the reading");
        std::process::exit(1);
    };
    println!("key     {secret_value}");
    println!("sealed  {} (salt, then ciphertext)", hex::encode(&sealed));
    println!(
        "tag     {}",
        hex::encode(streambed::crypto::sign(&sealed, key.as_bytes()))
    );

    let opened: Option<Reading> =
        streambed::decrypt_buf_with_secret(secret_value, &mut sealed, serde_json::from_slice);
    match opened {
        Some(reading) => println!("opened  {reading:?}"),
        None => {
            eprintln!("could not open the reading");
            std::process::exit(1);
        }
    }
}
