//! The Helm charts of a spec (`spec.charts`).

use crate::error::{ContentProblem, ImageError};
use crate::pull::{Ctx, Resolved};
use crate::spec::ChartSpec;

/// Resolves one chart.
pub(crate) async fn resolve(
    _ctx: &Ctx,
    _spec_index: usize,
    c: &ChartSpec,
) -> Result<Resolved, ImageError> {
    Err(ImageError::Chart {
        chart: format!("{} {}", c.name, c.version),
        problem: ContentProblem::Chart {
            message: "charts are not bundled yet".into(),
        },
    })
}
