//! The public edge under abuse (issue 9): each attack runs against the real server over real
//! TLS, and then a legitimate event must still get 200 and be stored once.

mod ambiguous;
mod deadlines;
mod flood;
mod http2;
mod refusals;
mod shedding;
mod slow;

use crate::fixtures::{TestApp, assert_answer, event};

/// The proof every attack test ends with: the server still takes a real event, once.
async fn still_serves(app: &TestApp, id: &str) {
    assert_answer(app.post_signed(&event(id)).await, 200, r#"{"status":"ok"}"#).await;
    assert_eq!(app.count_events(id).await, 1);
}

/// A signature header of the right form for some other body: passes the header check, so
/// the body is read before it is refused.
const WRONG_SIGNATURE: &str = "0000000000000000000000000000000000000000000000000000000000000000";
