//! The `.ack-watermark` file codec (sf-client §5.4): 16 bytes, magic `AKW1`,
//! reserved u32, acknowledged FSN as i64.
