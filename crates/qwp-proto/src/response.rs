//! Server response frames: OK, DURABLE_ACK and error frames, encoded and
//! decoded (wire-ingress §8, sf-client §9–§10, §14.1).
