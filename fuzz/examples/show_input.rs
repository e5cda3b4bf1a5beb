//! Prints a fuzz input as its target sees it: the decoded structure for the
//! structure-aware targets (`slot_recovery`, `engine`), the text for
//! `connect_string`, hex otherwise; then runs the body and prints the outcome
//! (or the panic).
//!
//! `cargo run -p qwp-sf-fuzz --example show_input -- <target> <file>`

use arbitrary::{Arbitrary, Unstructured};
use qwp_sf_fuzz::{engine::EngineInput, slot_recovery::SlotInput, target};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [name, path] = args.as_slice() else {
        eprintln!("usage: show_input <target> <file>");
        std::process::exit(2);
    };
    let Some(t) = target(name) else {
        eprintln!("unknown target {name}");
        std::process::exit(2);
    };
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(2);
        }
    };
    match name.as_str() {
        "slot_recovery" => {
            println!(
                "{:#?}",
                SlotInput::arbitrary_take_rest(Unstructured::new(&data))
            )
        }
        "engine" => println!(
            "{:#?}",
            EngineInput::arbitrary_take_rest(Unstructured::new(&data))
        ),
        "connect_string" => println!("{:?}", String::from_utf8_lossy(&data)),
        _ => println!(
            "{}",
            data.iter().map(|b| format!("{b:02x}")).collect::<String>()
        ),
    }
    println!("outcome: {}", (t.body)(&data));
}
