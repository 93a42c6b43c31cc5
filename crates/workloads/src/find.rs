//! `airlock images from`: every image the inputs name, once, with where each was found.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::error::{Error, Problem};
use crate::input::sources;
use crate::scan::{scan, Location};

/// One image and every place it is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// The normalised reference (`docker.io/library/nginx:1.25`, digests kept).
    pub reference: String,
    /// Where it was found, in input order.
    pub locations: Vec<Location>,
}

/// What the inputs hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings {
    /// The images, sorted by reference.
    pub images: Vec<Image>,
    /// The values that are not usable references, in input order.
    pub problems: Vec<Problem>,
}

/// Reads and scans every input of `paths` (see [`sources`]), one at a time.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::write(
///     dir.path().join("app.yaml"),
///     "kind: Pod\nmetadata: {name: web}\nspec:\n  containers:\n  - name: web\n    image: nginx:1.25\n",
/// )
/// .unwrap();
/// let found = airlock_workloads::find_images(&[dir.path().to_owned()]).unwrap();
/// assert_eq!(found.images[0].reference, "docker.io/library/nginx:1.25");
/// assert_eq!(found.images[0].locations[0].line, 6);
/// assert!(found.problems.is_empty());
/// ```
pub fn find_images(paths: &[PathBuf]) -> Result<Findings, Error> {
    let mut images: BTreeMap<String, Vec<Location>> = BTreeMap::new();
    let mut problems = Vec::new();
    let scans = crate::par::map(&sources(paths)?, |source| {
        let input = source.read()?;
        scan(&input.source.file, &input.text)
    });
    for found in scans {
        let found = found?;
        for field in found.fields {
            images
                .entry(field.reference.to_string())
                .or_default()
                .push(field.location);
        }
        problems.extend(found.problems);
    }
    Ok(Findings {
        images: images
            .into_iter()
            .map(|(reference, locations)| Image {
                reference,
                locations,
            })
            .collect(),
        problems,
    })
}
