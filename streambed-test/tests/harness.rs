//! The self-executing test harness, run as the binaries that use it are: this file is such
//! a binary, and its tests run it again to watch what it prints and how it exits.

use std::process::Output;

use streambed_test::harness::{self, Harness};

const CHILD: &str = "HARNESS_TEST_CHILD";
/// Set in a re-run that wants `fails_when_asked` to fail.
const FAIL: &str = "HARNESS_TEST_FAIL";

fn main() {
    Harness::new(CHILD)
        .child("greet", || async { println!("child role ran") })
        .test("a_child_role_runs_instead_of_the_tests", || async {
            let lines = harness::child_lines(CHILD, "greet", [(FAIL, "unused")]);
            assert_eq!(lines, ["child role ran"]);
        })
        .test("list_names_every_test", || async {
            let output = this_binary(&["--list"], &[]);
            let stdout = String::from_utf8_lossy(&output.stdout).to_string();
            assert_eq!(stdout.lines().count(), 5, "{stdout}");
            assert!(stdout.contains("list_names_every_test: test\n"), "{stdout}");
        })
        .test(
            "free_arguments_select_tests_and_the_summary_counts_them",
            || async {
                let output = this_binary(&["a_child_role"], &[]);
                assert!(output.status.success());
                let stdout = String::from_utf8_lossy(&output.stdout).to_string();
                assert!(
                    stdout.contains("test a_child_role_runs_instead_of_the_tests ... ok ("),
                    "{stdout}"
                );
                assert!(
                stdout.contains(
                    "test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 4 filtered out; \
                     finished in "
                ),
                "{stdout}"
            );
            },
        )
        .test("a_panicking_test_fails_the_binary", || async {
            let output = this_binary(&["fails_when_asked"], &[(FAIL, "1")]);
            assert_eq!(output.status.code(), Some(101));
            let stdout = String::from_utf8_lossy(&output.stdout).to_string();
            assert!(
                stdout.contains("test fails_when_asked ... FAILED ("),
                "{stdout}"
            );
            assert!(
                stdout.contains("test result: FAILED. 0 passed; 1 failed;"),
                "{stdout}"
            );
        })
        .test("fails_when_asked", || async {
            assert!(std::env::var(FAIL).is_err(), "failing as asked");
        })
        .run();
}

/// Runs this test binary again with `args` and `envs`.
fn this_binary(args: &[&str], envs: &[(&str, &str)]) -> Output {
    streambed_test::process::this_test_binary()
        .args(args)
        .envs(envs.iter().copied())
        .output()
        .unwrap()
}
