//! The stable runner: every fuzz target body over its seed corpus
//! (`fuzz/corpus/<target>/`) plus a few thousand seeded random and mutated
//! inputs, so CI exercises the bodies and their property checks without
//! nightly or libFuzzer. A failing input is printed in hex, ready to be saved
//! as a regression file in the target's corpus directory.

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use qwp_proto::decoder;
use qwp_proto::types::ColumnType;
use qwp_sf_fuzz::mutate::{mutate, random_bytes, Rng};
use qwp_sf_fuzz::{seeds, target, Outcome, TARGETS};

/// Random plus mutated inputs per target.
const GENERATED_INPUTS: usize = 5_000;

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn corpus_dir(name: &str) -> PathBuf {
    fuzz_dir().join("corpus").join(name)
}

/// The corpus files of `name`, sorted by file name.
fn load_corpus(name: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(name);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("corpus entry").path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let bytes = std::fs::read(&path).expect("corpus file");
            (name, bytes)
        })
        .collect();
    files.sort();
    files
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs `body` on `data`; on a panic prints what failed and re-raises.
fn run_one(target: &str, label: &str, body: fn(&[u8]) -> Outcome, data: &[u8]) -> Outcome {
    match catch_unwind(AssertUnwindSafe(|| body(data))) {
        Ok(outcome) => outcome,
        Err(panic) => {
            eprintln!(
                "fuzz target {target} failed on {label} ({} bytes): {}",
                data.len(),
                hex(data)
            );
            std::panic::resume_unwind(panic)
        }
    }
}

/// Runs target `name` over its corpus and [`GENERATED_INPUTS`] generated
/// inputs of at most `max_len` bytes; returns the corpus's outcomes.
fn exercise(name: &str, max_len: usize) -> BTreeSet<Outcome> {
    let t = target(name).expect("known target");
    let corpus = load_corpus(name);
    assert!(!corpus.is_empty(), "{name}: empty corpus");
    let mut outcomes = BTreeSet::new();
    for (file, data) in &corpus {
        outcomes.insert(run_one(name, file, t.body, data));
    }
    // One stream per target, so adding a target never changes another's inputs.
    let mut rng = Rng::new(name.bytes().fold(0xF022_u64, |h, b| {
        h.wrapping_mul(31).wrapping_add(u64::from(b))
    }));
    for i in 0..GENERATED_INPUTS {
        let data = if i % 3 == 0 {
            let len = rng.below(max_len + 1);
            random_bytes(&mut rng, len)
        } else {
            let base = &corpus[rng.below(corpus.len())].1;
            let other = &corpus[rng.below(corpus.len())].1;
            mutate(&mut rng, base, other, max_len)
        };
        run_one(name, &format!("generated input {i}"), t.body, &data);
    }
    outcomes
}

fn assert_reaches(name: &str, outcomes: &BTreeSet<Outcome>, expected: &[Outcome]) {
    for e in expected {
        assert!(
            outcomes.contains(e),
            "{name}: no corpus input reaches {e:?} (reached: {outcomes:?}); if behaviour changed on purpose, regenerate with `cargo run -p qwp-sf-fuzz --example write_corpus`"
        );
    }
}

#[test]
fn varint_never_panics_and_round_trips() {
    let outcomes = exercise("varint", 16);
    assert_reaches("varint", &outcomes, &["canonical", "padded", "error"]);
}

#[test]
fn decode_message_never_panics_and_reencodes() {
    let outcomes = exercise("decode_message", 4096);
    assert_reaches("decode_message", &outcomes, &["decoded/round_trip"]);
}

#[test]
fn decode_response_never_panics_and_reencodes() {
    let outcomes = exercise("decode_response", 256);
    assert_reaches(
        "decode_response",
        &outcomes,
        &["ok", "durable_ack", "error_frame"],
    );
}

#[test]
fn segment_scan_s2_frames_verify_and_tails_classify() {
    let outcomes = exercise("segment_scan", 4096);
    assert_reaches(
        "segment_scan",
        &outcomes,
        &[
            "blank",
            "headerless",
            "header_error",
            "segment/clean",
            "segment/torn",
            "segment/corrupt",
        ],
    );
}

#[test]
fn slot_recovery_refuses_or_plans_with_s1_s3_s8() {
    let outcomes = exercise("slot_recovery", 2048);
    assert_reaches(
        "slot_recovery",
        &outcomes,
        &[
            "planned/log",
            "planned/multi_segment_log",
            "planned/empty_log",
            "refused/listing",
            "refused/gap",
            "refused/overlap",
            "refused/corrupt",
        ],
    );
}

#[test]
fn connect_string_parse_print_parse_is_identity() {
    let outcomes = exercise("connect_string", 512);
    assert_reaches(
        "connect_string",
        &outcomes,
        &["ok/memory", "ok/sf_dir", "error"],
    );
}

#[test]
fn engine_input_sequences_keep_the_checkers_quiet() {
    let outcomes = exercise("engine", 2048);
    assert_reaches(
        "engine",
        &outcomes,
        &["acked", "published", "closed", "halted", "idle"],
    );
}

/// The targets whose seeds are encodings of the formats (the others are
/// selected random inputs, whose choice follows the engine's and the
/// planner's behaviour; their coverage is checked by the outcome tests).
const FORMAT_SEEDED: &[&str] = &[
    "varint",
    "decode_message",
    "decode_response",
    "segment_scan",
    "connect_string",
];

#[test]
fn corpus_holds_every_generated_format_seed() {
    for name in FORMAT_SEEDED {
        let on_disk = load_corpus(name);
        for (file, bytes) in seeds::seeds(name) {
            let found = on_disk.iter().find(|(n, _)| *n == file);
            assert!(
                found.is_some_and(|(_, b)| *b == bytes),
                "{name}/{file} is missing or stale (the format changed?): run `cargo run -p qwp-sf-fuzz --example write_corpus`"
            );
        }
    }
}

#[test]
fn every_target_has_a_corpus_and_a_cargo_fuzz_wrapper() {
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("manifest");
    for t in TARGETS {
        assert!(
            !seeds::seeds(t.name).is_empty(),
            "{}: no generated seeds",
            t.name
        );
        let wrapper = fuzz_dir()
            .join("fuzz_targets")
            .join(format!("{}.rs", t.name));
        let text = std::fs::read_to_string(&wrapper)
            .unwrap_or_else(|e| panic!("{}: {e}", wrapper.display()));
        assert!(
            text.contains(&format!("qwp_sf_fuzz::{}::run", t.name)),
            "{} does not call the library body",
            wrapper.display()
        );
        assert!(
            manifest.contains(&format!("name = \"{}\"", t.name)),
            "Cargo.toml has no [[bin]] for {}",
            t.name
        );
    }
}

#[test]
fn message_seeds_cover_every_column_type() {
    let mut seen = BTreeSet::new();
    for (name, bytes) in seeds::messages() {
        let msg = decoder::decode(&bytes).unwrap_or_else(|e| panic!("seed {name}: {e}"));
        for table in &msg.tables {
            seen.extend(table.columns().iter().map(|c| c.column_type()));
        }
    }
    let missing: Vec<ColumnType> = ColumnType::ALL
        .into_iter()
        .filter(|t| !seen.contains(t))
        .collect();
    assert!(missing.is_empty(), "no message seed has {missing:?}");
}

#[test]
fn connect_string_seeds_cover_every_key() {
    let seeds = seeds::seeds("connect_string");
    for key in sf_core::config::KEYS {
        let needle = format!("{key}=");
        assert!(
            seeds
                .iter()
                .any(|(_, s)| String::from_utf8_lossy(s).contains(&needle)),
            "no connect-string seed sets {key}"
        );
    }
    assert!(
        sf_core::config::Config::from_conf(seeds::EVERY_KEY).is_ok(),
        "the every-key seed must parse"
    );
}

#[test]
fn runner_rejects_a_body_that_panics() {
    fn broken(_: &[u8]) -> Outcome {
        panic!("property violated")
    }
    let caught = catch_unwind(|| run_one("broken", "probe", broken, b"x"));
    assert!(caught.is_err());
    let _ = Path::new("");
}
