//! Durable-ACK tracking (sf-client §10, W4): the pending queue of OKs with
//! their per-table seqTxns, max-merged durable watermarks, and coverage.
