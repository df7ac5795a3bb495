//! The built `confidant` binary, run as a user would run it.

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::Path,
    process::{Output, Stdio},
};

use base64::{engine::general_purpose::STANDARD, Engine};
use streambed::crypto;
use streambed_test::process::output_with_stdin;

const ROOT_SECRET_HEX: &str = "1800af9b273e4b9ea71ec723426933a4";
const KEY_PATH: &str = "default/my-secret-path";

struct Setup {
    _dir: tempfile::TempDir,
    credentials: std::path::PathBuf,
    root: std::path::PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("credentials");
    let root = dir.path().join("confidant");
    fs::create_dir(&credentials).unwrap();
    fs::write(
        credentials.join("root-secret"),
        format!("{ROOT_SECRET_HEX}\n"),
    )
    .unwrap();
    fs::create_dir(&root).unwrap();
    fs::set_permissions(&root, fs::Permissions::from_mode(0o700)).unwrap();
    Setup {
        _dir: dir,
        credentials,
        root,
    }
}

fn confidant(setup: &Setup, args: &[&str], stdin: &str) -> Output {
    let mut command = streambed_test::process::command(env!("CARGO_BIN_EXE_confidant"));
    command
        .env_remove("CREDENTIALS_DIRECTORY")
        .arg("--credentials-directory")
        .arg(&setup.credentials)
        .arg("--root-path")
        .arg(&setup.root)
        .args(args);
    output_with_stdin(&mut command, stdin.as_bytes())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// The data key stored at `KEY_PATH`, decrypted by hand from its file.
fn stored_key(root: &Path) -> [u8; 16] {
    let mut bytes = fs::read(root.join(KEY_PATH)).unwrap();
    let root_secret: [u8; 16] = hex::decode(ROOT_SECRET_HEX).unwrap().try_into().unwrap();
    let (salt, body) = bytes.split_at_mut(12);
    crypto::decrypt(body, &root_secret, &salt.try_into().unwrap());
    // postcard: version 0, one entry, "value" (5 bytes), then 32 hex characters.
    assert_eq!(&body[..8], b"\x00\x01\x05value");
    assert_eq!(body[8], 32);
    hex::decode(&body[9..41]).unwrap().try_into().unwrap()
}

#[test]
fn encrypt_creates_a_key_and_decrypt_gives_back_the_records() {
    let setup = setup();
    let input = "{\"id\":1,\"value\":\"SGkgdGhlcmU=\"}\n{\"id\":2,\"value\":\"\"}\n";
    let encrypted = confidant(
        &setup,
        &["encrypt", "--file", "-", "--path", KEY_PATH],
        input,
    );
    assert!(encrypted.status.success(), "{}", text(&encrypted.stderr));
    let encrypted_text = text(&encrypted.stdout);
    assert_eq!(encrypted_text.lines().count(), 2);
    assert!(!encrypted_text.contains("SGkgdGhlcmU="));

    // The new key is in the store, and the first record decrypts with it by hand.
    let key = stored_key(&setup.root);
    let first: serde_json::Value =
        serde_json::from_str(encrypted_text.lines().next().unwrap()).unwrap();
    let mut sealed = STANDARD.decode(first["value"].as_str().unwrap()).unwrap();
    let (salt, body) = sealed.split_at_mut(12);
    crypto::decrypt(body, &key, &salt.try_into().unwrap());
    assert_eq!(body, b"Hi there");

    let decrypted = confidant(
        &setup,
        &["decrypt", "--file", "-", "--path", KEY_PATH],
        &encrypted_text,
    );
    assert!(decrypted.status.success(), "{}", text(&decrypted.stderr));
    assert_eq!(text(&decrypted.stdout), input);

    // A second encrypt reuses the key.
    let again = confidant(
        &setup,
        &["encrypt", "--file", "-", "--path", KEY_PATH],
        input,
    );
    assert!(again.status.success());
    assert_eq!(stored_key(&setup.root), key);
}

#[test]
fn select_file_and_output_options_are_honoured() {
    let setup = setup();
    let input_file = setup.root.parent().unwrap().join("in.jsonl");
    let output_file = setup.root.parent().unwrap().join("out.jsonl");
    fs::write(&input_file, "{\"payload\":\"AQID\",\"value\":\"keep\"}\n").unwrap();
    let out = confidant(
        &setup,
        &[
            "encrypt",
            "--file",
            input_file.to_str().unwrap(),
            "--select",
            "payload",
            "--output",
            output_file.to_str().unwrap(),
            "--path",
            KEY_PATH,
        ],
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    let written = fs::read_to_string(&output_file).unwrap();
    assert!(written.ends_with(",\"value\":\"keep\"}\n"), "{written}");
    assert!(!written.contains("AQID"));

    let back = confidant(
        &setup,
        &[
            "decrypt", "-f", "-", "--select", "payload", "--path", KEY_PATH,
        ],
        &written,
    );
    assert!(back.status.success(), "{}", text(&back.stderr));
    assert_eq!(
        text(&back.stdout),
        "{\"payload\":\"AQID\",\"value\":\"keep\"}\n"
    );
}

#[test]
fn a_malformed_line_is_named_after_the_good_lines_are_written() {
    let setup = setup();
    let input =
        "{\"value\":\"AA==\"}\n{\"value\":\"AQ==\"}\n{\"value\": oops}\n{\"value\":\"Ag==\"}\n";
    let out = confidant(
        &setup,
        &["encrypt", "--file", "-", "--path", KEY_PATH],
        input,
    );
    assert!(!out.status.success());
    assert_eq!(text(&out.stdout).lines().count(), 2);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("line 3"), "{stderr}");
    assert!(stderr.contains("JSON"), "{stderr}");
}

#[test]
fn decrypting_without_a_key_fails_clearly() {
    let setup = setup();
    let out = confidant(
        &setup,
        &["decrypt", "--file", "-", "--path", KEY_PATH],
        "{\"value\":\"AA==\"}\n",
    );
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr).contains("no secret"),
        "{}",
        text(&out.stderr)
    );
    assert!(!setup.root.join(KEY_PATH).exists());
}

#[test]
fn a_bad_root_secret_or_an_open_root_directory_fails_clearly() {
    let setup = setup();
    fs::write(setup.credentials.join("root-secret"), "not hex\n").unwrap();
    let out = confidant(&setup, &["encrypt", "--file", "-", "--path", KEY_PATH], "");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("root-secret"),
        "{}",
        text(&out.stderr)
    );

    fs::write(setup.credentials.join("root-secret"), ROOT_SECRET_HEX).unwrap();
    fs::set_permissions(&setup.root, fs::Permissions::from_mode(0o755)).unwrap();
    let out = confidant(&setup, &["encrypt", "--file", "-", "--path", KEY_PATH], "");
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("755"), "{}", text(&out.stderr));
}

#[test]
fn the_credentials_directory_comes_from_the_environment() {
    let setup = setup();
    let out = streambed_test::process::command(env!("CARGO_BIN_EXE_confidant"))
        .env("CREDENTIALS_DIRECTORY", &setup.credentials)
        .env("ROOT_PATH", &setup.root)
        .args(["encrypt", "--file", "-", "--path", KEY_PATH])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(setup.root.join(KEY_PATH).exists());
}
