//! The `twinbox` command.

fn main() {
    let args: twinbox::cli::Args = argh::from_env();
    std::process::exit(twinbox::cli::run(args));
}
