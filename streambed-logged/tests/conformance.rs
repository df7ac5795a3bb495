//! The behavioural suite every `CommitLog` runs (`streambed_test::conformance`), against a
//! `FileLog` in a directory of its own per check.

streambed_test::commit_log_conformance!(async {
    let root = tempfile::tempdir().unwrap();
    (streambed_logged::FileLog::new(root.path()), root)
});
