//! The outcome of a create call as a type: [`CreateOutcome`] is `Created`, `Rejected` or
//! `InDoubt`, and every caller matches on it.
//!
//! The rules (pure functions, no I/O):
//! - Only a definite refusal of the create itself is [`CreateOutcome::Rejected`]: a 4xx answer,
//!   or a request that never left (the connection could not be opened, the request could not be
//!   built). Nothing exists at the provider, so the name may be used again.
//! - Everything else after the request may have reached the server is
//!   [`CreateOutcome::InDoubt`]: a 5xx, a timeout or reset after sending, a 2xx whose body names
//!   no node or id, a failed tag lookup, a failed step after the create. An in-doubt node keeps
//!   its name and is settled by looking its tag up, never by creating it again blindly.
//! - A refusal the catalog documents (`[[api.errors.refusals]]`: no capacity, no quota, the plan
//!   not offered there) is classified in [`CreateOutcome::refusal`]; smart deploy fails over only
//!   on those, and only on `Rejected`: an in-doubt create is settled first, never moved. A
//!   documented refusal answered with a 5xx is `Rejected` only once the lookup by tag proved that
//!   nothing was created (outside the hidden window).
//! - A create the server may have carried out is not sent again inside the provider's
//!   `limits.hidden_after_create_seconds` window (the provider may not list a new node yet, so a
//!   lookup that finds nothing proves nothing): see [`may_resend`].

use super::{DriverError, Node, Refusal};
use std::time::Duration;

/// What came of a create.
#[derive(Debug)]
#[must_use]
pub enum CreateOutcome {
    /// The provider created the node (found by its tag after a doubtful answer included) and
    /// every step after the create succeeded.
    Created(Node),
    /// A definite refusal: nothing was created.
    Rejected(DriverError),
    /// The provider may have created the node. `node` is set when it certainly exists (its id is
    /// known) but a step after the create failed.
    InDoubt {
        error: DriverError,
        node: Option<Node>,
    },
}

impl CreateOutcome {
    /// The error of a create that did not fully succeed.
    pub fn error(&self) -> Option<&DriverError> {
        match self {
            CreateOutcome::Created(_) => None,
            CreateOutcome::Rejected(e) | CreateOutcome::InDoubt { error: e, .. } => Some(e),
        }
    }

    /// The documented refusal of a definitely refused create; `None` for anything else (an
    /// in-doubt create is never failed over).
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            CreateOutcome::Rejected(e) => e.refusal,
            CreateOutcome::Created(_) | CreateOutcome::InDoubt { .. } => None,
        }
    }

    /// The created node (tests).
    #[cfg(test)]
    #[track_caller]
    pub fn unwrap(self) -> Node {
        match self {
            CreateOutcome::Created(n) => n,
            other => panic!("create did not succeed: {other:?}"),
        }
    }

    /// The error of a failed create (tests).
    #[cfg(test)]
    #[track_caller]
    pub fn unwrap_err(self) -> DriverError {
        match self {
            CreateOutcome::Created(n) => panic!("create succeeded: {n:?}"),
            CreateOutcome::Rejected(e) | CreateOutcome::InDoubt { error: e, .. } => e,
        }
    }
}

/// What a failed create request says about the server's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Certainty {
    /// The server refused it or never saw it: nothing was created.
    NotCreated,
    /// The server may have acted.
    InDoubt,
}

/// Classify the error of a sent create: a 4xx answer is a refusal; any other answer (a 5xx, a
/// 2xx or 3xx the operation does not expect) may have created the node; without an answer, only
/// a request that provably never reached the server (`in_doubt` unset by the transport: the
/// connection could not be opened) created nothing.
pub fn certainty(e: &DriverError) -> Certainty {
    match e.status {
        Some(s) if (400..500).contains(&s) => Certainty::NotCreated,
        Some(_) => Certainty::InDoubt,
        None if e.in_doubt => Certainty::InDoubt,
        None => Certainty::NotCreated,
    }
}

/// Whether a create that may have reached the server can be sent again after a lookup found
/// nothing: only once the provider's hidden window since the first send has passed, and only
/// when the catalog can look nodes up by tag at all (otherwise "not found" proves nothing).
pub fn may_resend(since_first_send: Duration, hidden: Duration, can_look_up: bool) -> bool {
    can_look_up && since_first_send >= hidden
}

/// The provider's hidden window as a duration (negative, NaN or absurd values count as none).
pub fn hidden_window(seconds: f64) -> Duration {
    if seconds.is_finite() && seconds > 0.0 {
        Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX)
    } else {
        Duration::ZERO
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::ErrorKind;

    fn err(status: Option<u16>, in_doubt: bool) -> DriverError {
        let mut e = DriverError::new("acme", ErrorKind::Api, "x");
        e.status = status;
        e.in_doubt = in_doubt;
        e
    }

    #[test]
    fn only_a_4xx_or_an_unsent_request_is_a_refusal() {
        assert_eq!(certainty(&err(Some(400), false)), Certainty::NotCreated);
        assert_eq!(certainty(&err(Some(422), false)), Certainty::NotCreated);
        assert_eq!(certainty(&err(Some(429), false)), Certainty::NotCreated);
        assert_eq!(certainty(&err(None, false)), Certainty::NotCreated);
        assert_eq!(certainty(&err(Some(500), true)), Certainty::InDoubt);
        assert_eq!(certainty(&err(Some(503), false)), Certainty::InDoubt);
        // A 2xx the operation did not expect, or a redirect: the server may have acted.
        assert_eq!(certainty(&err(Some(200), false)), Certainty::InDoubt);
        assert_eq!(certainty(&err(Some(302), false)), Certainty::InDoubt);
        // A timeout or reset after sending.
        assert_eq!(certainty(&err(None, true)), Certainty::InDoubt);
    }

    #[test]
    fn only_a_definite_refusal_carries_its_reason() {
        let mut e = err(Some(422), false);
        e.refusal = Some(Refusal::Capacity);
        assert_eq!(
            CreateOutcome::Rejected(e.clone()).refusal(),
            Some(Refusal::Capacity)
        );
        assert_eq!(
            CreateOutcome::InDoubt {
                error: e,
                node: None
            }
            .refusal(),
            None
        );
        assert_eq!(
            CreateOutcome::Rejected(err(Some(400), false)).refusal(),
            None
        );
    }

    #[test]
    fn no_resend_inside_the_hidden_window_or_without_a_lookup() {
        let h = Duration::from_secs(3600);
        assert!(!may_resend(Duration::from_secs(1), h, true));
        assert!(may_resend(Duration::from_secs(3600), h, true));
        assert!(may_resend(Duration::ZERO, Duration::ZERO, true));
        assert!(!may_resend(
            Duration::from_secs(9999),
            Duration::ZERO,
            false
        ));
    }

    #[test]
    fn hidden_window_tolerates_absurd_values() {
        assert_eq!(hidden_window(-1.0), Duration::ZERO);
        assert_eq!(hidden_window(f64::NAN), Duration::ZERO);
        assert_eq!(hidden_window(1e300), Duration::MAX);
        assert_eq!(hidden_window(2.5), Duration::from_millis(2500));
    }
}
