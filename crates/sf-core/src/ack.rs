//! Wire mapping: `fsn_at_zero`, `next_wire_seq`, the in-flight window, and OK
//! handling with the W2 clamp (sf-client §7, §9).
