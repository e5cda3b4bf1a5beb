//! The QWP1 message encoder: a row builder that produces self-sufficient
//! messages (full inline schema, symbol dictionary from id 0).
