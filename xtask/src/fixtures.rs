//! `cargo xtask fixtures`: build (or find) the cached fixture set and registry storage.

use airlock_testkit::fixtures;

#[derive(clap::Args)]
pub struct Args {
    /// Remove the cached fixtures and registry storage first, and build them again.
    #[arg(long)]
    pub rebuild: bool,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    if args.rebuild {
        for name in ["fixtures", "registry"] {
            let dir = airlock_testkit::cache_dir().join(format!("{name}-v{}", fixtures::VERSION));
            if dir.exists() {
                std::fs::remove_dir_all(&dir)?;
                eprintln!("removed {}", dir.display());
            }
        }
    }
    let started = std::time::Instant::now();
    let set = fixtures::fixture_set()?;
    let storage = fixtures::registry_storage()?;
    eprintln!(
        "fixtures ready in {:.1?}: {} images, {} unique blobs, {} bytes",
        started.elapsed(),
        set.images.len(),
        set.all_blobs().len(),
        set.unique_blob_bytes
    );
    eprintln!("OCI layout:       {}", set.layout.display());
    eprintln!("registry storage: {}", storage.display());
    for image in &set.images {
        println!(
            "{:<22} {:<10} {:<58} {}",
            image.repository,
            image.tags.join(","),
            image.media_type,
            image.digest
        );
    }
    Ok(())
}
