//! The storage engine: the ring, the durability tracker and the watermark
//! persistence composed behind one sans-IO interface (inputs in, outputs out,
//! `now` passed in). Runs over segment files (SF mode) or memory (no `sf_dir`).
