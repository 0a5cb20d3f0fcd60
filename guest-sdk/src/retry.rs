//! Retry policies for activity and sub-orchestration calls.

use std::time::Duration;

use crate::time::{Micros, duration_micros};

/// How to retry a failed activity or sub-orchestration, as in Durable Functions.
///
/// After failed attempt `k` (counting from 1) the call is tried again if
/// `k < max_number_of_attempts` and, when a retry timeout is set, the next attempt would
/// start before `first attempt + retry_timeout`. The wait before it is a durable timer of
/// `first_retry_interval * backoff_coefficient^(k-1)`, capped at `max_retry_interval`.
///
/// ```
/// use std::time::Duration;
/// use durable_sdk::RetryOptions;
///
/// let retry = RetryOptions::new(Duration::from_secs(5), 3)
///     .with_backoff_coefficient(2.0)
///     .with_max_retry_interval(Duration::from_secs(60));
/// assert_eq!(retry.max_number_of_attempts, 3);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RetryOptions {
    /// The wait before the first retry.
    pub first_retry_interval: Duration,
    /// What each wait is multiplied by for the next one; 1.0 (the default) keeps it fixed.
    pub backoff_coefficient: f64,
    /// The longest wait between attempts; no limit when `None`.
    pub max_retry_interval: Option<Duration>,
    /// How many attempts in all, the first one included.
    pub max_number_of_attempts: u32,
    /// No attempt starts later than this after the first one; no limit when `None`.
    pub retry_timeout: Option<Duration>,
}

impl RetryOptions {
    /// Retries after `first_retry_interval`, at most `max_number_of_attempts` attempts in all,
    /// with a fixed interval and no timeout.
    pub fn new(first_retry_interval: Duration, max_number_of_attempts: u32) -> Self {
        Self {
            first_retry_interval,
            backoff_coefficient: 1.0,
            max_retry_interval: None,
            max_number_of_attempts,
            retry_timeout: None,
        }
    }

    /// Sets the backoff coefficient.
    #[must_use]
    pub fn with_backoff_coefficient(mut self, coefficient: f64) -> Self {
        self.backoff_coefficient = coefficient;
        self
    }

    /// Caps the wait between attempts.
    #[must_use]
    pub fn with_max_retry_interval(mut self, interval: Duration) -> Self {
        self.max_retry_interval = Some(interval);
        self
    }

    /// Stops retrying once this much time has passed since the first attempt.
    #[must_use]
    pub fn with_retry_timeout(mut self, timeout: Duration) -> Self {
        self.retry_timeout = Some(timeout);
        self
    }

    /// The wait after failed attempt `attempt` (1-based), in microseconds.
    ///
    /// Repeated multiplication rather than `powf`, so that the result is the same IEEE
    /// arithmetic on every platform the orchestration may be replayed on.
    pub(crate) fn delay_micros(&self, attempt: u32) -> Micros {
        let cap = self.max_retry_interval.map_or(i64::MAX, duration_micros).max(0);
        let mut delay = duration_micros(self.first_retry_interval) as f64;
        for _ in 1..attempt {
            delay *= self.backoff_coefficient;
            if delay >= cap as f64 {
                break;
            }
        }
        if delay.is_nan() || delay <= 0.0 {
            0
        } else if delay >= cap as f64 {
            cap
        } else {
            delay as Micros
        }
    }

    /// When to fire the timer before the next attempt, after failed attempt `attempt`
    /// (1-based) was observed at `now`, for a call whose first attempt started at
    /// `first_attempt`; `None` when the call should fail instead.
    pub(crate) fn retry_at(&self, attempt: u32, first_attempt: Micros, now: Micros) -> Option<Micros> {
        if attempt >= self.max_number_of_attempts {
            return None;
        }
        let fire_at = now.saturating_add(self.delay_micros(attempt));
        if let Some(timeout) = self.retry_timeout
            && fire_at >= first_attempt.saturating_add(duration_micros(timeout))
        {
            return None;
        }
        Some(fire_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Micros = 1_000_000;

    #[test]
    fn no_retry_after_the_last_attempt_or_past_the_timeout() {
        let retry = RetryOptions::new(Duration::from_secs(10), 3).with_retry_timeout(Duration::from_secs(15));
        assert_eq!(retry.retry_at(1, 0, 0), Some(10 * SECOND));
        assert_eq!(retry.retry_at(2, 0, 5 * SECOND), None);
        assert_eq!(RetryOptions::new(Duration::from_secs(1), 2).retry_at(2, 0, 0), None);
    }
}
