//! The `wgrnn` command line.

mod cli;

use clap::{Parser, Subcommand};
use cli::args::{ModelArgs, OptimizerArgs, TrainArgs};
use wgrnn::gpu::AdapterChoice;

#[derive(Parser, Debug)]
#[command(
    name = "wgrnn",
    version,
    about = "Train recurrent neural networks with WGSL compute shaders on any wgpu adapter"
)]
struct Cli {
    /// Adapter: auto (a GPU, else software) | gpu | software | part of an adapter's name
    #[arg(long, global = true, env = "WGRNN_ADAPTER", default_value = "auto")]
    adapter: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once; boxing would only add noise
enum Command {
    /// List every adapter with its limits and features
    Devices,
    /// Print each parameter tensor (PyTorch name, shape, size) and the total
    Params {
        #[command(flatten)]
        model: ModelArgs,
    },
    /// Time full training steps of named workloads (W1-W5) or a custom shape
    Bench {
        #[command(flatten)]
        args: cli::bench::BenchArgs,
    },
    /// Dry run: the buffers an engine needs for a model, batch and chunk length, against the adapter's limits
    Plan {
        #[command(flatten)]
        args: cli::plan::PlanArgs,
    },
    /// Loss and metrics of a checkpoint on a data file
    Eval {
        #[command(flatten)]
        args: cli::infer::ModelData,
    },
    /// Predictions of a checkpoint: CoNLL-U in, CoNLL-U with predicted UPOS out; CSV in, predictions out
    Predict {
        #[command(flatten)]
        args: cli::infer::PredictArgs,
    },
    /// Sample text from a character model
    Generate {
        #[command(flatten)]
        args: cli::infer::GenerateArgs,
    },
    /// Train a model (without --data: a POS tagger on the bundled EWT sample)
    Train {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        optimizer: OptimizerArgs,
        #[command(flatten)]
        train: TrainArgs,
    },
}

fn main() -> std::process::ExitCode {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to its default at start-up, before any thread.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let result = (|| -> anyhow::Result<()> {
        let adapter: AdapterChoice = cli.adapter.parse()?;
        match &cli.command {
            Command::Devices => cli::devices::run(),
            Command::Params { model } => cli::params::run(model),
            Command::Eval { args } => cli::infer::eval(&adapter, args),
            Command::Bench { args } => cli::bench::run(&adapter, args),
            Command::Plan { args } => cli::plan::run(&adapter, args),
            Command::Predict { args } => cli::infer::predict(&adapter, args),
            Command::Generate { args } => cli::infer::generate(&adapter, args),
            Command::Train {
                model,
                optimizer,
                train,
            } => cli::train::run(&adapter, model, optimizer, train),
        }
    })();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
