//! Target `decode_response`: server response frames (OK, DURABLE_ACK, error
//! frames) from arbitrary bytes.
//!
//! Property: whatever decodes re-encodes (when the encoder accepts it) to bytes
//! that decode to the same frame, and a second re-encode is byte-identical
//! (the encoding of a frame is canonical).

use qwp_proto::response::Response;

use crate::Outcome;

/// Runs the body on `data`.
pub fn run(data: &[u8]) -> Outcome {
    let resp = match Response::decode(data) {
        Ok(resp) => resp,
        Err(e) => {
            // Display must not panic either: it is what the engine logs.
            let _ = e.to_string();
            return "error";
        }
    };
    let mut out = Vec::new();
    if resp.encode_into(&mut out).is_err() {
        return match resp {
            Response::Ok(_) => "ok/unencodable",
            Response::DurableAck(_) => "durable_ack/unencodable",
            Response::Error(_) => "error_frame/unencodable",
        };
    }
    let again = Response::decode(&out);
    assert_eq!(
        again.as_ref().ok(),
        Some(&resp),
        "response: re-encoded frame decodes differently: {again:?}"
    );
    let mut twice = Vec::new();
    assert!(
        resp.encode_into(&mut twice).is_ok() && twice == out,
        "response: encoding is not deterministic"
    );
    match resp {
        Response::Ok(_) => "ok",
        Response::DurableAck(_) => "durable_ack",
        Response::Error(_) => "error_frame",
    }
}
