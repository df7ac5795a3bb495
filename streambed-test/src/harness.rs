//! The test runner of `harness = false` test binaries that re-execute themselves as a child
//! (resource limits and SIGKILL apply to a whole process). Each such binary needs the same
//! small main: pick the child role from an environment variable, answer `--list`, run the
//! tests the free arguments select, time them and close with cargo's summary line. This is
//! that main, written once.

use std::{
    ffi::OsStr,
    future::Future,
    panic::{self, AssertUnwindSafe},
    pin::Pin,
    time::Instant,
};

/// A test or a child role: a function making the future to run, called only when it runs.
/// Every `FnOnce() -> impl Future<Output = ()>` is one.
pub trait Job: 'static {
    /// Makes the future.
    fn start(self: Box<Self>) -> Pin<Box<dyn Future<Output = ()>>>;
}

impl<F, Fut> Job for F
where
    F: FnOnce() -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    fn start(self: Box<Self>) -> Pin<Box<dyn Future<Output = ()>>> {
        Box::pin(self())
    }
}

/// A self-executing test binary's main: child roles chosen by one environment variable,
/// and named tests, each run on [`crate::runtime::two_workers`].
///
/// Without the variable, `--list` prints `NAME: test` for every test; otherwise the tests
/// whose names hold one of the free arguments (all when there is none) run in the order
/// they were added, each printing `test NAME ... ok (TIME)`, and a closing
/// `test result: ...` line in cargo's form follows. A panicking test is reported `FAILED`,
/// the others still run, and the process exits with status 101.
///
/// ```
/// streambed_test::harness::Harness::new("DOCTEST_CHILD")
///     .child("sleep", || async { unreachable!("only a child takes this role") })
///     .test("adds", || async { assert_eq!(1 + 1, 2) })
///     .run();
/// ```
pub struct Harness {
    child_var: &'static str,
    children: Vec<(&'static str, Box<dyn Job>)>,
    tests: Vec<(&'static str, Box<dyn Job>)>,
}

impl Harness {
    /// A harness whose child role is named by the environment variable `child_var`.
    pub fn new(child_var: &'static str) -> Self {
        Self {
            child_var,
            children: Vec::new(),
            tests: Vec::new(),
        }
    }

    /// Runs `f` instead of the tests when the child variable's value is `role`.
    pub fn child(mut self, role: &'static str, f: impl Job) -> Self {
        self.children.push((role, Box::new(f)));
        self
    }

    /// Adds the test `name`, whose body is the future `f` returns.
    pub fn test(mut self, name: &'static str, f: impl Job) -> Self {
        self.tests.push((name, Box::new(f)));
        self
    }

    /// Runs the child role or the selected tests, as the process's environment and
    /// arguments say. Panics on a child role that was never added; exits with status 101
    /// when a test failed.
    pub fn run(self) {
        let runtime = crate::runtime::two_workers();
        if let Ok(role) = std::env::var(self.child_var) {
            let (_, child) = self
                .children
                .into_iter()
                .find(|(r, _)| *r == role)
                .unwrap_or_else(|| panic!("{}={role} names no child role", self.child_var));
            runtime.block_on(child.start());
            return;
        }
        let selection = Selection::from_args(std::env::args().skip(1));
        if selection.list {
            // None of these tests is ignored: a listing of ignored tests is empty.
            if !selection.ignored {
                for (name, _) in &self.tests {
                    println!("{name}: test");
                }
            }
            return;
        }
        let started = Instant::now();
        let (mut passed, mut failed, mut filtered_out) = (0, 0, 0);
        for (name, test) in self.tests {
            if !selection.runs(name) {
                filtered_out += 1;
                continue;
            }
            let test_started = Instant::now();
            // The panic message is already printed; the others still run, as with libtest.
            match panic::catch_unwind(AssertUnwindSafe(|| runtime.block_on(test.start()))) {
                Ok(()) => {
                    passed += 1;
                    println!("test {name} ... ok ({:?})", test_started.elapsed());
                }
                Err(_) => {
                    failed += 1;
                    println!("test {name} ... FAILED ({:?})", test_started.elapsed());
                }
            }
        }
        let result = if failed == 0 { "ok" } else { "FAILED" };
        println!(
            "\ntest result: {result}. {passed} passed; {failed} failed; 0 ignored; 0 measured; \
             {filtered_out} filtered out; finished in {:.2}s\n",
            started.elapsed().as_secs_f64()
        );
        if failed > 0 {
            std::process::exit(101);
        }
    }
}

/// Which tests a run of the binary asks for, read the way libtest reads its arguments.
#[derive(Debug, Default, PartialEq)]
struct Selection {
    list: bool,
    ignored: bool,
    exact: bool,
    filters: Vec<String>,
    skips: Vec<String>,
}

impl Selection {
    fn from_args(args: impl IntoIterator<Item = String>) -> Self {
        let mut selection = Self::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--list" => selection.list = true,
                "--ignored" => selection.ignored = true,
                "--exact" => selection.exact = true,
                "--skip" => selection.skips.extend(args.next()),
                // Options whose value is the next argument, not a filter.
                "--test-threads" | "--format" | "--color" | "--logfile" | "-Z" => {
                    args.next();
                }
                _ if arg.starts_with('-') => {}
                _ => selection.filters.push(arg),
            }
        }
        selection
    }

    /// Whether the test `name` runs: none does when only ignored tests are asked for.
    fn runs(&self, name: &str) -> bool {
        let matches = |pattern: &String| {
            if self.exact {
                name == pattern
            } else {
                name.contains(pattern.as_str())
            }
        };
        !self.ignored
            && (self.filters.is_empty() || self.filters.iter().any(matches))
            && !self.skips.iter().any(matches)
    }
}

/// Runs this test binary again as the child `role` (the variable `child_var` set to it),
/// with the extra environment `envs`, waits for it and answers the lines it printed.
/// Panics, showing all it printed, when the child fails or cannot be started.
pub fn child_lines<K, V>(
    child_var: &str,
    role: &str,
    envs: impl IntoIterator<Item = (K, V)>,
) -> Vec<String>
where
    K: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    let output = crate::process::this_test_binary()
        .env(child_var, role)
        .envs(envs)
        .output()
        .expect("the child starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child {role} failed ({}): {stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout.lines().map(str::to_string).collect()
}

/// The number a child reported as `name=N` on its line that starts with `tag`, among the
/// `lines` [`child_lines`] answered. Panics, showing the lines, when there is none.
///
/// ```
/// let lines = ["start".to_string(), "failing attempts=12 cpu_ms=3".to_string()];
/// assert_eq!(streambed_test::harness::reported(&lines, "failing ", "cpu_ms"), 3);
/// ```
pub fn reported(lines: &[String], tag: &str, name: &str) -> u64 {
    lines
        .iter()
        .filter(|line| line.starts_with(tag))
        .flat_map(|line| line.split(' '))
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {tag}… {name}=N reported: {lines:?}"))
}

#[cfg(test)]
mod tests {
    use super::Selection;

    fn selection(args: &[&str]) -> Selection {
        Selection::from_args(args.iter().map(|a| a.to_string()))
    }

    #[test]
    fn option_values_are_not_taken_for_filters() {
        let s = selection(&["--test-threads", "1", "--color", "never", "crash"]);
        assert_eq!(s.filters, vec!["crash".to_string()]);
        assert!(s.runs("crash_loop") && !s.runs("faults"));
    }

    #[test]
    fn skip_excludes_and_exact_matches_whole_names() {
        let s = selection(&["--skip", "compacting"]);
        assert!(s.runs("plain") && !s.runs("while_compacting"));
        let s = selection(&["--exact", "plain"]);
        assert!(s.runs("plain") && !s.runs("plain_too"));
    }

    #[test]
    fn asking_for_ignored_tests_runs_none() {
        assert!(!selection(&["--ignored"]).runs("anything"));
        assert!(selection(&["--include-ignored"]).runs("anything"));
    }
}
