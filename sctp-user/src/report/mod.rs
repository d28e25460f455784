//! What a replay or a run saw, for people: the counters and the application messages as
//! tables, and `inspect`'s HTML report. Imports `replay`, `doc`, `assoc` and `snapshot`.

pub(crate) mod html;
pub(crate) mod messages;
pub(crate) mod table;
