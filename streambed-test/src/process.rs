//! Running a built binary as a user would, for the command-line tools' tests: every tool's
//! test feeds it standard input and reads back what it printed, and this is that one way.
//!
//! It is also the one place that starts a program built for the target under test. Built
//! for another architecture (`mipsel-unknown-linux-musl`, say) the tests run under an
//! emulator that cargo was given as the target's runner; a program they start themselves
//! (this test binary again, or a binary of the package) must go through the same emulator,
//! or the kernel refuses it ("Exec format error").

use std::{
    ffi::OsStr,
    io::Write,
    process::{Command, Output, Stdio},
};

/// The target this crate was built for, such as `x86_64-unknown-linux-gnu`.
const TARGET: &str = env!("STREAMBED_TEST_TARGET");

/// A command that runs `program`, a binary built for the same target as this test, the way
/// cargo runs the test itself: through the runner that the environment variable
/// `CARGO_TARGET_<TRIPLE>_RUNNER` names, when it is set (an emulator and its arguments,
/// separated by spaces), else directly.
///
/// ```
/// let status = streambed_test::process::command("/bin/true").status().unwrap();
/// assert!(status.success());
/// ```
pub fn command(program: impl AsRef<OsStr>) -> Command {
    through(runner().as_deref(), program.as_ref())
}

/// A command that runs `program` through `runner` (a program and its arguments, separated
/// by spaces) or, without one or with a blank one, directly: for a runner named some other
/// way than cargo's variable, such as a bench's own setting.
///
/// ```
/// let command = streambed_test::process::through(Some("qemu-mipsel-static"), "./service");
/// assert_eq!(command.get_program(), "qemu-mipsel-static");
/// ```
pub fn through(runner: Option<&str>, program: impl AsRef<OsStr>) -> Command {
    let program = program.as_ref();
    let mut words = runner.into_iter().flat_map(str::split_whitespace);
    match words.next() {
        Some(runner) => {
            let mut command = Command::new(runner);
            command.args(words).arg(program);
            command
        }
        None => Command::new(program),
    }
}

/// A command that runs this test binary again, through the target's runner like
/// [`command`]: for tests that start themselves as a child process.
///
/// ```no_run
/// // In a test: run this test binary again as a child, told so by a variable.
/// let status = streambed_test::process::this_test_binary()
///     .env("ROLE", "child")
///     .status()
///     .unwrap();
/// assert!(status.success());
/// ```
pub fn this_test_binary() -> Command {
    command(std::env::current_exe().expect("the test binary's path"))
}

/// The runner that programs built for this target go through (an emulator such as
/// `qemu-mipsel-static`), from `CARGO_TARGET_<TRIPLE>_RUNNER`; `None` when they run
/// directly. A test whose measure means nothing under an emulator (the resident memory
/// of a process, which is then the emulator's) can tell from it.
///
/// ```
/// if let Some(runner) = streambed_test::process::runner() {
///     println!("programs run under {runner}");
/// }
/// ```
pub fn runner() -> Option<String> {
    std::env::var(target_variable(TARGET, "RUNNER"))
        .ok()
        .filter(|runner| !runner.trim().is_empty())
}

/// How many times longer a test should make its pauses and time bounds: 1 when programs
/// run directly, 10 under a [`runner`]. An emulator spends tens of times more CPU on each
/// step: a bound fit for native speed trips there, and a pause that dwarfs a step natively
/// is only about as long as one there, so that paced work would look like a spin.
///
/// ```
/// use std::time::Duration;
///
/// let pause = Duration::from_millis(20) * streambed_test::process::slowdown();
/// assert!(pause >= Duration::from_millis(20));
/// ```
pub fn slowdown() -> u32 {
    match runner() {
        Some(_) => 10,
        None => 1,
    }
}

/// The environment variable `CARGO_TARGET_<TRIPLE>_<KEY>` that configures `key` (such as
/// `RUNNER` or `RUSTFLAGS`) for `target`, spelled as cargo reads it.
///
/// ```
/// assert_eq!(
///     streambed_test::process::target_variable("x86_64-unknown-linux-gnu", "RUSTFLAGS"),
///     "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS"
/// );
/// ```
pub fn target_variable(target: &str, key: &str) -> String {
    let name: String = target
        .chars()
        .map(|c| match c {
            '-' | '.' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect();
    format!("CARGO_TARGET_{name}_{key}")
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runner_variable_is_spelled_as_cargo_reads_it() {
        assert_eq!(
            target_variable("mipsel-unknown-linux-musl", "RUNNER"),
            "CARGO_TARGET_MIPSEL_UNKNOWN_LINUX_MUSL_RUNNER"
        );
        assert_eq!(
            target_variable("thumbv7em-none-eabihf", "RUNNER"),
            "CARGO_TARGET_THUMBV7EM_NONE_EABIHF_RUNNER"
        );
    }

    #[test]
    fn a_program_starts_through_the_runner_and_its_arguments() {
        let command = through(
            Some("qemu-mipsel-static -L /sysroot"),
            OsStr::new("/t/test"),
        );
        assert_eq!(command.get_program(), "qemu-mipsel-static");
        let args: Vec<_> = command.get_args().collect();
        assert_eq!(args, ["-L", "/sysroot", "/t/test"]);
    }

    #[test]
    fn without_a_runner_the_program_starts_directly() {
        for runner in [None, Some(""), Some("  ")] {
            let command = through(runner, OsStr::new("/t/test"));
            assert_eq!(command.get_program(), "/t/test");
            assert_eq!(command.get_args().count(), 0);
        }
    }
}
