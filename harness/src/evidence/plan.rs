//! A sampled drill's `plan.json` re-derived as an auditor would: the draw from the plan's own
//! inputs ([`SamplePlan::check`]), then against the drill its folder holds (`drill.json`): the
//! same scenario, the drill's own UTC day (a drill cannot claim another day to draw again), and
//! the backup drawn is the one drilled.

use std::path::Path;

use crate::outcome::{PLAN_FILE, SampleError, SamplePlan, SeedFrom};

/// Why a plan does not hold.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PlanError {
    #[error("cannot read it")]
    Read(#[source] std::io::Error),
    #[error("it is not a plan")]
    Json(#[source] serde_json::Error),
    #[error("the draw does not re-derive: {0}")]
    Draw(#[source] SampleError),
    #[error("drill.json cannot be read beside it, to compare the backup drilled with the one drawn")]
    Record(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("it draws for scenario `{plan}`, but the drill is of `{drill}`")]
    Scenario { plan: String, drill: String },
    #[error("it draws for the day {plan}, but the drill started on {drill} (UTC): another day draws anew")]
    Day { plan: String, drill: String },
    #[error("it drew `{plan}`, but the drill drilled `{drilled}`")]
    Backup { plan: String, drilled: String },
}

/// Re-derives the plan in `dir`: what it proves, in a line; `Err` names what differs.
pub(crate) fn check(dir: &Path) -> Result<String, PlanError> {
    let text = std::fs::read_to_string(dir.join(PLAN_FILE)).map_err(PlanError::Read)?;
    let plan: SamplePlan = serde_json::from_str(&text).map_err(PlanError::Json)?;
    plan.check().map_err(PlanError::Draw)?;
    let record = std::fs::read_to_string(dir.join("drill.json")).map_err(|e| PlanError::Record(Box::new(e)))?;
    let record: serde_json::Value = serde_json::from_str(&record).map_err(|e| PlanError::Record(Box::new(e)))?;
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    let scenario = text(&record["scenario"]["name"]);
    if plan.scenario != scenario {
        return Err(PlanError::Scenario { plan: plan.scenario, drill: scenario });
    }
    let day = text(&record["started_at"]).get(..10).unwrap_or_default().to_owned();
    if plan.day != day {
        return Err(PlanError::Day { plan: plan.day, drill: day });
    }
    let drilled = text(&record["backup"]["location"]);
    if plan.location != drilled {
        return Err(PlanError::Backup { plan: plan.location, drilled });
    }
    let seed = match plan.seed.from {
        SeedFrom::Derived => "its seed derived from the scenario, the day and the backups listed",
        SeedFrom::Operator => {
            "its seed chosen by the operator (`--seed`): the draw re-derives, the choice of the seed was theirs"
        }
    };
    Ok(format!(
        "{PLAN_FILE}: the backup drilled, `{}`, is the one its seed draws: {} of the {} at most {} older than the newest, `{}` ({seed})",
        plan.chosen.name,
        plan.index + 1,
        plan.candidates.len(),
        plan.within,
        plan.newest.name
    ))
}
