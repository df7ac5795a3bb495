//! Running a built binary as a user would, for the command-line tools' tests: every tool's
//! test feeds it standard input and reads back what it printed, and this is that one way.

use std::{
    io::Write,
    process::{Command, Output, Stdio},
};

/// Runs `command` with `stdin` as its standard input (closed after it) and returns its
/// exit status and everything it printed. Panics when the program cannot be started or
/// does not take its input, which fails the test.
///
/// ```
/// use std::process::Command;
///
/// let output = streambed_test::process::output_with_stdin(&mut Command::new("cat"), b"hi");
/// assert!(output.status.success());
/// assert_eq!(output.stdout, b"hi");
/// ```
pub fn output_with_stdin(command: &mut Command, stdin: &[u8]) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the program starts");
    let mut pipe = child.stdin.take().expect("a piped stdin");
    pipe.write_all(stdin).expect("the program takes its input");
    drop(pipe);
    child.wait_with_output().expect("the program's output")
}
