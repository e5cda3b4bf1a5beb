//! Writes the generated seed corpus to `fuzz/corpus/<target>/` (one file per
//! seed; existing files, such as minimised crash reproducers, are kept).
//!
//! Run from the repository root: `cargo run -p qwp-sf-fuzz --example write_corpus`.

use std::path::Path;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for target in qwp_sf_fuzz::TARGETS {
        let dir = root.join(target.name);
        std::fs::create_dir_all(&dir)?;
        let seeds = qwp_sf_fuzz::seeds::seeds(target.name);
        for (name, bytes) in &seeds {
            std::fs::write(dir.join(name), bytes)?;
        }
        println!(
            "{}: {} seeds in {}",
            target.name,
            seeds.len(),
            dir.display()
        );
    }
    Ok(())
}
