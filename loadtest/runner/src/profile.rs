//! Load profiles: stages of virtual users over time, as k6 defines them (each stage moves the
//! number of virtual users linearly from the previous stage's target to its own).

use std::time::Duration;

use clap::ValueEnum;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Profile {
    /// Under a minute: 5 then 10 virtual users; for CI and a quick check.
    Smoke,
    /// The blueprint's: warm-up to 20 VUs in 30 s, ramp to 50 in 30 s, sustain 50 for 2 min,
    /// spike to 100 in 30 s and hold 30 s, ramp down in 30 s (4 min 30 s).
    Full,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    pub duration: Duration,
    pub target: u32,
}

const fn stage(seconds: u64, target: u32) -> Stage {
    Stage { duration: Duration::from_secs(seconds), target }
}

impl Profile {
    pub fn stages(self) -> Vec<Stage> {
        match self {
            Self::Smoke => vec![stage(5, 5), stage(20, 10), stage(5, 0)],
            Self::Full => {
                vec![stage(30, 20), stage(30, 50), stage(120, 50), stage(30, 100), stage(30, 100), stage(30, 0)]
            }
        }
    }

    /// Persistent WebSocket subscribers that count every event.
    pub fn ws_subscribers(self) -> usize {
        match self {
            Self::Smoke => 5,
            Self::Full => 50,
        }
    }
}

/// Total duration of the stages.
pub fn total(stages: &[Stage]) -> Duration {
    stages.iter().map(|stage| stage.duration).sum()
}

/// The number of virtual users the stages want at `elapsed` (0 once they are over).
pub fn target_at(stages: &[Stage], elapsed: Duration) -> u32 {
    let mut from = 0u32;
    let mut start = Duration::ZERO;
    for stage in stages {
        let end = start + stage.duration;
        if elapsed < end {
            let progress = (elapsed - start).as_secs_f64() / stage.duration.as_secs_f64().max(f64::EPSILON);
            let value = f64::from(from) + (f64::from(stage.target) - f64::from(from)) * progress;
            return value.round() as u32;
        }
        from = stage.target;
        start = end;
    }
    0
}

/// The largest number of virtual users the stages reach.
pub fn peak(stages: &[Stage]) -> u32 {
    stages.iter().map(|stage| stage.target).max().unwrap_or(0)
}

/// Stages given on the command line.
#[derive(Debug, Clone, PartialEq)]
pub struct Stages(pub Vec<Stage>);

/// `--stages 30s:20,1m:50,…` as k6 writes them.
pub fn parse_stages(text: &str) -> Result<Stages, String> {
    text.split(',')
        .map(|part| {
            let (duration, target) =
                part.trim().split_once(':').ok_or_else(|| format!("`{part}`: expected DURATION:VUS"))?;
            let target = target.parse().map_err(|_| format!("`{target}`: not a number of virtual users"))?;
            Ok(Stage { duration: parse_duration(duration)?, target })
        })
        .collect::<Result<_, _>>()
        .map(Stages)
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let number: u64 = number.parse().map_err(|_| format!("`{text}`: expected e.g. 30s or 2m"))?;
    match unit {
        "s" | "" => Ok(Duration::from_secs(number)),
        "m" => Ok(Duration::from_secs(number * 60)),
        _ => Err(format!("`{text}`: the unit is s or m")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_full_profile_is_the_blueprints() {
        let stages = Profile::Full.stages();
        assert_eq!(total(&stages), Duration::from_secs(270));
        assert_eq!(peak(&stages), 100);
        assert_eq!(target_at(&stages, Duration::from_secs(15)), 10);
        assert_eq!(target_at(&stages, Duration::from_secs(30)), 20);
        assert_eq!(target_at(&stages, Duration::from_secs(45)), 35);
        assert_eq!(target_at(&stages, Duration::from_secs(100)), 50);
        assert_eq!(target_at(&stages, Duration::from_secs(195)), 75);
        assert_eq!(target_at(&stages, Duration::from_secs(230)), 100);
        assert_eq!(target_at(&stages, Duration::from_secs(255)), 50);
        assert_eq!(target_at(&stages, Duration::from_secs(270)), 0);
    }

    #[test]
    fn the_smoke_profile_takes_under_a_minute() {
        assert!(total(&Profile::Smoke.stages()) < Duration::from_secs(60));
    }

    #[test]
    fn stages_parse_as_k6_writes_them() {
        assert_eq!(parse_stages("30s:20, 2m:50"), Ok(Stages(vec![stage(30, 20), stage(120, 50)])));
        assert!(parse_stages("30x:20").is_err());
        assert!(parse_stages("30s").is_err());
        assert!(parse_stages("30s:many").is_err());
    }
}
