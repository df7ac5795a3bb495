//! Exponential back-off between retries of an operation that failed, such as a
//! connection to a server that is down.
//!
//! A [`Delayer`] waits 100 ms after the first failure and grows each wait until the eighth
//! reaches 10 s; the ninth starts over at 100 ms. Starting over, rather than staying at the
//! maximum, lets a client notice promptly that a server came back after a long outage.
//!
//! ```
//! use std::time::Duration;
//! use streambed::delayer::Delayer;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let mut delayer = Delayer::default();
//! let mut attempts = 0;
//! let result = loop {
//!     attempts += 1;
//!     match if attempts < 3 { Err("down") } else { Ok("up") } {
//!         Ok(answer) => break answer,
//!         Err(_) => delayer.delay().await,
//!     }
//! };
//! assert_eq!(result, "up");
//! # }
//! ```

use std::time::Duration;

/// The first wait. Public, with [`MAX_DELAY`] and [`ATTEMPTS`], so that a client library
/// with a back-off of its own (rskafka's, say) can be set to the same curve.
pub const MIN_DELAY: Duration = Duration::from_millis(100);
/// The longest wait, reached on the last attempt of a round.
pub const MAX_DELAY: Duration = Duration::from_secs(10);
/// Waits in one round, from [`MIN_DELAY`] to [`MAX_DELAY`].
pub const ATTEMPTS: u32 = 8;

/// The factor by which each wait of a round grows over the one before.
///
/// ```
/// use streambed::delayer::{growth, MAX_DELAY, MIN_DELAY, ATTEMPTS};
/// let longest = MIN_DELAY.as_secs_f64() * growth().powi(ATTEMPTS as i32 - 1);
/// assert!((longest - MAX_DELAY.as_secs_f64()).abs() < 1e-9);
/// ```
pub fn growth() -> f64 {
    (MAX_DELAY.as_secs_f64() / MIN_DELAY.as_secs_f64()).powf(1.0 / f64::from(ATTEMPTS - 1))
}

/// Waits a growing time between retries; see the [module docs](self).
#[derive(Clone, Debug, Default)]
pub struct Delayer {
    attempt: u32,
}

impl Delayer {
    /// Waits for the next delay of the sequence.
    pub async fn delay(&mut self) {
        let delay = self.next_delay();
        tokio::time::sleep(delay).await;
    }

    /// Returns the next delay of the sequence and advances past it, for callers that
    /// wait by other means than [`Delayer::delay`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut delayer = streambed::delayer::Delayer::default();
    /// let delays: Vec<Duration> = (0..9).map(|_| delayer.next_delay()).collect();
    /// assert_eq!(delays[0], Duration::from_millis(100));
    /// assert_eq!(delays[7], Duration::from_secs(10));
    /// assert_eq!(delays[8], Duration::from_millis(100));
    /// ```
    pub fn next_delay(&mut self) -> Duration {
        let attempt = self.attempt;
        self.attempt = (self.attempt + 1) % ATTEMPTS;
        MIN_DELAY
            .mul_f64(growth().powi(attempt as i32))
            .min(MAX_DELAY)
    }

    /// Starts the sequence over, typically after a success, so that the next failure
    /// waits the shortest time again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_from_100ms_to_10s_over_eight_attempts_then_restart() {
        let mut delayer = Delayer::default();
        let delays: Vec<Duration> = (0..ATTEMPTS * 2).map(|_| delayer.next_delay()).collect();
        assert_eq!(delays[0], MIN_DELAY);
        assert_eq!(delays[7], MAX_DELAY);
        for pair in delays[..8].windows(2) {
            assert!(pair[0] < pair[1], "{delays:?}");
        }
        assert_eq!(delays[..8], delays[8..]);
    }

    #[test]
    fn reset_starts_over() {
        let mut delayer = Delayer::default();
        delayer.next_delay();
        delayer.next_delay();
        delayer.reset();
        assert_eq!(delayer.next_delay(), MIN_DELAY);
    }

    #[tokio::test(start_paused = true)]
    async fn delay_sleeps_for_the_next_delay() {
        let mut delayer = Delayer::default();
        let start = tokio::time::Instant::now();
        delayer.delay().await;
        delayer.delay().await;
        let waited = start.elapsed();
        let second = MIN_DELAY.mul_f64(100f64.powf(1.0 / 7.0));
        assert!(waited >= MIN_DELAY + second, "{waited:?}");
        assert!(
            waited < MIN_DELAY + second + Duration::from_millis(5),
            "{waited:?}"
        );
    }
}
