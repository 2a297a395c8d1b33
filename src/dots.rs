//! The paper's frame-rate experiment (section 2.2.1). Placeholder.

/// `raftian dots` arguments.
#[derive(clap::Args, Clone, Debug)]
pub struct DotsArgs {
    #[arg(long, default_value_t = 100)]
    pub count: usize,
}

pub fn run(_args: &DotsArgs) -> Result<(), String> {
    Err("dots: not built yet".into())
}
