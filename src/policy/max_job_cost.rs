//! `max_job_cost`: the job's projected (or actual) cost is above `limit_usd`. A job still
//! validating or queued is caught before it trains.

use super::kinds::Kind;
use super::{EvalContext, JobView, Rule, UnknownCost};
use crate::model::Usd;

pub const KIND: Kind = Kind {
    name: "max_job_cost",
    keys: &["limit_usd", "unknown_cost"],
    build: |c| {
        Ok(Box::new(MaxJobCost {
            limit: c.limit_money()?,
            unknown: c.unknown_cost.unwrap_or_default(),
        }))
    },
};

#[derive(Debug, Clone)]
struct MaxJobCost {
    limit: Usd,
    unknown: UnknownCost,
}

impl Rule for MaxJobCost {
    fn evaluate(&self, v: &JobView, _: &EvalContext) -> Option<String> {
        match v.cost.best() {
            Some(cost) if cost > self.limit => {
                let what = if v.cost.projected.is_some() {
                    "projected"
                } else {
                    "cost"
                };
                Some(format!("{what} {cost} > cap {}", self.limit))
            }
            Some(_) => None,
            None if v.cost.no_price && self.unknown == UnknownCost::Cancel => Some(format!(
                "cost unknown ({}) and unknown_cost = \"cancel\"",
                v.cost
                    .unknown
                    .as_ref()
                    .map_or("no price".to_owned(), ToString::to_string)
            )),
            None => None,
        }
    }
    fn needs_costs(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::cost::JobCost;
    use crate::model::Usd;

    fn reason(policy_toml: &str, cost: JobCost) -> Option<String> {
        let j = job("a", "queued", 60);
        check_view(policy_toml, view(&j, &cost))
    }

    #[test]
    fn cases() {
        let p = "name='c'\nkind='max_job_cost'\nlimit_usd=10.0";
        let projected = |d: f64| JobCost {
            projected: Some(Usd::from_dollars(d)),
            ..Default::default()
        };
        assert_eq!(
            reason(p, projected(18.4)).as_deref(),
            Some("projected $18.40 > cap $10.00")
        );
        assert_eq!(reason(p, projected(0.10)), None);
        assert_eq!(
            reason(p, projected(10.0)),
            None,
            "at the cap is not over it"
        );
        let actual = JobCost {
            actual: Some(Usd::from_dollars(12.0)),
            ..Default::default()
        };
        assert_eq!(
            reason(p, actual).as_deref(),
            Some("cost $12.00 > cap $10.00")
        );
        let unknown = JobCost {
            unknown: Some(crate::cost::CostUnknown::NoPrice("x".into())),
            no_price: true,
            ..Default::default()
        };
        assert_eq!(reason(p, unknown.clone()), None, "ignore by default");
        let strict = format!("{p}\nunknown_cost='cancel'");
        assert!(reason(&strict, unknown).unwrap().contains("unknown"));
        let not_counted = JobCost {
            unknown: Some(crate::cost::CostUnknown::FileNotCounted),
            ..Default::default()
        };
        assert_eq!(
            reason(&strict, not_counted),
            None,
            "not counted yet is not unknown price"
        );
    }
}
