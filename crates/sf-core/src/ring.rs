//! The segment ring: FSN assignment, frame placement, sealing and rotation
//! onto pre-provisioned spares, the resident-bytes cap, and trim (S1, S4–S7).
