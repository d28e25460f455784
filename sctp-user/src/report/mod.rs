//! What a replay or a run saw, for people: the counters as a table, and `inspect`'s HTML
//! report. Imports `replay`, `doc`, `assoc` and `snapshot`.

pub(crate) mod html;
pub(crate) mod table;
